"""Test AUC against the RSNA downsampling scale, one line per setting, mean +- std over seeds.

Points are plotted at their scales in ascending order with their measured means (no
smoothing, no sorting of the y values); diverged runs are excluded and counted in the legend.
"""

from __future__ import annotations

import os

import pandas as pd

from frugalmed.plotting import save_figure
from frugalmed.results.aggregate import DDOF
from frugalmed.results.style import plt, setting_styles
from frugalmed.results.summary import setting_order


def plot_downsampling(table: pd.DataFrame, runs: pd.DataFrame, model: str,
                      pdf_path: str | os.PathLike[str], png_path: str | os.PathLike[str],
                      image_size: int | None = None, dataset: str = "rsna") -> None:
    """Write the model's downsampling figure as PDF + PNG.

    `table` is aggregate.aggregate() of the model's runs on `dataset` (every scale), `runs`
    their summary; `image_size` (the scale-1 side in px) adds the resulting size to the x ticks.
    """
    table = table[(table["model"] == model) & (table["dataset"] == dataset)]
    runs = runs[(runs["model"] == model) & (runs["dataset"] == dataset)]
    if table.empty:
        raise ValueError(f"no {dataset} runs of model '{model}' to plot")
    settings = setting_order(table["setting"].unique())
    styles = setting_styles(settings)
    scales = sorted(table["scale"].unique())
    fig, ax = plt.subplots(figsize=(6.8, 4.6))
    for setting in settings:
        rows = table[table["setting"] == setting].sort_values("scale")
        drawn = rows[rows["n_seeds"] > 0]
        n_div = int(rows["n_diverged"].sum())
        label = setting + (f" ({n_div} diverged run{'s' if n_div > 1 else ''} excluded)"
                           if n_div else "")
        if drawn.empty:
            label = f"{setting} (all runs diverged: not drawn)"
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
    ax.legend(fontsize=9, frameon=False, loc="best")
    fig.tight_layout()
    save_figure(fig, pdf_path, png_path, dpi=150)


def _scale_label(scale: int, image_size: int | None) -> str:
    if image_size:
        side = image_size // scale
        return f"{scale}×\n({side}×{side} px)"
    return f"{scale}×"
