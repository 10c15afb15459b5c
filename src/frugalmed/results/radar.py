"""Radar figure of one model: P_T, E, memory and T of every setting, a panel per dataset.

Orientation rule, the same on every axis: OUTWARD = BETTER. Test AUC grows outward; energy,
memory and training time shrink outward.

No auto-zoom. A radar that stretches each axis over its own min-max makes noise look like an
effect (the demo's LIDC AUCs of 0.996-1.000 spanned a whole axis). Here the AUC axis is fixed
from 0.5 (chance, centre ring) to 1 (rim) in every panel, and each resource axis starts at zero
(zero cost at the rim; the panel's largest value, rounded up, at the centre ring), in real
units. So a length on an axis is proportional to a difference in AUC or in cost, and equal
differences look equal in every figure. Whiskers show the uncertainty: on the AUC spoke the
95 % interval of the mean over seeds (hierarchical bootstrap over seeds and test patients, as in
the comparisons), on the resource spokes the range over seeds; a difference inside the whiskers
is visibly inside them.
"""

from __future__ import annotations

import math
import os
import textwrap
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from frugalmed.plotting import save_figure
from frugalmed.results.style import plt, setting_styles
from frugalmed.results.summary import setting_order

INNER = 0.18  # radius of the worst tick: keeps the worst values off the centre point
N_TICKS = 6  # AUC 0.5, 0.6, ..., 1.0
AUC_RANGE = (0.5, 1.0)


@dataclass(frozen=True)
class Axis:
    column: str          # a column of the settings table (frugalmed.results.comparisons)
    low: str             # whisker columns
    high: str
    label: str
    higher_is_better: bool
    fixed: tuple[float, float] | None = None  # a fixed range; None = from zero to the panel's max


AXES = (
    Axis("auc_mean", "auc_ci_low", "auc_ci_high", "$P_T$: test AUC", True, AUC_RANGE),
    Axis("energy_mean", "energy_min", "energy_max", "E: energy (kWh)", False),
    Axis("memory_mean", "memory_min", "memory_max", "Memory (GB)", False),
    Axis("time_mean", "time_min", "time_max", "T: training time (s)", False),
)
RULE = "Outward = better on every axis: higher test AUC; lower energy, memory, training time."
SCALES = ("AUC axis fixed from 0.5 (centre ring) to 1 (rim); energy, memory and time axes start "
          "at zero cost (rim), in real units. Whiskers: AUC 95 % interval (seeds and test "
          "patients resampled); resources: min–max over seeds.")


def nice_ticks(low: float, high: float, n: int = N_TICKS, floor: float | None = None) -> np.ndarray:
    """n evenly spaced round values covering [low, high] with a 15 % margin on each side.

    The step is the smallest of 1, 2, 2.5, 5, 10 or 20 x 10^k whose ticks, starting at a
    multiple of the step, cover the padded range; `floor` clips the range (0 for costs).
    """
    span = high - low
    if not math.isfinite(span):
        raise ValueError(f"cannot scale an axis over [{low}, {high}]")
    if span <= 1e-9 * max(abs(low), abs(high)):  # equal up to float noise
        span = abs(high) * 0.1 or 1e-6
    low, high = low - 0.15 * span, high + 0.15 * span
    if floor is not None:
        low = max(low, floor)
    raw = (high - low) / (n - 1)
    exponent = math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10, 20):
        step = factor * 10.0**exponent
        start = math.floor(low / step) * step
        if floor is not None:
            start = max(start, floor)
        if start + (n - 1) * step >= high - 1e-12 * abs(high):
            return start + step * np.arange(n)
    return np.linspace(low, high, n)  # only for n = 2, where no aligned pair may cover


def tick_text(value: float, step: float) -> str:
    """A tick value with as many decimals as its step needs ("0" for zero)."""
    if abs(value) < step * 1e-9:
        return "0"
    step = float(f"{step:.10g}")  # 0.09999999999 (float noise) -> 0.1
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 3
    if step * 10**decimals % 1 > 1e-6:  # steps like 2.5 x 10^k need one more digit
        decimals += 1
    return f"{value:.{decimals}f}"


def axis_ticks(axis: Axis, values: np.ndarray) -> np.ndarray:
    """The axis' ticks: the fixed range, or zero to a round value at or above every value."""
    if axis.fixed is not None:
        return np.linspace(axis.fixed[0], axis.fixed[1], N_TICKS)
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    top = float(values.max()) if len(values) else 1.0
    if top <= 0:
        top = 1.0
    return nice_ticks(0.0, top, floor=0.0)


