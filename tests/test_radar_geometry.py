"""What the radar says, checked on its geometry (frugalmed.results.radar.panel_geometry).

The radar's claims are positions: which setting lies further out on which spoke, by how much,
and how far its whiskers reach. These tests pin them without reading pixels; the figure tests
(test_results_figures.py) check that the drawing uses them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from frugalmed.results.radar import AXES, INNER, axis_ticks, nice_ticks, panel_geometry, radius_of

COSTS = ("energy", "memory", "time")


def _rows(*settings, spread=0.01):
    """Settings rows from (setting, auc, energy, memory, time); whiskers +-spread around means."""
    out = []
    for setting, auc, *costs in settings:
        row = {"setting": setting, "n_seeds": 3, "auc_mean": auc,
               "auc_ci_low": auc - 0.02, "auc_ci_high": min(auc + 0.02, 1.0)}
        for name, value in zip(COSTS, costs):
            row.update({f"{name}_mean": value, f"{name}_min": value * (1 - spread),
                        f"{name}_max": value * (1 + spread)})
        out.append(row)
    return pd.DataFrame(out)


def test_the_better_setting_lies_further_out_on_every_spoke():
    """Bug caught: an axis drawn with better = inward (energy, memory or time as 'higher is
    better'), or the AUC axis reversed."""
    geometry = panel_geometry(_rows(("poor", 0.70, 2e-3, 1.2, 300.0), ("good", 0.80, 1e-3, 0.6, 150.0)))
    for axis, good, poor in zip(AXES, geometry.vertices["good"], geometry.vertices["poor"]):
        assert good > poor, axis.column


def test_auc_spoke_is_fixed_from_chance_to_one_in_every_panel():
    """AUC 0.5 at the centre ring, 1 at the rim, linear between, whatever the other settings'
    AUCs (no zoom), and values outside [0.5, 1] clipped to the ring or rim.

    Bug caught: an AUC axis stretched over the panel's own range, so 0.996 vs 1.000 fills it.
    """
    geometry = panel_geometry(_rows(("a", 0.5, 1, 1, 1), ("b", 0.75, 1, 1, 1), ("c", 1.0, 1, 1, 1),
                                    ("low", 0.3, 1, 1, 1)))
    auc = {s: geometry.vertices[s][0] for s in ("a", "b", "c", "low")}
    assert auc["a"] == pytest.approx(INNER) and auc["c"] == pytest.approx(1.0)
    assert auc["b"] == pytest.approx((INNER + 1) / 2)
    assert auc["low"] == pytest.approx(INNER)
    narrow = panel_geometry(_rows(("x", 0.996, 1, 1, 1), ("y", 1.0, 1, 1, 1)))
    assert narrow.vertices["y"][0] - narrow.vertices["x"][0] == pytest.approx((1 - INNER) * 0.004 / 0.5)
    assert narrow.scales["auc_mean"].ticks.tolist() == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9, 1.0])


@pytest.mark.parametrize("index, name", [(1, "energy"), (2, "memory"), (3, "time")])
def test_cost_spokes_start_at_zero_cost_and_are_linear(index, name):
    """Zero cost would sit at the rim; radius falls linearly with cost, so equal differences in
    cost are equal lengths; the top tick covers every mean and every whisker's upper end.

    Bug caught: a cost axis zoomed to its values, or scaled to the means only (whiskers off
    the axis).
    """
    costs = {"a": 1.0, "b": 2.0, "c": 3.0}
    rows = _rows(*[(s, 0.8, *(v if n == name else 1.0 for n in COSTS)) for s, v in costs.items()],
                 spread=0.2)
    geometry = panel_geometry(rows)
    scale = geometry.scales[f"{name}_mean"]
    assert scale.ticks[0] == 0.0 and scale.radius(0.0) == pytest.approx(1.0)
    assert scale.ticks[-1] >= 3.0 * 1.2  # the largest whisker end
    r = {s: geometry.vertices[s][index] for s in costs}
    assert r["a"] - r["b"] == pytest.approx(r["b"] - r["c"])
    assert r["a"] - r["b"] == pytest.approx((1 - INNER) * 1.0 / scale.ticks[-1])
    assert all(INNER <= v < 1 for v in r.values())


