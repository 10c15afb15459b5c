"""The verdict sentence of each setting (frugalmed.results.comparisons.verdict), branch by branch.

The sentence is what a clinic reads in results/recommendations.md and the comparisons tables:
each test pins one rule of it -- which verdict an interval earns against the margin, when no
verdict is given, and every caveat that must travel with the numbers.
"""

from __future__ import annotations

import math

import pytest

from frugalmed.results.comparisons import verdict
from frugalmed.results.study import Study

STUDY = Study(noninferiority_margin=0.02, max_host_load=0.25)


def _row(**changes):
    """A compared setting: 3 pairs, ΔAUC -0.005 (-0.012...+0.003), non-inferior, 0.62x energy."""
    row = dict(n_pairs=3, noninferior=True, delta_auc=-0.005, delta_auc_ci_low=-0.012,
               delta_auc_ci_high=0.003, energy_ratio=0.62, memory_ratio=0.5, time_ratio=1.1,
               memory_source="tensor memory", energy_estimated=False, n_contended=0,
               host_load_recorded=True, n_test_patients=40, bootstrap_undefined_share=0.0,
               confounds="", n_diverged=0, n_unpaired=0, single_class=False)
    row.update(changes)
    return row


HEAD = "ΔAUC −0.005, 95 % CI −0.012…+0.003, margin 0.02"
USES = "uses 0.62× the energy, 0.50× the tensor memory, 1.10× the training time"


@pytest.mark.parametrize("changes, expected", [
    ({}, f"non-inferior: {HEAD}; {USES}"),
    ({"noninferior": False, "delta_auc_ci_high": -0.021, "delta_auc_ci_low": -0.05},
     "inferior (the whole interval lies below −0.02): ΔAUC −0.005, 95 % CI −0.050…−0.021, "
     f"margin 0.02; {USES}"),
    # an interval ending exactly at -margin is not wholly below it
    ({"noninferior": False, "delta_auc_ci_high": -0.02, "delta_auc_ci_low": -0.05},
     "not shown non-inferior (the interval reaches below −0.02): ΔAUC −0.005, 95 % CI "
     f"−0.050…−0.020, margin 0.02; {USES}"),
    ({"noninferior": None, "n_pairs": 2},
     f"insufficient seeds (2 pairs; 3 needed for a verdict): {HEAD}; {USES}"),
    ({"noninferior": float("nan"), "n_pairs": 1},
     f"insufficient seeds (1 pair; 3 needed for a verdict): {HEAD}; {USES}"),
    ({"energy_estimated": True}, f"non-inferior: {HEAD}; {USES} (energy estimated, not metered)"),
    ({"energy_estimated": True, "energy_ratio": math.nan},
     f"non-inferior: {HEAD}; uses 0.50× the tensor memory, 1.10× the training time"),
    ({"energy_ratio": math.nan, "memory_ratio": math.nan, "time_ratio": math.nan, "memory_source": None},
     f"non-inferior: {HEAD}"),
    ({"memory_source": None, "energy_ratio": math.nan, "time_ratio": math.nan},
     f"non-inferior: {HEAD}; uses 0.50× the memory"),
])
def test_the_verdict_and_what_it_costs(changes, expected):
    """Bug caught: an interval touching −margin called inferior, a setting with too few pairs
    given a verdict, the ratios or the estimated-energy warning dropped or misattributed."""
    assert verdict(_row(**changes), STUDY) == expected


@pytest.mark.parametrize("changes, caveat", [
    ({"n_contended": 2}, "2 of 3 pairs measured on a busy host (other processes > 25% of the "
                         "CPU/GPU): time and energy ratios unreliable"),
    ({"host_load_recorded": False}, "host load not recorded"),
    ({"n_test_patients": 19}, "only 19 test patients: the interval understates test-set variation"),
    ({"bootstrap_undefined_share": 0.06}, "test set too small for a reliable patient bootstrap "
                                          "(6% of resamples had one class)"),
    ({"confounds": "site_id (AUC 0.71)"}, "confound flagged (site_id (AUC 0.71))"),
    ({"n_contended": 1, "n_test_patients": 5},
     "1 of 3 pairs measured on a busy host (other processes > 25% of the CPU/GPU): time and "
     "energy ratios unreliable; only 5 test patients: the interval understates test-set variation"),
])
def test_every_reason_to_distrust_a_number_is_said(changes, caveat):
    """Bug caught: a caveat dropped, shown when it does not apply, or glued without its '; '."""
    assert verdict(_row(**changes), STUDY) == f"non-inferior: {HEAD}; {USES}; {caveat}"


@pytest.mark.parametrize("changes", [
    {"n_test_patients": 20}, {"n_test_patients": None}, {"bootstrap_undefined_share": 0.05},
    {"n_contended": 0, "host_load_recorded": True},
])
def test_no_caveat_at_the_thresholds(changes):
    """20 test patients and 5 % one-class resamples are enough (the thresholds are strict)."""
    assert verdict(_row(**changes), STUDY) == f"non-inferior: {HEAD}; {USES}"


def test_settings_that_cannot_be_judged_say_why_with_their_exclusions():
    assert verdict(_row(), STUDY, has_baseline=False) == (
        "not compared: no baseline run of this model and scale is configured")
    assert verdict(_row(n_pairs=0, n_diverged=2, n_unpaired=1), STUDY) == (
        "not compared: no seed has a finished run of both this setting and baseline "
        "(2 seed(s) with a diverged run excluded; 1 unpaired seed(s) excluded)")
    assert verdict(_row(delta_auc=math.nan, single_class=True), STUDY) == (
        "no ΔAUC: the test split has one class only")
    assert verdict(_row(delta_auc=math.nan, n_unpaired=1), STUDY) == (
        "no ΔAUC: the runs' test AUC is undefined (1 unpaired seed(s) excluded)")
    assert verdict(_row(n_diverged=1), STUDY) == (
        f"non-inferior: {HEAD}; {USES} (1 seed(s) with a diverged run excluded)")