def radius_of(ticks: np.ndarray, higher_is_better: bool):
    """value -> radius on this axis (INNER = worst tick, 1 = best tick), clipped to the axis."""
    low, high = float(ticks[0]), float(ticks[-1])

    def radius(value: float) -> float:
        frac = min(max((float(value) - low) / (high - low), 0.0), 1.0)
        if not higher_is_better:
            frac = 1 - frac
        return INNER + (1 - INNER) * frac

    return radius


@dataclass(frozen=True)
class AxisScale:
    ticks: np.ndarray
    radius: Callable[[float], float]


@dataclass(frozen=True)
class PanelGeometry:
    """Where everything of one panel lies, in radii (INNER = worst tick, 1 = best), per AXES."""

    scales: dict[str, AxisScale | None]          # axis column -> scale; None: nothing measured
    vertices: dict[str, list[float]]             # setting -> one radius per axis (NaN: none)
    whiskers: dict[str, list[tuple[float, float] | None]]  # setting -> (low, high) radii per axis


def panel_geometry(plotted: pd.DataFrame) -> PanelGeometry:
    """The radii of one panel's settings (rows of the settings table with a usable seed).

    Kept apart from the drawing so that what the figure says -- which setting lies further
    out on which axis, and how far its whiskers reach -- is tested without reading pixels.
    """
    scales: dict[str, AxisScale | None] = {}
    for axis in AXES:
        if not np.isfinite(plotted[axis.column].to_numpy(dtype=float)).any():
            scales[axis.column] = None
            continue
        ticks = axis_ticks(axis, plotted[[axis.column, axis.high]].to_numpy(dtype=float).ravel())
        scales[axis.column] = AxisScale(ticks, radius_of(ticks, axis.higher_is_better))
    vertices, whiskers = {}, {}
    for _, row in plotted.iterrows():
        vertex, spans = [], []
        for axis in AXES:
            scale = scales[axis.column]
            value, lo, hi = (float(row[c]) for c in (axis.column, axis.low, axis.high))
            vertex.append(scale.radius(value) if scale and math.isfinite(value) else np.nan)
            spans.append((scale.radius(lo), scale.radius(hi))
                         if scale and math.isfinite(lo) and math.isfinite(hi) else None)
        vertices[row["setting"]], whiskers[row["setting"]] = vertex, spans
    return PanelGeometry(scales, vertices, whiskers)


def plot_radar(settings: pd.DataFrame, model: str, pdf_path: str | os.PathLike[str],
               png_path: str | os.PathLike[str], memory_label: str = "Memory (GB)",
               estimated: bool = False) -> None:
    """Write the model's radar as PDF + PNG from the settings table (one row per dataset x
    setting at scale 1: means, intervals, ranges, labels; frugalmed.results.comparisons)."""
    fig = radar_figure(settings, model, memory_label=memory_label, estimated=estimated)
    save_figure(fig, pdf_path, png_path, dpi=150)


def radar_figure(settings: pd.DataFrame, model: str, memory_label: str = "Memory (GB)",
                 estimated: bool = False):
    """The radar as a matplotlib Figure; every polygon's line has gid 'dataset:setting'."""
    table = settings[(settings["model"] == model) & (settings["scale"] == 1)]
    if table.empty:
        raise ValueError(f"no scale-1 runs of model '{model}' to plot")
    datasets = sorted(table["dataset"].unique())
    styles = setting_styles(table["setting"])
    handles, labels = _legend_entries(table, styles)
    width = max(7.5, 6.6 * len(datasets))
    ncol = 2 if len(datasets) > 1 and len(labels) > 3 else 1
    legend_rows = math.ceil(len(labels) / ncol)
    height = 6.8 + 0.22 * legend_rows
    fig, axes = plt.subplots(
        1, len(datasets), subplot_kw={"projection": "polar"}, figsize=(width, height), squeeze=False,
    )
    for ax, dataset in zip(axes[0], datasets):
        _panel(ax, table[table["dataset"] == dataset], dataset, styles, memory_label, estimated)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, bbox_to_anchor=(0.5, 0.0),
               frameon=False, fontsize=8.5, handlelength=2.5)
    wrap = int(width * 13)
    subtitle = "\n".join(textwrap.wrap(RULE, wrap) + textwrap.wrap(SCALES, wrap)
                         + ["Polygons: mean over the non-diverged seeds."]
                         + (["† energy estimated, not metered."] if estimated else []))
    fig.suptitle(f"{model}: performance and cost per setting (scale 1)", fontsize=13,
                 fontweight="bold", y=0.995)
    fig.text(0.5, 1 - 0.45 / height, subtitle, ha="center", va="top", fontsize=8.5)
    n_lines = subtitle.count("\n") + 1
    fig.subplots_adjust(wspace=0.75, bottom=(0.3 + 0.22 * legend_rows + 0.45) / height,
                        top=1 - (0.6 + 0.15 * n_lines + 0.75) / height)
    return fig


