"""Figures of the results stage: the radar's orientation and fixed scales, Pareto and learning
curves, the downsampling figure for any dataset name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from results_fakes import (
    assert_pdf, assert_png, manifest_test_rows, write_manifest, write_metrics, write_run,
)

from frugalmed.results import cli
from frugalmed.results.radar import AXES, INNER, radar_figure
from frugalmed.results.style import plt

COSTS = ("energy", "memory", "time")


def _settings(rows):
    """A settings table (as frugalmed.results.comparisons writes it) from (dataset, setting,
    auc, energy, memory, time) tuples; whiskers +-1 % around the means."""
    out = []
    for dataset, setting, auc, *costs in rows:
        row = dict(dataset=dataset, model="m", scale=1, setting=setting, label=setting, n_runs=3,
                   n_diverged=0, n_seeds=3, auc_mean=auc, auc_ci_low=auc - 0.002,
                   auc_ci_high=min(auc + 0.002, 1.0))
        for name, value in zip(COSTS, costs):
            row.update({f"{name}_mean": value, f"{name}_min": value * 0.99,
                        f"{name}_max": value * 1.01})
        out.append(row)
    return pd.DataFrame(out)


def _radii(fig, dataset, setting):
    """The polygon's radius on each spoke (AXES order) as drawn."""
    for ax in fig.axes:
        for line in ax.lines:
            if line.get_gid() == f"{dataset}:{setting}":
                return np.asarray(line.get_ydata()[: len(AXES)], dtype=float)
    raise AssertionError(f"no polygon {dataset}:{setting}")


def test_radar_outward_is_better_on_every_axis():
    """Fails if any axis is flipped: 'good' beats 'poor' on every axis, so it must lie further
    out on every spoke, in every panel."""
    table = _settings([
        ("rsna", "baseline", 0.70, 2e-3, 1.2, 300.0),   # poor: lower AUC, higher every cost
        ("rsna", "amp", 0.80, 1e-3, 0.6, 150.0),        # good
        ("lidc", "baseline", 0.91, 5e-4, 0.3, 40.0),
        ("lidc", "amp", 0.95, 4e-4, 0.2, 30.0),
    ])
    fig = radar_figure(table, "m")
    try:
        for dataset in ("rsna", "lidc"):
            good, poor = _radii(fig, dataset, "amp"), _radii(fig, dataset, "baseline")
            for axis, g, p in zip(AXES, good, poor):
                assert g > p, f"{dataset}: {axis.column} drawn with better = inward"
    finally:
        plt.close(fig)


def test_radar_axes_are_not_auto_zoomed():
    """The demo's case: AUCs 0.996 vs 1.000 and memory 0.95 vs 1.15 GB. With per-panel min-max
    zoom these would span the whole axis; on fixed scales (AUC 0.5-1, costs from zero) they
    must stay close. Fails if any axis is zoomed to its values."""
    table = _settings([
        ("lidc", "baseline", 1.000, 1.15e-3, 1.15, 115.0),
        ("lidc", "amp", 0.996, 0.95e-3, 0.95, 95.0),
    ])
    fig = radar_figure(table, "m")
    try:
        a, b = _radii(fig, "lidc", "baseline"), _radii(fig, "lidc", "amp")
    finally:
        plt.close(fig)
    span = 1 - INNER
    # AUC: 0.004 on a fixed 0.5-1 axis is 0.8 % of the spoke
    assert abs(a[0] - b[0]) == pytest.approx(span * 0.004 / 0.5, abs=1e-9)
    for i, _ in enumerate(COSTS, start=1):
        # costs from zero: 0.95 vs 1.15 differ by 0.2/1.15 of the value range or less
        assert 0 < b[i] - a[i] <= span * 0.2 / 1.15 + 1e-9, AXES[i].column
    # and a value's radius is its share of a range starting at zero: cost 0 would sit at the rim
    assert all(r < 1 for r in np.r_[a[1:], b[1:]])


def _study(root, datasets=("rsna", "lidc"), settings=("baseline", "amp", "bnb8_half"),
           seeds=(1, 10, 100), scales=(1,)):
    metrics, manifests = [], {}
    for dataset in datasets:
        manifests[dataset] = str(write_manifest(root, dataset, seed=len(dataset)))
        test = manifest_test_rows(manifests[dataset])
        for scale in scales:
            for i, setting in enumerate(settings):
                for seed in seeds:
                    metrics.append(write_run(root, dataset, scale, "densenet", setting, seed, test,
                                             energy_kwh=1e-3 / (1 + i) / scale, train_time_s=100.0 / (1 + i),
                                             tensor_memory_bytes=int(3e6 / (1 + i)),
                                             energy_source="estimated-tdp"))
    return metrics, manifests


def test_radar_pareto_curves_from_runs(tmp_path):
    metrics, manifests = _study(tmp_path)
    figs = tmp_path / "figures"
    cli.radar(metrics, manifests, "densenet", figs / "radar_densenet.pdf", figs / "radar_densenet.png",
              study={"bootstrap": 200})
    out = tmp_path / "results/comparisons"
    rsna = [m for m in metrics if "/rsna/" in str(m)]
    cli.comparisons(rsna, manifests["rsna"], "rsna", out / "rsna.csv", out / "rsna.md",
                    out / "rsna.html", out / "rsna.settings.csv", study={"bootstrap": 200})
    cli.pareto(out / "rsna.settings.csv", "rsna", figs / "pareto_rsna.pdf", figs / "pareto_rsna.png")
    cli.curves(metrics, "densenet", figs / "curves_densenet.pdf", figs / "curves_densenet.png")
    for name in ("radar_densenet", "pareto_rsna", "curves_densenet"):
        assert_pdf(figs / f"{name}.pdf")
        assert_png(figs / f"{name}.png")


def test_pareto_front_and_radar_legend_name_the_precision(tmp_path):
    from frugalmed.results.pareto import pareto_figure

    table = _settings([("rsna", "baseline", 0.80, 2e-3, 1.0, 100.0),
                       ("rsna", "amp", 0.79, 1e-3, 0.5, 50.0),
                       ("rsna", "bnb8", 0.78, 1.5e-3, 0.9, 90.0)])  # dominated by amp
    table["label"] = table["setting"].map({"baseline": "baseline", "amp": "amp (bf16 autocast, no scaler — CPU)",
                                           "bnb8": "bnb8"})
    fig = pareto_figure(table, "rsna")
    try:
        texts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        assert "amp (bf16 autocast, no scaler — CPU)" in texts
        front = [line for line in fig.axes[0].lines if line.get_drawstyle().startswith("steps")]
        assert len(front) == 1
        assert sorted(front[0].get_xdata()) == pytest.approx([1e-3, 2e-3])  # bnb8 is off the front
    finally:
        plt.close(fig)
    fig = radar_figure(table, "m")
    try:
        texts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        assert "amp (bf16 autocast, no scaler — CPU)" in texts
    finally:
        plt.close(fig)


def test_downsampling_for_a_dataset_not_called_rsna(tmp_path):
    paths = [write_metrics(tmp_path, "mammo_site_a", scale, "densenet", setting, seed,
                           test_auc=0.8 - 0.02 * scale + 0.001 * seed)
             for scale in (1, 2, 4) for setting in ("baseline", "amp_bnb8") for seed in (1, 2)]
    figs = tmp_path / "figures"
    cli.downsampling(paths, "densenet", figs / "d.pdf", figs / "d.png", image_sizes={"mammo_site_a": 64})
    assert_pdf(figs / "d.pdf")
    assert_png(figs / "d.png")