def test_whiskers_span_the_interval_around_the_vertex():
    """On each spoke a setting's whisker runs from its low to its high value's radius, with the
    vertex between; on a cost spoke the higher cost is the inner end.

    Bug caught: whiskers drawn from the mean, swapped ends, or at another setting's values.
    """
    geometry = panel_geometry(_rows(("a", 0.8, 1e-3, 1.0, 100.0), ("b", 0.7, 2e-3, 2.0, 200.0),
                                    spread=0.1))
    for setting in ("a", "b"):
        for i, axis in enumerate(AXES):
            low, high = geometry.whiskers[setting][i]
            vertex = geometry.vertices[setting][i]
            assert min(low, high) < vertex < max(low, high), (setting, axis.column)
            if axis.higher_is_better:
                assert low < high
            else:
                assert low > high  # the low cost lies further out
    row = _rows(("b", 0.7, 2e-3, 2.0, 200.0), spread=0.1).iloc[0]
    scale = geometry.scales["time_mean"]
    assert geometry.whiskers["b"][3] == pytest.approx((scale.radius(row["time_min"]),
                                                       scale.radius(row["time_max"])))


def test_an_axis_no_run_measured_has_no_scale_vertex_or_whisker():
    """Energy not measured by any run: the spoke has no scale, every vertex there is NaN and
    no whisker is drawn; the other spokes are unaffected. One setting missing a value loses
    only its own vertex on that spoke, and an interval missing an end draws no whisker.

    Bug caught: an unmeasured axis drawn as zero energy (at the rim: 'best'), or a crash.
    """
    rows = _rows(("a", 0.8, 1e-3, 1.0, 100.0), ("b", 0.7, 2e-3, 2.0, 200.0))
    rows[["energy_mean", "energy_min", "energy_max"]] = np.nan
    rows.loc[1, ["time_mean", "time_min", "time_max"]] = np.nan
    rows.loc[0, "auc_ci_low"] = np.nan  # an interval with one end only: no whisker
    geometry = panel_geometry(rows)
    assert geometry.whiskers["a"][0] is None and not math.isnan(geometry.vertices["a"][0])
    assert geometry.scales["energy_mean"] is None
    for setting in ("a", "b"):
        assert math.isnan(geometry.vertices[setting][1]) and geometry.whiskers[setting][1] is None
        assert not math.isnan(geometry.vertices[setting][2])
    assert math.isnan(geometry.vertices["b"][3]) and geometry.whiskers["b"][3] is None
    assert not math.isnan(geometry.vertices["a"][3]) and geometry.whiskers["a"][3] is not None


