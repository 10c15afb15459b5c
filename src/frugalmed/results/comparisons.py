"""Paired comparisons of every setting with the baseline of the same dataset, model and scale.

One row per dataset x model x scale x setting != baseline (results/comparisons/{dataset}.csv):
runs are paired by seed; ΔAUC and its 95 % interval come from the runs' test predictions by
the hierarchical bootstrap of frugalmed.stats.paired (seeds and test patients); energy,
memory and time ratios are geometric means of the paired ratios with t intervals; a setting is
non-inferior when the interval's lower bound is above -study.noninferiority_margin, judged only
with at least 3 seed pairs. Seeds with a diverged run on either side, and seeds run by one side
only, are counted and never averaged in. A second table (`{dataset}.settings.csv`) gives every
setting's mean AUC with the same kind of interval, for the figures.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from frugalmed.results.confounds import Confounds
from frugalmed.results.document import Document
from frugalmed.results.labels import group_label
from frugalmed.results.measures import axis_short, axis_source_text
from frugalmed.results.predictions import TestSplit, predictions_path, read_predictions
from frugalmed.results.study import RESOURCES, Study
from frugalmed.results.summary import is_estimated, setting_order
from frugalmed.stats.paired import (
    MIN_PAIRS, Interval, geometric_mean_ratio, mean_auc_interval, noninferior, paired_delta_auc,
)
from frugalmed.stats.resample import patient_counts, seed_draws
from frugalmed.stats.weighted_auc import auc, patient_weighted_aucs

log = logging.getLogger(__name__)

BASELINE = "baseline"
CI_METHOD = (
    "hierarchical percentile bootstrap, {B} resamples (seed {seed}): seed pairs resampled with "
    "replacement, test patients resampled with replacement once per resample and shared by "
    "every seed and both settings; image-level AUC weighted by patient multiplicity"
)
LEAD = ["dataset", "model", "scale", "setting", "n_pairs", "n_unpaired", "n_diverged",
        "delta_auc", "delta_auc_ci_low", "delta_auc_ci_high"]
RATIO_COLUMNS = [f"{r}_ratio{s}" for r in RESOURCES for s in ("", "_ci_low", "_ci_high")]
TAIL = ["noninferior", "verdict", "label", "seeds", "auc_baseline", "auc_setting", "margin",
        "memory_source", "energy_estimated", "n_contended", "host_load_recorded", "confounds",
        "n_test_patients", "bootstrap_resamples", "bootstrap_undefined_share", "ci_method"]
AUC_TOLERANCE = 1e-6
FEW_PATIENTS = 20  # below this, a patient bootstrap says little about test-set variation


@dataclass
class RunScores:
    """Each usable run's test AUC and its AUCs under the shared patient resamples."""

    point: dict[Any, float]
    boot: dict[Any, np.ndarray]
    n_boot: int
    undefined_share: float
    n_patients: int = 0
    single_class: bool = False


def score_runs(summary: pd.DataFrame, split: TestSplit, study: Study) -> RunScores:
    """Read and check every run's predictions.csv; score the non-diverged runs.

    Every file is checked against the test split (diverged runs' too); `summary` is indexed by
    run and must hold metrics_path, diverged, test_auc.
    """
    counts = patient_counts(split.n_patients, study.bootstrap, study.bootstrap_seed)
    point, boot = {}, {}
    for key, run in summary.iterrows():
        probs = read_predictions(predictions_path(run["metrics_path"]), split,
                                 require_probs=not run["diverged"])
        if run["diverged"]:
            continue
        point[key] = auc(split.labels, probs)
        boot[key] = patient_weighted_aucs(split.labels, probs, split.patient_index, counts)
        recorded = run.get("test_auc")
        if recorded is not None and math.isfinite(recorded) and abs(recorded - point[key]) > AUC_TOLERANCE:
            log.warning("%s: metrics.json test_auc %.6f but its predictions.csv gives %.6f",
                        run["metrics_path"], recorded, point[key])
    # which resamples lack one class depends on labels and counts only: the same for every run
    positives = counts[:, split.patient_index][:, split.labels == 1].sum(axis=1)
    negatives = counts[:, split.patient_index][:, split.labels == 0].sum(axis=1)
    undefined = float(np.mean((positives == 0) | (negatives == 0)))
    single_class = len(np.unique(split.labels)) < 2
    return RunScores(point, boot, study.bootstrap, undefined, split.n_patients, single_class)


