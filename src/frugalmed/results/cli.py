"""The entry points the workflow's thin scripts call: one function per results rule, each with
the rule's name (rule `comparisons` -> workflow/scripts/comparisons.py -> comparisons()).

Each rule runs in a fresh process, so the plotting modules (matplotlib) are imported only by
the figure rules that need them: imports are most of a results job's time.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from frugalmed.atomic import write_csv, write_text
from frugalmed.results import comparisons as comparisons_mod
from frugalmed.results.aggregate import aggregate
from frugalmed.results.confounds import read_confounds
from frugalmed.results.measures import add_measures, axis_short
from frugalmed.results.predictions import load_test_split
from frugalmed.results.study import Study
from frugalmed.results.summary import is_estimated, load_summary

log = logging.getLogger(__name__)


def _one(path: Any) -> str | None:
    """A rule's optional single input: '' or [] (not configured) -> None."""
    if isinstance(path, (list, tuple)):
        return str(path[0]) if path else None
    return str(path) if path else None


def _runs(metrics: Sequence[str], study: Study) -> pd.DataFrame:
    return add_measures(load_summary(metrics), study.max_host_load)


def _memory_label(runs: pd.DataFrame) -> str:
    return f"Memory (GB): {axis_short(runs['axis_memory_source'])}"


def summarize(metrics: Sequence[str], summary_csv: str) -> None:
    summary = load_summary(metrics)
    write_csv(summary_csv, summary)
    log.info("%d runs (%d diverged) -> %s", len(summary), int(summary["diverged"].sum()),
             summary_csv)


def tables(metrics: Sequence[str], dataset: str, csv: str, md: str, tex: str,
           study: Mapping[str, Any] | None = None, confounds: Any = None) -> None:
    from frugalmed.results.tables import write_tables

    cfg = Study.from_config(study)
    summary = _runs(metrics, cfg)
    table = aggregate(summary, cfg.max_host_load)
    write_tables(table, summary, dataset, csv, md, tex, read_confounds(_one(confounds), dataset),
                 cfg.max_host_load)
    log.info("%d rows of %s -> %s", len(table), dataset, Path(csv).parent)


def setting_intervals(summary: pd.DataFrame, manifests: Mapping[str, str], study: Study,
                      confounds: Mapping[str, Any] | None = None):
    """(comparisons, settings) over every dataset of `summary`, each scored on its manifest's
    test split."""
    comps, sets = [], []
    for dataset, runs in summary.groupby("dataset", sort=True):
        if dataset not in manifests:
            raise KeyError(f"no manifest given for dataset '{dataset}'")
        split = load_test_split(manifests[dataset])
        scores = comparisons_mod.score_runs(runs, split, study)
        conf = read_confounds(_one((confounds or {}).get(dataset)), dataset)
        comp, sett = comparisons_mod.compare(runs, scores, study, conf)
        comps.append(comp)
        sets.append(sett)
    return pd.concat(comps, ignore_index=True), pd.concat(sets, ignore_index=True)


def comparisons(metrics: Sequence[str], manifest: str, dataset: str, csv: str, md: str,
                html: str, settings_csv: str, study: Mapping[str, Any] | None = None,
                confounds: Any = None) -> None:
    cfg = Study.from_config(study)
    summary = _runs(metrics, cfg)
    summary = summary[summary["dataset"] == dataset]
    if summary.empty:
        raise ValueError(f"no runs of dataset '{dataset}' to compare")
    conf = read_confounds(_one(confounds), dataset)
    comp, sett = setting_intervals(summary, {dataset: manifest}, cfg, {dataset: conf.path})
    write_csv(csv, comp)
    write_csv(settings_csv, sett)
    doc = comparisons_mod.document(comp, dataset, cfg, conf, summary)
    write_text(md, doc.markdown())
    write_text(html, doc.html(f"frugalmed: {dataset}, settings against baseline"))
    log.info("%d comparisons of %s (%d with a verdict) -> %s", len(comp), dataset,
             int(comp["noninferior"].notna().sum()), csv)


def recommendations(comparisons: Sequence[str], settings: Sequence[str], md: str, html: str,
                    study: Mapping[str, Any] | None = None,
                    confounds: Sequence[str] = ()) -> None:
    from frugalmed.results import recommendations as recommendations_mod

    cfg = Study.from_config(study)
    comp = recommendations_mod.read_comparisons(list(comparisons))
    sett = pd.concat([pd.read_csv(p) for p in settings], ignore_index=True)
    sett["label"] = sett["label"].fillna(sett["setting"]).astype(str)
    sett["seeds"] = sett["seeds"].fillna("").astype(str)
    conf = {Path(p).parent.name: read_confounds(p, Path(p).parent.name) for p in confounds}
    doc = recommendations_mod.build(comp, sett, cfg, conf)
    write_text(md, doc.markdown())
    write_text(html, doc.html("frugalmed: recommendations"))
    log.info("recommendations for %d dataset(s) -> %s", sett["dataset"].nunique(), md)


def radar(metrics: Sequence[str], manifests: Mapping[str, str], model: str, pdf: str, png: str,
          study: Mapping[str, Any] | None = None) -> None:
    from frugalmed.results.radar import plot_radar

    cfg = Study.from_config(study)
    summary = _runs(metrics, cfg)
    summary = summary[(summary["model"] == model) & (summary["scale"] == 1)]
    if summary.empty:
        raise ValueError(f"no scale-1 runs of model '{model}' to plot")
    _, sett = setting_intervals(summary, manifests, cfg)
    plot_radar(sett, model, pdf, png, memory_label=_memory_label(summary),
               estimated=bool(summary["energy_source"].map(is_estimated).any()))
    log.info("radar of %s from %d runs -> %s", model, len(summary), pdf)


def downsampling(metrics: Sequence[str], model: str, pdf: str, png: str,
                 image_sizes: Mapping[str, int] | None = None,
                 study: Mapping[str, Any] | None = None) -> None:
    from frugalmed.results.downsampling import plot_downsampling

    cfg = Study.from_config(study)
    summary = _runs(metrics, cfg)
    plot_downsampling(aggregate(summary, cfg.max_host_load), summary, model, pdf, png,
                      image_sizes=image_sizes)
    log.info("downsampling of %s from %d runs -> %s", model, len(summary), pdf)


def pareto(settings_csv: str, dataset: str, pdf: str, png: str, confounds: Any = None) -> None:
    from frugalmed.results.pareto import plot_pareto

    sett = pd.read_csv(settings_csv)
    sett["label"] = sett["label"].fillna(sett["setting"]).astype(str)
    conf = read_confounds(_one(confounds), dataset)
    sources = sett["memory_source"].dropna().astype(str)
    memory_label = "Memory (GB): " + (" / ".join(sorted(set(sources))) or "n/a")
    plot_pareto(sett, dataset, pdf, png, memory_label=memory_label,
                estimated=bool(sett["energy_estimated"].astype(str).str.lower().eq("true").any()),
                notes=conf.sentences())
    log.info("pareto of %s from %d settings -> %s", dataset, len(sett), pdf)


def curves(metrics: Sequence[str], model: str, pdf: str, png: str) -> None:
    from frugalmed.results.curves import plot_curves

    summary = load_summary(metrics)
    plot_curves(summary, model, pdf, png)
    log.info("curves of %s from %d runs -> %s", model, len(summary), pdf)