# Each case worked by hand from the rule in nice_ticks' docstring: pad the range by 15 % of
# its span on each side (clipped at the floor), then take the smallest round step whose six
# ticks, from a multiple of the step, reach the padded top.
@pytest.mark.parametrize("low, high, floor, expected", [
    # padded [0, 4.14]: steps 0.1-0.5 end below 4.14, 1 reaches 5
    (0.0, 3.6, 0.0, [0, 1, 2, 3, 4, 5]),
    # padded [0, 5.175]: step 1 ends at 5 < 5.175, so 2
    (0.0, 4.5, 0.0, [0, 2, 4, 6, 8, 10]),
    # padded [2.605, 142.095]: 25 ends at 125, so 50 from 0
    (18.7, 126.0, 0.0, [0, 50, 100, 150, 200, 250]),
    # padded [0.97, 1.23]: 0.05 from 0.95 ends at 1.20, so 0.1 from 0.9
    (1.0, 1.2, None, [0.9, 1.0, 1.1, 1.2, 1.3, 1.4]),
    # padded [8.5, 21.5]: 2.5 from 7.5 ends at 20, so 5 from 5
    (10.0, 20.0, None, [5, 10, 15, 20, 25, 30]),
    # padded [9.925, 10.575]: 0.1 from 9.9 ends at 10.4, so 0.2 from 9.8
    (10.0, 10.5, None, [9.8, 10.0, 10.2, 10.4, 10.6, 10.8]),
    # equal values: span taken as 10 % of the value (0.2), padded [1.97, 2.03]
    (2.0, 2.0, 0.0, [1.96, 1.98, 2.0, 2.02, 2.04, 2.06]),
    # padded [-3.3, -0.7]: 0.5 from -3.5 ends at -1, so 1 from -4
    (-3.0, -1.0, None, [-4, -3, -2, -1, 0, 1]),
    # padded [1.3, 50.7]: 10 from 0 ends at 50, so 20 (the last step of the list)
    (7.0, 45.0, None, [0, 20, 40, 60, 80, 100]),
    # padded [0, 5] exactly: step 1 ends exactly at the top, which counts as covered
    (0.0, 5 / 1.15, 0.0, [0, 1, 2, 3, 4, 5]),
])
def test_nice_ticks_take_the_smallest_round_step_covering_the_padded_range(low, high, floor, expected):
    """Bug caught: another margin, step list or alignment: axes longer than they need to be
    (differences look smaller) or shorter (values beyond the last tick are clipped)."""
    assert nice_ticks(low, high, floor=floor) == pytest.approx(expected)


def test_nice_ticks_of_zero_and_of_two_ticks_still_cover():
    """An all-zero axis gets a tiny non-degenerate range around zero; two ticks (no aligned
    pair may cover) fall back to the padded range itself. Bug caught: a crash (log10 of 0, a
    zero division) or a range that misses the values."""
    zero = nice_ticks(0.0, 0.0)
    assert zero[0] <= 0.0 <= zero[-1] and 0 < zero[-1] - zero[0] < 1e-5
    two = nice_ticks(0.0, 9.0, n=2)
    assert len(two) == 2 and two[0] <= 0.0 and two[-1] >= 9.0
    assert two.tolist() == pytest.approx([-1.35, 10.35])


def test_cost_axis_ticks_run_from_zero_to_a_round_value_above_every_value():
    """Bug caught: the top tick below the largest whisker end (clipped), an axis not from zero,
    or an all-zero / empty axis scaled to something other than 0-1's ticks."""
    energy = AXES[1]
    assert axis_ticks(energy, np.array([1.0, 3.6, np.nan])).tolist() == pytest.approx([0, 1, 2, 3, 4, 5])
    # a demo run's energy (a few Wh) gets its own scale, not 0-1 kWh
    assert axis_ticks(energy, np.array([2e-3, 1e-3, 2.2e-3])).tolist() == pytest.approx(
        [0, 0.001, 0.002, 0.003, 0.004, 0.005])
    assert axis_ticks(energy, np.array([0.0, 0.0])).tolist() == pytest.approx(
        axis_ticks(energy, np.array([1.0])).tolist())
    assert axis_ticks(energy, np.array([np.nan])).tolist() == pytest.approx(
        nice_ticks(0.0, 1.0, floor=0.0).tolist())
    assert axis_ticks(AXES[0], np.array([0.7, 0.8])).tolist() == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9, 1.0])


def test_radius_is_clipped_to_the_axis():
    """A value beyond the ticks sits on the centre ring or the rim, never past them."""
    auc = radius_of(np.linspace(0.5, 1.0, 6), higher_is_better=True)
    assert auc(1.3) == pytest.approx(1.0) and auc(0.1) == pytest.approx(INNER)
    cost = radius_of(np.arange(6.0), higher_is_better=False)
    assert cost(-1.0) == pytest.approx(1.0) and cost(9.0) == pytest.approx(INNER)