def compare(summary: pd.DataFrame, scores: RunScores, study: Study,
            confounds: Confounds | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(comparisons, settings) of one dataset's runs; `summary` carries the measures columns
    (frugalmed.results.measures.add_measures) and the index used by `scores`."""
    rows, settings = [], []
    draws: dict[int, np.ndarray] = {}

    def draws_for(k: int) -> np.ndarray:
        if k not in draws:
            draws[k] = seed_draws(k, study.bootstrap, study.bootstrap_seed)
        return draws[k]

    confound_cell = confounds.short() if confounds is not None else ""
    for (dataset, model, scale), group in summary.groupby(["dataset", "model", "scale"], sort=True):
        by_setting = {s: g for s, g in group.groupby("setting")}
        for setting in setting_order(by_setting):
            settings.append(_setting_row(by_setting[setting], scores, draws_for))
        base = by_setting.get(BASELINE)
        for setting in setting_order(by_setting):
            if setting == BASELINE:
                continue
            row = _compare_one(base, by_setting[setting], scores, study, draws_for)
            row.update(dataset=dataset, model=model, scale=int(scale), setting=setting,
                       confounds=confound_cell)
            row["verdict"] = verdict(row, study, has_baseline=base is not None)
            rows.append(row)
    comparisons = pd.DataFrame(rows, columns=LEAD + RATIO_COLUMNS + TAIL)
    return comparisons, pd.DataFrame(settings)


def _by_seed(runs: pd.DataFrame | None) -> dict[int, Any]:
    return {} if runs is None else {int(r["seed"]): k for k, r in runs.iterrows()}


def _compare_one(base: pd.DataFrame | None, other: pd.DataFrame, scores: RunScores,
                 study: Study, draws_for) -> dict[str, Any]:
    base_seeds, other_seeds = _by_seed(base), _by_seed(other)
    common = sorted(set(base_seeds) & set(other_seeds))
    unpaired = len(set(base_seeds) ^ set(other_seeds))
    runs = pd.concat([x for x in (base, other) if x is not None])
    paired = [s for s in common
              if base_seeds[s] in scores.point and other_seeds[s] in scores.point]
    n_diverged = len(common) - len(paired)
    row: dict[str, Any] = dict(
        n_pairs=len(paired), n_unpaired=unpaired, n_diverged=n_diverged,
        label=group_label(other), seeds=" ".join(str(s) for s in paired),
        margin=study.noninferiority_margin, bootstrap_resamples=scores.n_boot,
        bootstrap_undefined_share=scores.undefined_share, n_test_patients=scores.n_patients,
        single_class=scores.single_class,
        ci_method=CI_METHOD.format(B=scores.n_boot, seed=study.bootstrap_seed),
    )
    pair_keys = [(base_seeds[s], other_seeds[s]) for s in paired]
    used = runs.loc[[k for pair in pair_keys for k in pair]] if pair_keys else runs.iloc[:0]
    row["memory_source"] = axis_short(used["axis_memory_source"]) if len(used) else ""
    row["energy_estimated"] = bool(used["energy_source"].map(is_estimated).any()) if len(used) else False
    row["n_contended"] = int(sum(runs.loc[b, "contended"] or runs.loc[o, "contended"] for b, o in pair_keys))
    row["host_load_recorded"] = bool(used["host_load_recorded"].all()) if len(used) else False
    if paired:
        b_point = np.array([scores.point[b] for b, _ in pair_keys])
        o_point = np.array([scores.point[o] for _, o in pair_keys])
        delta = paired_delta_auc(b_point, o_point,
                                 np.stack([scores.boot[b] for b, _ in pair_keys]),
                                 np.stack([scores.boot[o] for _, o in pair_keys]),
                                 draws_for(len(paired)))
        row.update(auc_baseline=float(b_point.mean()), auc_setting=float(o_point.mean()))
    else:
        delta = Interval(math.nan, math.nan, math.nan)
        row.update(auc_baseline=math.nan, auc_setting=math.nan)
    row.update(delta_auc=delta.estimate, delta_auc_ci_low=delta.low, delta_auc_ci_high=delta.high)
    row["noninferior"] = noninferior(delta, study.noninferiority_margin, len(paired))
    for name, column in RESOURCES.items():
        ratios = []
        for b, o in pair_keys:
            num, den = float(runs.loc[o, column]), float(runs.loc[b, column])
            same_source = (name != "memory" or
                           runs.loc[o, "axis_memory_source"] == runs.loc[b, "axis_memory_source"])
            if same_source and math.isfinite(num) and math.isfinite(den) and num > 0 and den > 0:
                ratios.append(num / den)
        ratio = geometric_mean_ratio(np.array(ratios))
        row[f"{name}_ratio"], row[f"{name}_ratio_ci_low"], row[f"{name}_ratio_ci_high"] = (
            ratio.estimate, ratio.low, ratio.high)
    return row


def _setting_row(runs: pd.DataFrame, scores: RunScores, draws_for) -> dict[str, Any]:
    first = runs.iloc[0]
    usable = [k for k in runs.index if k in scores.point]
    ok = runs.loc[usable]
    row: dict[str, Any] = dict(
        dataset=first["dataset"], model=first["model"], scale=int(first["scale"]),
        setting=first["setting"], label=group_label(runs), n_runs=len(runs),
        n_diverged=int(runs["diverged"].sum()), n_seeds=len(usable),
        seeds=" ".join(str(int(s)) for s in sorted(ok["seed"])),
    )
    if usable:
        keys = sorted(usable, key=lambda k: int(runs.loc[k, "seed"]))
        interval = mean_auc_interval(np.array([scores.point[k] for k in keys]),
                                     np.stack([scores.boot[k] for k in keys]), draws_for(len(keys)))
    else:
        interval = Interval(math.nan, math.nan, math.nan)
    row.update(auc_mean=interval.estimate, auc_ci_low=interval.low, auc_ci_high=interval.high)
    for name, column in RESOURCES.items():
        values = pd.to_numeric(ok[column], errors="coerce").astype(float)
        values = values[np.isfinite(values)]
        row[f"{name}_mean"] = float(values.mean()) if len(values) else math.nan
        row[f"{name}_min"] = float(values.min()) if len(values) else math.nan
        row[f"{name}_max"] = float(values.max()) if len(values) else math.nan
    row["memory_source"] = axis_short(ok["axis_memory_source"]) if len(ok) else ""
    row["energy_estimated"] = bool(ok["energy_source"].map(is_estimated).any())
    row["n_contended"] = int(ok["contended"].sum())
    return row


# --- words ---------------------------------------------------------------------------------


def signed(value: float, digits: int = 3) -> str:
    """+0.007 / −0.015 (a real minus sign), 'n/a' when not finite."""
    if value is None or not math.isfinite(value):
        return "n/a"
    text = f"{value:+.{digits}f}"
    return text.replace("-", "−")


def times(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.2f}×"


def ratio_cell(row: dict | pd.Series, name: str) -> str:
    est, lo, hi = row[f"{name}_ratio"], row[f"{name}_ratio_ci_low"], row[f"{name}_ratio_ci_high"]
    if not math.isfinite(est):
        return "n/a"
    if math.isfinite(lo) and math.isfinite(hi):
        return f"{est:.2f}× ({lo:.2f}–{hi:.2f})"
    return f"{est:.2f}×"


def delta_text(row: dict | pd.Series) -> str:
    return (f"ΔAUC {signed(row['delta_auc'])}, 95 % CI {signed(row['delta_auc_ci_low'])}…"
            f"{signed(row['delta_auc_ci_high'])}")


def verdict(row: dict | pd.Series, study: Study, has_baseline: bool = True) -> str:
    """One sentence a clinician can read: the verdict, the ΔAUC and its interval, the savings,
    and every reason to distrust a number."""
    margin = study.noninferiority_margin
    n = int(row["n_pairs"])
    if not has_baseline:
        return "not compared: no baseline run of this model and scale is configured"
    if n == 0:
        return ("not compared: no seed has a finished run of both this setting and baseline"
                + _counts(row))
    judged = row["noninferior"]
    if not math.isfinite(row["delta_auc"]):
        why = ("the test split has one class only" if row.get("single_class")
               else "the runs' test AUC is undefined")
        return f"no ΔAUC: {why}" + _counts(row)
    if judged is None or (isinstance(judged, float) and math.isnan(judged)):
        head = (f"insufficient seeds ({n} pair{'s' if n != 1 else ''}; {MIN_PAIRS} needed for a "
                f"verdict)")
    elif judged:
        head = "non-inferior"
    elif row["delta_auc_ci_high"] < -margin:
        head = f"inferior (the whole interval lies below −{margin:g})"
    else:
        head = f"not shown non-inferior (the interval reaches below −{margin:g})"
    text = f"{head}: {delta_text(row)}, margin {margin:g}"
    uses = []
    for name, words in (("energy", "the energy"), ("memory", f"the {row['memory_source'] or 'memory'}"),
                        ("time", "the training time")):
        if math.isfinite(row[f"{name}_ratio"]):
            uses.append(f"{row[f'{name}_ratio']:.2f}× {words}")
    if uses:
        text += "; uses " + ", ".join(uses)
        if row["energy_estimated"] and math.isfinite(row["energy_ratio"]):
            text += " (energy estimated, not metered)"
    extra = []
    if row["n_contended"]:
        extra.append(f"{row['n_contended']} of {n} pairs measured on a busy host (other processes "
                     f"> {study.max_host_load:.0%} of the CPU/GPU): time and energy ratios unreliable")
    elif not row["host_load_recorded"]:
        extra.append("host load not recorded")
    if row.get("n_test_patients") and row["n_test_patients"] < FEW_PATIENTS:
        extra.append(f"only {row['n_test_patients']} test patients: the interval understates "
                     "test-set variation")
    if row["bootstrap_undefined_share"] > 0.05:
        extra.append(f"test set too small for a reliable patient bootstrap "
                     f"({row['bootstrap_undefined_share']:.0%} of resamples had one class)")
    if row.get("confounds"):
        extra.append(f"confound flagged ({row['confounds']})")
    return text + _counts(row) + (f"; {'; '.join(extra)}" if extra else "")


def _counts(row) -> str:
    parts = []
    if row["n_diverged"]:
        parts.append(f"{row['n_diverged']} seed(s) with a diverged run excluded")
    if row["n_unpaired"]:
        parts.append(f"{row['n_unpaired']} unpaired seed(s) excluded")
    return f" ({'; '.join(parts)})" if parts else ""


def document(comparisons: pd.DataFrame, dataset: str, study: Study,
             confounds: Confounds | None, summary: pd.DataFrame) -> Document:
    """The comparisons of one dataset for reading (Markdown and the report's HTML)."""
    doc = Document()
    doc.heading(3, f"{dataset}: each setting against baseline (paired by seed)")
    header = ["Model", "Scale", "Setting (as run)", "Pairs", "ΔAUC (95 % CI)", "Energy ×",
              "Memory ×", "Time ×", "Verdict"]
    body = []
    for _, r in comparisons.iterrows():
        delta = (f"{signed(r['delta_auc'])} ({signed(r['delta_auc_ci_low'])}…"
                 f"{signed(r['delta_auc_ci_high'])})" if r["n_pairs"] else "n/a")
        pairs = str(r["n_pairs"]) + (f" (+{r['n_diverged']} div.)" if r["n_diverged"] else "") + (
            f" (+{r['n_unpaired']} unpaired)" if r["n_unpaired"] else "")
        mark = "‡" if r["n_contended"] else ""
        body.append([r["model"], str(r["scale"]), r["label"], pairs, delta,
                     ratio_cell(r, "energy") + mark + ("†" if r["energy_estimated"] else ""),
                     ratio_cell(r, "memory"), ratio_cell(r, "time") + mark, r["verdict"]])
    doc.table(header, body, align="lllrrrrrl")
    doc.bullets(notes(comparisons, study, confounds, summary))
    return doc


def notes(comparisons: pd.DataFrame, study: Study, confounds: Confounds | None,
          summary: pd.DataFrame) -> list[str]:
    B = int(comparisons["bootstrap_resamples"].iloc[0]) if len(comparisons) else study.bootstrap
    out = [
        "ΔAUC = mean over seed pairs of (test AUC of the setting − test AUC of baseline), both "
        "computed from the runs' predictions.csv. 95 % CI: " + CI_METHOD.format(B=B, seed=study.bootstrap_seed)
        + " (docs/results.md, 'Statistics').",
        f"Non-inferior: the interval's lower bound lies above −{study.noninferiority_margin:g} "
        f"(study.noninferiority_margin); a verdict needs at least {MIN_PAIRS} seed pairs.",
        "Energy ×, Memory ×, Time ×: setting ÷ baseline, geometric mean of the paired ratios with "
        "the 95 % t interval of the mean log ratio (in brackets; none with one pair).",
        "Memory: " + (axis_source_text(summary["axis_memory_source"]) if len(summary) else "n/a") + ".",
        "Settings are labelled with the precision that really ran, read from each run's "
        "metrics.json (`precision`, `device`).",
        "Seeds with a diverged run on either side and seeds run by one side only are counted "
        "(div., unpaired) and never averaged in.",
    ]
    if summary["energy_source"].map(is_estimated).any():
        out.append("† energy is (at least partly) estimated, not metered.")
    contended = summary[summary["contended"]]
    if len(contended):
        out.append(f"‡ {len(contended)} run(s) were measured while other processes used more than "
                   f"{study.max_host_load:.0%} of the host's CPU (or GPU): their time and energy "
                   "are inflated by the neighbours' load: " + _run_list(contended) + ".")
    elif not summary["host_load_recorded"].all():
        n = int((~summary["host_load_recorded"]).sum())
        out.append(f"Host load not recorded for {n} run(s) (metrics.json from before it was "
                   "measured): contention cannot be ruled out there.")
    else:
        out.append(f"No run was measured on a busy host (other processes ≤ {study.max_host_load:.0%}).")
    if confounds is not None:
        out.append(confounds.checked_note())
    return out


def _run_list(runs: pd.DataFrame) -> str:
    return ", ".join(f"{r.model}/s{r.scale}/{r.setting}/seed{r.seed}" for r in runs.itertuples())
