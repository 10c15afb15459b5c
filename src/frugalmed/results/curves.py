"""figures/curves_{model}: validation AUC and training loss per epoch, one line per setting.

From every run's epochs.csv (scale-1 runs, one row of panels per dataset): the line is the mean
over the seeds still training at that epoch (early stopping ends seeds at different epochs),
the band the min-max over those seeds, and a ringed dot marks each seed's best epoch (the
weights its test metrics use). Diverged runs are left out of mean and band and counted in the
legend.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from frugalmed.plotting import save_figure
from frugalmed.results.labels import group_label
from frugalmed.results.style import plt, setting_styles
from frugalmed.results.summary import setting_order

PANELS = (("val_auc", "validation ROC AUC"), ("train_loss", "training loss (BCE)"))


def epochs_path(metrics_path: str | os.PathLike[str]) -> Path:
    return Path(metrics_path).with_name("epochs.csv")


def read_epochs(summary: pd.DataFrame) -> pd.DataFrame:
    """Every run's epochs.csv, one frame with the run's identity and `diverged` added."""
    frames = []
    for _, run in summary.iterrows():
        path = epochs_path(run["metrics_path"])
        try:
            frame = pd.read_csv(path)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: missing; rerun the run's training job") from None
        missing = {"epoch", *(c for c, _ in PANELS)} - set(frame.columns)
        if missing:
            raise ValueError(f"{path}: lacks column(s) {sorted(missing)}")
        frames.append(frame.assign(dataset=run["dataset"], setting=run["setting"],
                                   seed=int(run["seed"]), run_diverged=bool(run["diverged"]),
                                   best_epoch=run.get("best_epoch")))
    return pd.concat(frames, ignore_index=True)


def plot_curves(summary: pd.DataFrame, model: str, pdf_path: str | os.PathLike[str],
                png_path: str | os.PathLike[str]) -> None:
    save_figure(curves_figure(summary, model), pdf_path, png_path, dpi=150)


def curves_figure(summary: pd.DataFrame, model: str):
    runs = summary[(summary["model"] == model) & (summary["scale"] == 1)]
    if runs.empty:
        raise ValueError(f"no scale-1 runs of model '{model}' to plot")
    epochs = read_epochs(runs)
    datasets = sorted(runs["dataset"].unique())
    settings = setting_order(runs["setting"].unique())
    styles = setting_styles(settings)
    fig, axes = plt.subplots(len(datasets), len(PANELS), figsize=(12, 3.6 * len(datasets) + 1.6),
                             squeeze=False)
    for row_axes, dataset in zip(axes, datasets):
        for ax, (column, ylabel) in zip(row_axes, PANELS):
            for setting in settings:
                data = epochs[(epochs["dataset"] == dataset) & (epochs["setting"] == setting)]
                _lines(ax, data, column, styles[setting]["color"])
            ax.set_title(f"{dataset}: {ylabel}", fontsize=10)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
    from matplotlib.lines import Line2D

    handles = []
    for setting in settings:
        these = runs[runs["setting"] == setting]
        label = group_label(these)
        n_div = int(these["diverged"].sum())
        if n_div:
            label += f" ({n_div} diverged run{'s' if n_div > 1 else ''} left out)"
        handles.append(Line2D([], [], color=styles[setting]["color"], linewidth=2, label=label))
    handles.append(Line2D([], [], color="#444444", marker="o", markerfacecolor="white",
                          linestyle="none", label="a seed's best epoch (its test weights)"))
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8.5, frameon=False)
    seeds = " ".join(str(s) for s in sorted(runs["seed"].unique()))
    height = fig.get_figheight()
    fig.suptitle(f"{model}: learning curves per setting (scale 1)", fontsize=12.5, fontweight="bold",
                 y=1 - 0.12 / height, va="top")
    fig.text(0.5, 1 - 0.48 / height, f"Line: mean over the seeds still training at that epoch (seeds {{{seeds}}}); "
             "band: min–max over them; diverged runs left out.", ha="center", va="top", fontsize=9)
    rows = (len(handles) + 1) // 2
    fig.tight_layout(rect=(0, (0.3 + 0.22 * rows) / height, 1, 1 - 0.75 / height))
    return fig


def _lines(ax, data: pd.DataFrame, column: str, colour: str) -> None:
    ok = data[~data["run_diverged"]]
    values = pd.to_numeric(ok[column], errors="coerce")
    ok = ok.assign(value=values)[np.isfinite(values)]
    if ok.empty:
        return
    stats = ok.groupby("epoch")["value"].agg(["mean", "min", "max"]).sort_index()
    ax.plot(stats.index, stats["mean"], color=colour, linewidth=1.8)
    ax.fill_between(stats.index, stats["min"], stats["max"], color=colour, alpha=0.12, linewidth=0)
    best = ok[pd.to_numeric(ok["epoch"]) == pd.to_numeric(ok["best_epoch"], errors="coerce")]
    ax.plot(best["epoch"], best["value"], linestyle="none", marker="o", markersize=5,
            markerfacecolor="white", markeredgecolor=colour, markeredgewidth=1.5)
