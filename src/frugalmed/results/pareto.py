"""figures/pareto_{dataset}: test AUC against energy and against memory, one marker per model x
setting, each model's Pareto front drawn, the baseline ringed.

AUC carries its 95 % interval (hierarchical bootstrap over seeds and test patients, from the
comparisons' settings table), the resources their range over seeds. The front of a model in a
panel is the set of its settings that no other setting of that model beats in both AUC and
that resource (on means); a setting off the front costs more for no better AUC.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from frugalmed.plotting import save_figure
from frugalmed.results.frontier import pareto_mask
from frugalmed.results.style import plt, setting_styles
from frugalmed.results.summary import setting_order

PANELS = (("energy", "E: training energy (kWh)"), ("memory", "Memory (GB)"))
MODEL_COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
                 "tab:pink", "tab:olive", "tab:cyan", "tab:gray"]


def plot_pareto(settings: pd.DataFrame, dataset: str, pdf_path: str | os.PathLike[str],
                png_path: str | os.PathLike[str], memory_label: str = "Memory (GB)",
                estimated: bool = False, notes: list[str] | None = None) -> None:
    save_figure(pareto_figure(settings, dataset, memory_label, estimated, notes), pdf_path,
                png_path, dpi=150)


def pareto_figure(settings: pd.DataFrame, dataset: str, memory_label: str = "Memory (GB)",
                  estimated: bool = False, notes: list[str] | None = None):
    table = settings[(settings["dataset"] == dataset) & (settings["n_seeds"] > 0)]
    if table.empty:
        raise ValueError(f"no finished runs of dataset '{dataset}' to plot")
    groups = sorted({(m, int(s)) for m, s in zip(table["model"], table["scale"])})
    several_scales = len({s for _, s in groups}) > 1
    colours = {g: MODEL_COLOURS[i % len(MODEL_COLOURS)] for i, g in enumerate(groups)}
    styles = setting_styles(table["setting"])
    fig, axes = plt.subplots(1, len(PANELS), figsize=(12.5, 5.2), sharey=True)
    for ax, (resource, xlabel) in zip(axes, PANELS):
        for group in groups:
            rows = table[(table["model"] == group[0]) & (table["scale"] == group[1])]
            _group(ax, rows, resource, colours[group], styles)
        x = table[f"{resource}_mean"].to_numpy(float)
        x = x[np.isfinite(x) & (x > 0)]
        if len(x) and x.max() / x.min() > 20:
            ax.set_xscale("log")
        label = memory_label if resource == "memory" else xlabel + ("†" if estimated else "")
        ax.set_xlabel(label + " — lower is better")
        ax.grid(True, alpha=0.3)
        if not len(x):
            ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", color="#666666")
    axes[0].set_ylabel("$P_T$: test ROC AUC — higher is better")
    from matplotlib.lines import Line2D

    model_handles = [Line2D([], [], color=colours[g], linewidth=2,
                            label=f"{g[0]}" + (f" (scale {g[1]})" if several_scales else "")
                            + ": colour, line = its Pareto front")
                     for g in groups]
    setting_handles = []
    for setting in setting_order(styles):
        label = " / ".join(dict.fromkeys(table.loc[table["setting"] == setting, "label"].astype(str)))
        setting_handles.append(Line2D([], [], color="#444444", marker=styles[setting]["marker"],
                                      linestyle="none", label=label or setting))
    setting_handles.append(Line2D([], [], color="black", marker="o", markerfacecolor="none",
                                  markersize=12, linestyle="none", label="baseline (ringed)"))
    handles = model_handles + setting_handles
    ncol = 2
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    caption = ("Markers: mean over the non-diverged seeds. Vertical bars: 95 % interval of the mean "
               "AUC (seeds and test patients resampled); horizontal bars: min–max over seeds.")
    if notes:
        caption += "\n" + "\n".join(notes)
    fig.suptitle(f"{dataset}: test AUC against cost, every model and setting", fontsize=12.5,
                 fontweight="bold")
    fig.text(0.5, 1 - 0.42 / fig.get_figheight(), caption, ha="center", va="top", fontsize=8.5)
    n_rows = math.ceil(len(handles) / ncol)
    height = fig.get_figheight()
    fig.set_figheight(height + 0.2 * n_rows)
    height = fig.get_figheight()
    fig.subplots_adjust(top=1 - (0.9 + 0.18 * len(notes or [])) / height,
                        bottom=(0.9 + 0.2 * n_rows) / height, left=0.08, right=0.98, wspace=0.08)
    return fig


def _group(ax, rows: pd.DataFrame, resource: str, colour: str, styles) -> None:
    mean = rows[f"{resource}_mean"].to_numpy(float)
    auc = rows["auc_mean"].to_numpy(float)
    ok = np.isfinite(mean) & np.isfinite(auc)
    for (_, row), good in zip(rows.iterrows(), ok):
        if not good:
            continue
        x, y = row[f"{resource}_mean"], row["auc_mean"]
        xerr = [[x - row[f"{resource}_min"]], [row[f"{resource}_max"] - x]]
        yerr = [[y - row["auc_ci_low"]], [row["auc_ci_high"] - y]]
        # float rounding can put a mean a hair outside its own range: clip at zero
        xerr, yerr = (np.clip(np.nan_to_num(e), 0, None) for e in (xerr, yerr))
        ax.errorbar([x], [y], xerr=xerr, yerr=yerr, color=colour,
                    marker=styles[row["setting"]]["marker"], markersize=7, capsize=2,
                    linewidth=0.9, alpha=0.9)
        if row["setting"] == "baseline":
            ax.plot([x], [y], marker="o", markersize=15, markerfacecolor="none",
                    markeredgecolor="black", linestyle="none")
    if ok.sum() >= 1:
        mask = pareto_mask(np.column_stack([auc[ok], mean[ok]]), [True, False])
        front = np.column_stack([mean[ok][mask], auc[ok][mask]])
        front = front[np.argsort(front[:, 0])]
        ax.step(front[:, 0], front[:, 1], where="post", color=colour, linewidth=1.4, alpha=0.8)