def _panel(ax, rows: pd.DataFrame, dataset: str, styles: dict[str, dict[str, str]],
           memory_label: str, estimated: bool) -> None:
    plotted = rows[rows["n_seeds"] > 0]
    # spokes on the diagonals: no spoke is horizontal, so no tick labels crowd along a line
    angles = np.linspace(0, 2 * np.pi, len(AXES), endpoint=False) + np.pi / len(AXES)
    ax.set_theta_offset(np.pi / 2)
    ax.set_theta_direction(-1)
    ax.set_ylim(0, 1)
    grid = INNER + (1 - INNER) * np.arange(N_TICKS) / (N_TICKS - 1)
    ax.set_rgrids(grid, labels=[""] * N_TICKS)
    ax.spines["polar"].set_visible(False)
    names = [memory_label if a.column == "memory_mean" else a.label for a in AXES]
    ax.set_xticks(angles)
    ax.set_xticklabels(
        [n + ("†" if estimated and a.column.startswith("energy") else "") for n, a in zip(names, AXES)],
        fontsize=9,
    )
    ax.tick_params(axis="x", pad=10)
    for label, angle in zip(ax.get_xticklabels(), angles):
        label.set_horizontalalignment("left" if math.sin(angle) > 0 else "right")
    geometry = panel_geometry(plotted)
    for angle, axis in zip(angles, AXES):
        scale = geometry.scales[axis.column]
        if scale is None:  # e.g. no energy tracker could run: say so, no vertex there
            ax.annotate("not measured", xy=(angle, 0.6), ha="center", va="center",
                        fontsize=8, color="#666666", style="italic")
        else:
            _label_ticks(ax, angle, scale.ticks, scale.radius)
    n = max(len(plotted), 1)
    for i, setting in enumerate(plotted["setting"]):
        style = styles[setting]
        r = geometry.vertices[setting]
        line, = ax.plot(np.append(angles, angles[0]), np.append(r, r[0]), color=style["color"],
                        marker=style["marker"], linewidth=1.6, markersize=5)
        line.set_gid(f"{dataset}:{setting}")
        ax.fill(angles, r, color=style["color"], alpha=0.04)
        offset = (i - (n - 1) / 2) * 0.035  # spread the whiskers of the settings sideways
        for angle, whisker in zip(angles, geometry.whiskers[setting]):
            if whisker is not None:
                ax.plot([angle + offset] * 2, list(whisker), color=style["color"],
                        linewidth=1.1, alpha=0.8, solid_capstyle="butt")
    low_auc = plotted[plotted["auc_mean"] < AUC_RANGE[0]]
    title = dataset
    if len(low_auc):
        title += "\n(AUC below 0.5 drawn at the centre ring: " + ", ".join(low_auc["setting"]) + ")"
    ax.set_title(title, fontsize=10.5, pad=36)


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
    for setting in setting_order(styles):
        style = styles[setting]
        rows = table[table["setting"] == setting]
        label = " / ".join(dict.fromkeys(rows["label"].astype(str))) or setting
        n_div = int(rows["n_diverged"].sum())
        where = ", ".join(rows.loc[rows["n_diverged"] > 0, "dataset"])
        if (rows["n_seeds"] == 0).all():
            label += " (all runs diverged: not drawn)"
        elif n_div:
            label += f" ({n_div} diverged run{'s' if n_div > 1 else ''} excluded: {where})"
        handles.append(Line2D([], [], color=style["color"], marker=style["marker"], linewidth=1.8))
        labels.append(label)
    return handles, labels
