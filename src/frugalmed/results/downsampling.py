"""Test AUC against the downsampling scale, one line per setting, mean +- std over seeds.

One panel per dataset that has runs of the model at more than one scale (the paper's
downsampling experiment uses RSNA; any dataset name works). Points are plotted at their scales
in ascending order with their measured means (no smoothing, no sorting of the y values);
diverged runs are excluded and counted in the legend; settings are labelled with the precision
that really ran.
"""

from __future__ import annotations

import os
from typing import Mapping

import pandas as pd

from frugalmed.plotting import save_figure
from frugalmed.results.aggregate import DDOF
from frugalmed.results.style import plt, setting_styles
from frugalmed.results.summary import setting_order


def downsampling_datasets(table: pd.DataFrame, model: str) -> list[str]:
    """Datasets with runs of `model` at more than one scale."""
    rows = table[table["model"] == model]
    return sorted(d for d, g in rows.groupby("dataset") if g["scale"].nunique() > 1)


def plot_downsampling(table: pd.DataFrame, runs: pd.DataFrame, model: str,
                      pdf_path: str | os.PathLike[str], png_path: str | os.PathLike[str],
                      image_sizes: Mapping[str, int] | None = None) -> None:
    """Write the model's downsampling figure as PDF + PNG.

    `table` is aggregate.aggregate() of the model's runs (every scale), `runs` their summary;
    `image_sizes` (dataset -> scale-1 side in px) adds the resulting size to the x ticks.
    """
    datasets = downsampling_datasets(table, model)
    if not datasets:
        raise ValueError(f"no dataset has runs of model '{model}' at more than one scale")
    fig, axes = plt.subplots(1, len(datasets), figsize=(7.6 * len(datasets), 5.0), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        _panel(ax, table[(table["model"] == model) & (table["dataset"] == dataset)],
               runs[(runs["model"] == model) & (runs["dataset"] == dataset)], model, dataset,
               (image_sizes or {}).get(dataset))
    fig.tight_layout()
    save_figure(fig, pdf_path, png_path, dpi=150)


def _panel(ax, table: pd.DataFrame, runs: pd.DataFrame, model: str, dataset: str,
           image_size: int | None) -> None:
    settings = setting_order(table["setting"].unique())
    styles = setting_styles(settings)
    scales = sorted(table["scale"].unique())
    for setting in settings:
        rows = table[table["setting"] == setting].sort_values("scale")
        drawn = rows[rows["n_seeds"] > 0]
        n_div = int(rows["n_diverged"].sum())
        name = " / ".join(dict.fromkeys(rows["label"].astype(str))) if "label" in rows else setting
        label = name + (f" ({n_div} diverged run{'s' if n_div > 1 else ''} excluded)" if n_div else "")
        if drawn.empty:
            label = f"{name} (all runs diverged: not drawn)"
        style = styles[setting]
        ax.errorbar(
            drawn["scale"], drawn["auc_mean"], yerr=drawn["auc_std"].fillna(0.0),
            color=style["color"], marker=style["marker"], linewidth=1.8, markersize=6,
            capsize=3, label=label,
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(scales)
    ax.set_xticklabels([_scale_label(s, image_size) for s in scales])
    ax.minorticks_off()
    ax.set_xlabel("downsampling factor" + (" (resulting image side)" if image_size else ""))
    ax.set_ylabel("$P_T$: test ROC AUC")
    ax.grid(True, alpha=0.3)
    pad = 0.25 if len(scales) > 1 else 1.0
    ax.set_xlim(min(scales) / 2**pad, max(scales) * 2**pad)
    seeds = " ".join(str(s) for s in sorted(runs["seed"].unique()))
    ax.set_title(
        f"{model} on {dataset}: test AUC against downsampling\n"
        f"mean ± sample std (ddof={DDOF}) over seeds {{{seeds}}}; diverged runs excluded",
        fontsize=10.5,
    )
    ax.legend(fontsize=8.5, frameon=False, loc="best")


def _scale_label(scale: int, image_size: int | None) -> str:
    if image_size:
        side = image_size // scale
        return f"{scale}×\n({side}×{side} px)"
    return f"{scale}×"
