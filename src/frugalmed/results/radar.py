"""Radar figure of one model: P_T, E, peak memory and T of every setting, a panel per dataset.

Orientation rule, the same on every axis: OUTWARD = BETTER. Test AUC grows outward; energy,
peak memory and training time shrink outward. Each axis carries its own scale with tick
labels in real units (AUC, kWh, GB, s), five evenly spaced "nice" values, so the grid circles
mark the same tick on every axis. A polygon is the mean over the non-diverged seeds.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from frugalmed.plotting import save_figure
from frugalmed.results.style import plt, setting_styles
from frugalmed.results.summary import is_estimated

INNER = 0.18  # radius of the worst tick: keeps the worst values off the centre point
N_TICKS = 5


@dataclass(frozen=True)
class Axis:
    column: str
    label: str
    higher_is_better: bool


AXES = (
    Axis("auc_mean", "$P_T$: test AUC", True),
    Axis("energy_kwh_mean", "E: energy (kWh)", False),
    Axis("memory_gb_mean", "Peak memory (GB)", False),
    Axis("time_s_mean", "T: training time (s)", False),
)
RULE = "Outward = better on every axis: higher test AUC; lower energy, peak memory, training time."


def nice_ticks(low: float, high: float, n: int = N_TICKS, floor: float | None = None,
               ceiling: float | None = None) -> np.ndarray:
    """n evenly spaced round values covering [low, high] with a margin.

    The step is 1, 2, 2.5 or 5 x 10^k; `floor`/`ceiling` clip the range (0 for costs, 1 for AUC).
    """
    span = high - low
    if not math.isfinite(span):
        raise ValueError(f"cannot scale an axis over [{low}, {high}]")
    if span <= 1e-9 * max(abs(low), abs(high)):  # equal up to float noise (means of equal AUCs)
        span = abs(high) * 0.1 or 1e-6
    low, high = low - 0.15 * span, high + 0.15 * span
    if floor is not None:
        low = max(low, floor)
    if ceiling is not None:
        high = min(high, ceiling)
    raw = (high - low) / (n - 1)
    exponent = math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10, 20):
        step = factor * 10.0**exponent
        start = math.floor(low / step) * step
        if floor is not None:
            start = max(start, floor)
        if ceiling is not None and start + (n - 1) * step > ceiling:
            start = max(ceiling - (n - 1) * step, floor if floor is not None else -math.inf)
        if start + (n - 1) * step >= high - 1e-12 * abs(high):
            return start + step * np.arange(n)
    return np.linspace(low, high, n)


def tick_text(value: float, step: float) -> str:
    """A tick value with as many decimals as its step needs ("0" for zero)."""
    if abs(value) < step * 1e-9:
        return "0"
    step = float(f"{step:.10g}")  # 0.09999999999 (float noise) -> 0.1
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 3
    if step * 10**decimals % 1 > 1e-6:  # steps like 2.5 x 10^k need one more digit
        decimals += 1
    return f"{value:.{decimals}f}"


def plot_radar(table: pd.DataFrame, runs: pd.DataFrame, model: str,
               pdf_path: str | os.PathLike[str], png_path: str | os.PathLike[str]) -> None:
    """Write the model's radar as PDF + PNG.

    `table` is aggregate.aggregate() of the model's scale-1 runs, `runs` the same runs' summary.
    """
    table = table[(table["model"] == model) & (table["scale"] == 1)]
    runs = runs[(runs["model"] == model) & (runs["scale"] == 1)]
    if table.empty:
        raise ValueError(f"no scale-1 runs of model '{model}' to plot")
    datasets = sorted(table["dataset"].unique())
    styles = setting_styles(table["setting"])
    fig, axes = plt.subplots(
        1, len(datasets), subplot_kw={"projection": "polar"},
        figsize=(max(6.4, 5.8 * len(datasets)), 5.7), squeeze=False,
    )
    estimated = sorted({s for s in runs["energy_source"] if is_estimated(s)})
    for ax, dataset in zip(axes[0], datasets):
        _panel(ax, table[table["dataset"] == dataset], runs[runs["dataset"] == dataset],
               dataset, styles)
    handles, labels = _legend_entries(table, styles)
    ncol = len(labels) if len(labels) <= 5 else math.ceil(len(labels) / 2)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, bbox_to_anchor=(0.5, 0.0),
               frameon=False, fontsize=9, handlelength=2.5)
    seeds = " ".join(str(s) for s in sorted(runs["seed"].unique()))
    subtitle = (f"{RULE}\nPolygons: mean over seeds {{{seeds}}}; diverged runs excluded; "
                "each panel scales its axes to its own values.")
    if estimated:
        subtitle += f"\n† energy estimated ({', '.join(estimated)}), not metered."
    fig.suptitle(f"{model}: performance and cost per setting (scale 1)", fontsize=13,
                 fontweight="bold", y=0.99)
    fig.text(0.5, 0.95, subtitle, ha="center", va="top", fontsize=9)
    fig.subplots_adjust(wspace=0.6, bottom=0.1, top=0.72)
    save_figure(fig, pdf_path, png_path, dpi=150)


def _panel(ax, rows: pd.DataFrame, runs: pd.DataFrame, dataset: str,
           styles: dict[str, dict[str, str]]) -> None:
    plotted = rows[rows["n_seeds"] > 0]
    # spokes on the diagonals: no spoke is horizontal, so no tick labels crowd along a line
    angles = np.linspace(0, 2 * np.pi, len(AXES), endpoint=False) + np.pi / len(AXES)
    ax.set_theta_offset(np.pi / 2)
    ax.set_theta_direction(-1)
    ax.set_ylim(0, 1)
    grid = INNER + (1 - INNER) * np.arange(N_TICKS) / (N_TICKS - 1)
    ax.set_rgrids(grid, labels=[""] * N_TICKS)
    ax.spines["polar"].set_visible(False)
    estimated = runs["energy_source"].map(is_estimated).any()
    ax.set_xticks(angles)
    ax.set_xticklabels(
        [a.label + ("†" if estimated and a.column.startswith("energy") else "") for a in AXES],
        fontsize=9.5,
    )
    ax.tick_params(axis="x", pad=10)
    for label, angle in zip(ax.get_xticklabels(), angles):
        # text beside its spoke's end, away from the plot
        label.set_horizontalalignment("left" if math.sin(angle) > 0 else "right")
    radii = {}
    for angle, axis in zip(angles, AXES):
        values = plotted[axis.column].astype(float)
        values = values[np.isfinite(values)]
        if values.empty:  # e.g. no energy tracker could run: say so, draw no vertex there
            radii[axis.column] = None
            ax.annotate("not measured", xy=(angle, 0.6), ha="center", va="center",
                        fontsize=8, color="#666666", style="italic")
            continue
        ticks = nice_ticks(values.min(), values.max(),
                           floor=0.0, ceiling=1.0 if axis.higher_is_better else None)
        radii[axis.column] = _scaler(ticks, axis.higher_is_better)
        _label_ticks(ax, angle, ticks, radii[axis.column])
    for _, row in plotted.iterrows():
        r = [radii[a.column](row[a.column]) if radii[a.column] else np.nan for a in AXES]
        style = styles[row["setting"]]
        ax.plot(np.append(angles, angles[0]), np.append(r, r[0]), color=style["color"],
                marker=style["marker"], linewidth=1.8, markersize=5)
        ax.fill(angles, r, color=style["color"], alpha=0.04)
    memory = ", ".join(sorted(set(runs["memory_source"])))
    device = ", ".join(sorted(set(runs["device"])))
    ax.set_title(f"{dataset}\n(device: {device}; memory: {memory})", fontsize=10.5, pad=36)


def _scaler(ticks: np.ndarray, higher_is_better: bool):
    low, high = float(ticks[0]), float(ticks[-1])

    def radius(value: float) -> float:
        frac = (value - low) / (high - low)
        if not higher_is_better:
            frac = 1 - frac
        return INNER + (1 - INNER) * frac

    return radius


def _label_ticks(ax, angle: float, ticks: np.ndarray, radius) -> None:
    """Real-unit tick labels along one spoke, nudged sideways off the line."""
    step = float(ticks[1] - ticks[0])
    screen = np.pi / 2 - angle  # direction of the spoke on the page
    side = screen - np.pi / 2   # perpendicular, clockwise of the spoke
    dx, dy = 5 * math.cos(side), 5 * math.sin(side)
    ha = "left" if dx > 1 else "right" if dx < -1 else "center"
    va = "bottom" if dy > 1 else "top" if dy < -1 else "center"
    for t in ticks:
        ax.annotate(tick_text(float(t), step), xy=(angle, radius(float(t))),
                    xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                    fontsize=7.5, color="#333333",
                    bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "alpha": 0.6,
                          "edgecolor": "none"})


def _legend_entries(table: pd.DataFrame, styles: dict[str, dict[str, str]]):
    from matplotlib.lines import Line2D

    handles, labels = [], []
    for setting, style in styles.items():
        rows = table[table["setting"] == setting]
        label = setting
        n_div = int(rows["n_diverged"].sum())
        where = ", ".join(rows.loc[rows["n_diverged"] > 0, "dataset"])
        if (rows["n_seeds"] == 0).all():
            label += " (all runs diverged: not drawn)"
        elif n_div:
            label += f" ({n_div} diverged run{'s' if n_div > 1 else ''} excluded: {where})"
        handles.append(Line2D([], [], color=style["color"], marker=style["marker"], linewidth=1.8))
        labels.append(label)
    return handles, labels
