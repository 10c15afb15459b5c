"""results/recommendations.md: per dataset x model x scale, which settings can replace the
baseline without losing diagnostic performance, ranked by what they save.

Read from the comparisons (one row per setting != baseline, with its verdict) and the settings
table (means and intervals per setting, baseline included) of every dataset.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from frugalmed.results.comparisons import delta_text, ratio_cell, signed
from frugalmed.results.confounds import Confounds
from frugalmed.results.document import Document
from frugalmed.results.frontier import pareto_mask
from frugalmed.results.study import Study
from frugalmed.results.summary import setting_order
from frugalmed.stats.paired import MIN_PAIRS

AXES = (("auc_mean", True, "AUC"), ("energy_mean", False, "energy"),
        ("memory_mean", False, "memory"), ("time_mean", False, "time"))


def parse_flag(value) -> bool | None:
    """noninferior as read back from CSV: True / False / None (no verdict)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip().lower()
    return True if text == "true" else False if text == "false" else None


def pareto_settings(settings: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(settings on the Pareto front, axes used): axes without a value for every setting are
    left out (e.g. energy when no tracker could run) and named by the caller."""
    settings = settings[settings["n_seeds"] > 0]
    if settings.empty:
        return [], []
    axes = [(c, m, n) for c, m, n in AXES if np.isfinite(settings[c].astype(float)).all()]
    if not axes:
        return [], []
    mask = pareto_mask(settings[[c for c, _, _ in axes]].to_numpy(float), [m for _, m, _ in axes])
    return list(settings.loc[mask, "setting"]), [n for _, _, n in axes]


def build(comparisons: pd.DataFrame, settings: pd.DataFrame, study: Study,
          confounds: dict[str, Confounds]) -> Document:
    """The recommendations document over every dataset in the inputs."""
    doc = Document()
    doc.heading(1, "Recommendations")
    doc.para(
        f"For each dataset, model and image scale: the settings **non-inferior** to baseline (the "
        f"lower bound of the 95 % interval of the paired ΔAUC lies above −{study.noninferiority_margin:g}, "
        f"study.noninferiority_margin; at least {MIN_PAIRS} seed pairs), ranked by their "
        f"**{study.rank_by}** ratio (study.rank_by; lower saves more), then the Pareto-optimal "
        "settings over mean AUC, energy, memory and time. Intervals: results/comparisons/ and "
        "docs/results.md. Settings are named with the precision that really ran.")
    for dataset in sorted(settings["dataset"].unique()):
        doc.heading(2, dataset)
        conf = confounds.get(dataset)
        if conf is not None and conf.flagged:
            doc.bullets(conf.sentences())
        ds_comp = comparisons[comparisons["dataset"] == dataset]
        ds_set = settings[settings["dataset"] == dataset]
        for (model, scale), block in ds_set.groupby(["model", "scale"], sort=True):
            comp = ds_comp[(ds_comp["model"] == model) & (ds_comp["scale"] == scale)]
            _block(doc, model, int(scale), block, comp, study)
    doc.heading(2, "Marks")
    doc.bullets([
        "† energy (at least partly) estimated, not metered (see the tables' notes).",
        f"‡ some runs behind the number were measured while other processes used more than "
        f"{study.max_host_load:.0%} of the host (study.max_host_load): time and energy inflated.",
        "Memory is tensor memory (measured from tensors) on CPU runs and CUDA max allocated on "
        "CUDA runs; each table names its source.",
    ])
    return doc


def _block(doc: Document, model: str, scale: int, settings: pd.DataFrame, comp: pd.DataFrame,
           study: Study) -> None:
    doc.heading(3, f"{model}, scale {scale}")
    labels = dict(zip(settings["setting"], settings["label"]))
    items = []
    base = settings[settings["setting"] == "baseline"]
    if base.empty or int(base["n_seeds"].iloc[0]) == 0:
        doc.para("No finished baseline run: nothing can be recommended against it.")
        return
    b = base.iloc[0]
    items.append(f"Baseline: mean test AUC {_num(b['auc_mean'])} (95 % CI {_num(b['auc_ci_low'])}–"
                 f"{_num(b['auc_ci_high'])}) over seeds {b['seeds']}.")
    flags = comp["noninferior"].map(parse_flag)
    judged = comp[flags.notna()]
    insufficient = comp[(comp["n_pairs"] > 0) & flags.isna()]
    noninferior = comp[flags == True]  # noqa: E712 - a column of True/False/None
    rank = f"{study.rank_by}_ratio"
    noninferior = noninferior.assign(_r=noninferior[rank].astype(float).fillna(np.inf))
    noninferior = noninferior.sort_values(["_r", "setting"], kind="stable")
    table = []
    for i, (_, r) in enumerate(noninferior.iterrows(), 1):
        flags_ = ("†" if str(r["energy_estimated"]).lower() == "true" else "") + (
            "‡" if int(r["n_contended"]) else "")
        table.append([str(i), labels.get(r["setting"], r["setting"]),
                      ratio_cell(r, "energy") + flags_, ratio_cell(r, "memory"),
                      ratio_cell(r, "time") + ("‡" if int(r["n_contended"]) else ""),
                      f"{signed(r['delta_auc'])} ({signed(r['delta_auc_ci_low'])}…"
                      f"{signed(r['delta_auc_ci_high'])})"])
    if table:
        items.append(f"**Non-inferior to baseline** ({len(table)}), ranked by {study.rank_by} "
                     "(table below).")
    elif len(judged):
        items.append(f"**No setting is non-inferior** to baseline at margin "
                     f"{study.noninferiority_margin:g}: keep the baseline for this model.")
    not_ni = judged[judged["noninferior"].map(parse_flag) == False]  # noqa: E712
    if len(not_ni):
        items.append("Not non-inferior: " + "; ".join(
            f"{labels.get(r['setting'], r['setting'])} ({delta_text(r)})" for _, r in not_ni.iterrows()) + ".")
    if len(insufficient):
        items.append(
            f"**Insufficient seeds** (fewer than {MIN_PAIRS} seed pairs with baseline, no verdict): "
            + "; ".join(f"{labels.get(r['setting'], r['setting'])} ({int(r['n_pairs'])} pair"
                        f"{'s' if int(r['n_pairs']) != 1 else ''}: ΔAUC {signed(r['delta_auc'])})"
                        for _, r in insufficient.iterrows()) + ".")
    unpaired = comp[comp["n_pairs"] == 0]
    if len(unpaired):
        items.append("Not compared (no seed with a finished run on both sides): "
                     + ", ".join(labels.get(s, s) for s in unpaired["setting"]) + ".")
    front, axes = pareto_settings(settings)
    if front:
        left_out = [n for _, _, n in AXES if n not in axes]
        items.append(
            "Pareto-optimal over mean " + ", ".join(axes) + ": "
            + ", ".join(labels.get(s, s) for s in setting_order(front))
            + (f" ({', '.join(left_out)} not measured for every setting, left out)" if left_out else "")
            + ". On means over seeds: a setting on the front may still be inferior in AUC within "
              "its interval.")
    busy = comp[comp["n_contended"].astype(int) > 0]
    if len(busy):
        items.append("‡ Time and energy of " + ", ".join(busy["setting"]) + " include runs measured "
                     "on a busy host; rerun with train.exclusive: true before relying on them.")
    doc.bullets(items)
    if table:
        memory = ", ".join(sorted(set(noninferior["memory_source"].astype(str)) - {""})) or "memory"
        doc.table(["Rank", "Setting (as run)", "Energy × (95 % CI)", f"Memory × ({memory})",
                   "Time ×", "ΔAUC (95 % CI)"], table, align="rlrrrr")


def _num(value, digits: int = 3) -> str:
    value = float(value)
    return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"


def read_comparisons(paths: list[str]) -> pd.DataFrame:
    frames = [pd.read_csv(p, keep_default_na=True) for p in paths]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    for col in ("confounds", "memory_source", "seeds"):
        if col in frame.columns:
            frame[col] = frame[col].map(lambda v: "" if pd.isna(v) else str(v))
    return frame


__all__ = ["build", "pareto_settings", "parse_flag", "read_comparisons", "ratio_cell"]
