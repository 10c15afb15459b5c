"""The statistics behind the comparisons: weighted AUC, the documented resampling scheme,
geometric-mean ratios and the non-inferiority rule, each against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from frugalmed.stats.paired import (
    Interval, geometric_mean_ratio, noninferior, paired_delta_auc, percentile_interval,
    resampled_seed_means,
)
from frugalmed.stats.resample import patient_counts, seed_draws
from frugalmed.stats.weighted_auc import auc, patient_weighted_aucs, weighted_aucs


def _data(n=120, seed=0, ties=True):
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.35
    scores = rng.normal(labels * 0.8, 1.0)
    if ties:  # rounded scores: many ties, including ties across labels
        scores = np.round(scores, 1)
    return labels.astype(int), scores


@pytest.mark.parametrize("ties", [True, False])
def test_weighted_aucs_equal_sklearn_with_sample_weight(ties):
    """Catches a wrong tie rule (ties must count 1/2) or weights applied to the wrong images."""
    labels, scores = _data(ties=ties)
    rng = np.random.default_rng(1)
    weights = rng.integers(0, 4, size=(7, len(labels))).astype(float)
    got = weighted_aucs(labels, scores, weights)
    expected = [roc_auc_score(labels, scores, sample_weight=w) for w in weights]
    assert got == pytest.approx(expected, abs=1e-12)
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_patient_weights_reach_every_image_of_the_patient():
    labels, scores = _data(n=90)
    patient_index = np.arange(90) // 3  # 30 patients, 3 images each
    counts = patient_counts(30, 50, seed=4)
    got = patient_weighted_aucs(labels, scores, patient_index, counts)
    expected = weighted_aucs(labels, scores, counts[:, patient_index])
    assert got == pytest.approx(expected, abs=1e-12)


def test_one_class_resample_has_no_auc():
    labels = np.array([0, 0, 1, 1])
    weights = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], dtype=float)
    got = weighted_aucs(labels, np.array([0.1, 0.2, 0.3, 0.4]), weights)
    assert math.isnan(got[0]) and got[1] == 1.0


def test_resampling_follows_the_documented_scheme():
    """docs/results.md promises these exact draws; a change would silently change every interval."""
    counts = patient_counts(7, 5, seed=3)
    draws = np.random.default_rng([3, 0]).integers(0, 7, size=(5, 7))
    assert np.array_equal(counts, np.stack([np.bincount(d, minlength=7) for d in draws]))
    assert (counts.sum(axis=1) == 7).all()
    assert np.array_equal(seed_draws(3, 5, seed=3),
                          np.random.default_rng([3, 1]).integers(0, 3, size=(5, 3)))


def test_resampled_seed_means_pick_the_drawn_seeds_per_resample():
    per_seed = np.array([[1.0, 10.0], [2.0, 20.0], [4.0, 40.0]])  # 3 seeds x 2 resamples
    draws = np.array([[0, 0, 2], [1, 2, 2]])
    assert resampled_seed_means(per_seed, draws) == pytest.approx([(1 + 1 + 4) / 3, (20 + 40 + 40) / 3])


def test_identical_settings_give_zero_delta_and_a_zero_interval():
    boot = np.random.default_rng(0).random((3, 50))
    point = np.array([0.7, 0.8, 0.75])
    delta = paired_delta_auc(point, point, boot, boot, seed_draws(3, 50, 0))
    assert (delta.estimate, delta.low, delta.high) == (0.0, 0.0, 0.0)


def test_percentile_interval_drops_undefined_resamples_and_counts_them():
    low, high, undefined = percentile_interval(np.array([np.nan, 1.0, 2.0, 3.0, np.nan]))
    assert undefined == pytest.approx(0.4)
    assert (low, high) == pytest.approx(tuple(np.percentile([1.0, 2.0, 3.0], [2.5, 97.5])))


def test_geometric_mean_ratio_and_its_t_interval():
    ratios = np.array([0.5, 0.6, 0.45])
    got = geometric_mean_ratio(ratios)
    logs = np.log(ratios)
    half = sps.t.ppf(0.975, 2) * logs.std(ddof=1) / math.sqrt(3)
    assert got.estimate == pytest.approx(math.exp(logs.mean()))
    assert (got.low, got.high) == pytest.approx((math.exp(logs.mean() - half), math.exp(logs.mean() + half)))
    one = geometric_mean_ratio(np.array([0.5]))
    assert one.estimate == 0.5 and math.isnan(one.low)
    with pytest.raises(ValueError, match="finite and positive"):
        geometric_mean_ratio(np.array([0.5, 0.0]))


def test_noninferiority_rule():
    margin = 0.02
    assert noninferior(Interval(-0.004, -0.015, 0.007), margin, 3) is True
    assert noninferior(Interval(-0.01, -0.025, 0.005), margin, 3) is False
    assert noninferior(Interval(-0.01, -0.02, 0.005), margin, 3) is False  # strictly above -margin
    assert noninferior(Interval(0.0, -0.001, 0.001), margin, 2) is None  # too few seeds for a verdict
