"""The statistics on many small cases, where the edge cases of the fast algorithms live.

The vectorised AUCs (frugalmed.stats.weighted_auc, frugalmed.stats.auc) sort once and count
with cumulative sums; an off-by-one at a tie group's edge, at the lowest score or at a chunk
boundary changes an AUC only on some inputs. Here every small case is checked against
scikit-learn's roc_auc_score with sample weights, the definition the modules document. The
interval helpers are checked at their boundaries (no value, one value, two values).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from frugalmed.stats import weighted_auc
from frugalmed.stats.auc import AucInterval, auc as auc_or_none, patient_bootstrap_auc
from frugalmed.stats.paired import (
    Interval, geometric_mean_ratio, mean_auc_interval, paired_delta_auc, percentile_interval,
    resampled_seed_means,
)
from frugalmed.stats.resample import patient_counts, seed_draws
from frugalmed.stats.weighted_auc import auc, patient_weighted_aucs, weighted_aucs


def _reference(labels, scores, weights):
    """sklearn's weighted AUC per row of weights; NaN where a row leaves one class."""
    out = []
    for w in weights:
        pos, neg = w[labels == 1].sum(), w[labels == 0].sum()
        out.append(roc_auc_score(labels, scores, sample_weight=w) if pos > 0 and neg > 0 else np.nan)
    return np.array(out)


def _small_cases(n_cases=60, seed=0):
    """Tiny test sets with heavy ties (scores from 3 values), both labels, random multiplicities
    including zeros: each case with its labels, scores, image->patient index and counts."""
    rng = np.random.default_rng(seed)
    for _ in range(n_cases):
        n = int(rng.integers(2, 9))
        labels = rng.integers(0, 2, n)
        labels[rng.integers(0, n)] = 1
        labels[(np.flatnonzero(labels == 1)[0] + 1) % n] = 0  # both classes
        scores = rng.integers(0, 3, n).astype(float) / 2
        patients = rng.integers(0, max(1, n - 2), n)
        _, patient_index = np.unique(patients, return_inverse=True)
        counts = rng.integers(0, 3, size=(5, patient_index.max() + 1)).astype(np.int64)
        yield labels, scores, patient_index, counts


def test_weighted_and_patient_aucs_equal_sklearn_on_many_small_tied_cases():
    """Catches boundary slips: the negative at the lowest position, a tie group at the start,
    a row whose weights leave one class (must be NaN, never a number)."""
    for labels, scores, patient_index, counts in _small_cases():
        weights = counts[:, patient_index]
        expected = _reference(labels, scores, weights.astype(float))
        assert weighted_aucs(labels, scores, weights) == pytest.approx(expected, abs=1e-12, nan_ok=True)
        got = patient_weighted_aucs(labels, scores, patient_index, counts)
        assert got == pytest.approx(expected, abs=1e-12, nan_ok=True)
        assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_a_lone_lowest_negative_counts_below_the_first_positives():
    """One negative at the lowest score, then tied positives and negatives: the positives beat
    it (AUC 0.75), which needs the cumulative count at position 0."""
    labels = np.array([0, 1, 0, 1])
    scores = np.array([0.0, 1.0, 1.0, 1.0])
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores)) == pytest.approx(0.75)
    counts = np.array([[1, 1, 1, 1], [2, 0, 1, 3]])
    assert patient_weighted_aucs(labels, scores, np.arange(4), counts) == pytest.approx(
        _reference(labels, scores, counts.astype(float)))


def test_more_resamples_than_a_chunk_are_all_computed(monkeypatch):
    """Resamples are computed in blocks; every block, the last partial one included, must be
    filled (catches a wrong block offset or length)."""
    labels, scores, patient_index, _ = next(_small_cases(seed=3))
    rng = np.random.default_rng(4)
    counts = rng.integers(0, 3, size=(2 * weighted_auc.CHUNK + 7, patient_index.max() + 1))
    expected = _reference(labels, scores, counts[:, patient_index].astype(float))
    assert patient_weighted_aucs(labels, scores, patient_index, counts) == pytest.approx(
        expected, abs=1e-12, nan_ok=True)
    assert weighted_aucs(labels, scores, counts[:, patient_index]) == pytest.approx(
        expected, abs=1e-12, nan_ok=True)


def test_one_class_gives_nan_and_bad_shapes_are_refused():
    assert math.isnan(auc(np.array([1, 1]), np.array([0.2, 0.3])))
    with pytest.raises(ValueError, match="3 labels but 2 scores"):
        auc(np.array([0, 1, 1]), np.array([0.2, 0.3]))
    with pytest.raises(ValueError, match=r"weights \(1, 3\) do not match 2 images"):
        weighted_aucs(np.array([0, 1]), np.array([0.1, 0.2]), np.ones((1, 3)))
    with pytest.raises(ValueError, match="integer patient multiplicities"):
        patient_weighted_aucs(np.array([0, 1]), np.array([0.1, 0.2]), np.array([0, 1]),
                              np.ones((1, 2)))


# --- patient bootstrap of one run's AUC (metrics.json: test_auc_ci) -------------------------

def _plain_bootstrap(labels, probs, patients, n_resamples, seed):
    """The documented scheme written out: draw patients with replacement, all their images."""
    ids, index = np.unique(np.asarray(patients).astype(str), return_inverse=True)
    draws = np.random.default_rng(seed).integers(0, len(ids), size=(n_resamples, len(ids)))
    values = []
    for row in draws:
        weights = np.bincount(row, minlength=len(ids))[index].astype(float)
        values.append(_reference(labels, probs, weights[None])[0])
    return np.array(values)


@pytest.mark.parametrize("seed", [0, 3])
def test_patient_bootstrap_matches_the_plain_loop_on_small_tied_sets(seed):
    """Every valid resample counted (n_valid), one-class resamples left out, the percentile
    interval of the rest; fields record what was done."""
    for labels, scores, patient_index, _ in list(_small_cases(n_cases=8, seed=seed)):
        patients = [f"p{i}" for i in patient_index]
        got = patient_bootstrap_auc(labels, scores, patients, n_resamples=50, seed=seed)
        values = _plain_bootstrap(labels, scores, patients, 50, seed)
        valid = values[~np.isnan(values)]
        assert got.auc == pytest.approx(roc_auc_score(labels, scores))
        assert (got.n_resamples, got.n_valid, got.seed) == (50, len(valid), seed)
        assert got.n_patients == len(set(patients)) and got.confidence == 0.95
        if len(valid) >= 2:
            low, high = np.percentile(valid, [2.5, 97.5])
            assert (got.low, got.high) == pytest.approx((low, high), abs=1e-12)
            assert got.interval == [got.low, got.high]
        else:
            assert got.low is None and got.high is None and got.interval is None


def test_patient_bootstrap_defaults_are_2000_resamples_seed_0():
    """metrics.json documents the interval by these defaults (train.bootstrap's default)."""
    labels, scores, patient_index, _ = next(_small_cases(seed=5))
    patients = patient_index.astype(str)
    default = patient_bootstrap_auc(labels, scores, patients)
    explicit = patient_bootstrap_auc(labels, scores, patients, n_resamples=2000, seed=0)
    assert default == explicit and default.n_resamples == 2000 and default.seed == 0


def test_patient_bootstrap_edge_cases():
    labels, probs = np.array([0, 1]), np.array([0.2, 0.8])
    # two patients, one image each: a resample is valid only when it draws both (n_valid counts
    # them); a resample of one positive and one negative image has AUC 1 here
    two = patient_bootstrap_auc(labels, probs, ["a", "b"], n_resamples=40, seed=1)
    draws = np.random.default_rng(1).integers(0, 2, size=(40, 2))
    both = int(sum(len(set(row)) == 2 for row in draws))
    assert two.n_valid == both and two.low == two.high == 1.0
    none = patient_bootstrap_auc(labels, probs, ["a", "b"], n_resamples=0)
    assert none == AucInterval(1.0, None, None, 0, 0, 2, 0)
    one_class = patient_bootstrap_auc(np.array([1, 1]), probs, ["a", "b"], n_resamples=10, seed=2)
    assert one_class == AucInterval(None, None, None, 10, 0, 2, 2)
    # one valid resample is not an interval
    single = patient_bootstrap_auc(labels, probs, ["a", "b"], n_resamples=1, seed=3)
    assert single.low is None and single.auc == 1.0 and single.n_resamples == 1
    assert single.n_valid == int(len(set(np.random.default_rng(3).integers(0, 2, 2))) == 2)
    with pytest.raises(ValueError, match="one entry per image"):
        patient_bootstrap_auc(labels, probs, ["a"])
    with pytest.raises(ValueError, match="NaN"):
        patient_bootstrap_auc(labels, np.array([0.1, np.nan]), ["a", "b"])
    assert auc_or_none(np.array([0, 0]), np.array([0.1, 0.2])) is None


def test_bootstrap_method_sentence_states_what_was_computed():
    interval = AucInterval(0.8, 0.7, 0.9, n_resamples=2000, n_valid=1990, n_patients=41, seed=7)
    text = interval.method()
    for part in ("95% percentile bootstrap", "41 test patients", "2000 resamples seeded with 7",
                 "(1990 with both classes)", "with replacement"):
        assert part in text, (part, text)


# --- the resampling streams ------------------------------------------------------------------

def test_one_patient_or_seed_can_be_resampled_zero_cannot():
    assert patient_counts(1, 3, 0).tolist() == [[1], [1], [1]]
    assert seed_draws(1, 3, 0).tolist() == [[0], [0], [0]]
    with pytest.raises(ValueError):
        patient_counts(0, 3, 0)
    with pytest.raises(ValueError):
        seed_draws(0, 3, 0)
    counts = patient_counts(5, 200, 1)
    assert counts.dtype == np.int32 and (counts.sum(axis=1) == 5).all() and counts.shape == (200, 5)
    draws = seed_draws(4, 200, 1)
    assert draws.min() == 0 and draws.max() == 3 and draws.shape == (200, 4)


# --- intervals -------------------------------------------------------------------------------

def test_percentile_interval_edges():
    assert percentile_interval(np.array([])) == (pytest.approx(math.nan, nan_ok=True),) * 2 + (1.0,)
    low, high, undefined = percentile_interval(np.array([np.nan, np.nan]))
    assert math.isnan(low) and math.isnan(high) and undefined == 1.0
    low, high, undefined = percentile_interval(np.array([0.3, np.nan, np.nan, np.nan]))
    assert low == high == 0.3 and undefined == 0.75
    low, high, undefined = percentile_interval(np.arange(101, dtype=float), level=0.9)
    assert (low, high, undefined) == pytest.approx((5.0, 95.0, 0.0))


def test_geometric_mean_ratio_edges():
    empty = geometric_mean_ratio(np.array([]))
    assert all(math.isnan(v) for v in (empty.estimate, empty.low, empty.high))
    one = geometric_mean_ratio(np.array([0.5]))
    assert one.estimate == pytest.approx(0.5) and math.isnan(one.low) and math.isnan(one.high)
    two = geometric_mean_ratio(np.array([0.5, 2.0]))  # mean log 0, t with 1 degree of freedom
    half = sps.t.ppf(0.975, 1) * np.std(np.log([0.5, 2.0]), ddof=1) / math.sqrt(2)
    assert two.estimate == pytest.approx(1.0)
    assert (two.low, two.high) == pytest.approx((math.exp(-half), math.exp(half)))
    assert geometric_mean_ratio([1, 4]).estimate == pytest.approx(2.0)  # integers are ratios too
    with pytest.raises(ValueError, match="finite and positive"):
        geometric_mean_ratio(np.array([1.0, 0.0]))


def test_mean_interval_reports_its_undefined_share_and_contains_is_inclusive():
    point = np.array([0.7, 0.8])
    boot = np.array([[0.6, np.nan, 0.7, 0.8], [0.9, np.nan, 0.8, 0.7]])
    draws = np.array([[0, 1], [0, 1], [1, 1], [0, 0]])
    interval = mean_auc_interval(point, boot, draws)
    means = resampled_seed_means(boot, draws)
    assert means[[0, 2, 3]] == pytest.approx([0.75, 0.8, 0.8]) and math.isnan(means[1])
    assert interval.estimate == pytest.approx(0.75) and interval.undefined_share == 0.25
    assert interval.low == pytest.approx(np.percentile([0.75, 0.8, 0.8], 2.5))
    assert interval.high == pytest.approx(np.percentile([0.75, 0.8, 0.8], 97.5))
    delta = paired_delta_auc([0.7, 0.8], [0.75, 0.9], boot, boot + 0.1, draws)
    assert delta.estimate == pytest.approx(0.075) and delta.undefined_share == 0.25
    assert delta.low == pytest.approx(0.1) and delta.high == pytest.approx(0.1)
    assert Interval(0.0, -1.0, 1.0).contains(-1.0) and Interval(0.0, -1.0, 1.0).contains(1.0)
    assert not Interval(0.0, -1.0, 1.0).contains(1.01)
    with pytest.raises(ValueError, match="do not match 2 seeds x 4 resamples"):
        resampled_seed_means(boot, draws[:, :1])


def test_fractional_weights_give_sklearns_weighted_auc():
    """weighted_aucs takes any non-negative weights, not only patient counts: fractional weights
    must not be truncated to integers, and a small total weight (2 W+ W- <= 1) is still a valid
    AUC, not NaN (catches the exact integer path used for float weights)."""
    labels = np.array([0, 1, 0, 1, 1, 0])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.2])
    weights = np.array([[0.25, 0.5, 0.75, 0.3, 0.6, 0.2],
                        [0.1, 0.1, 0.1, 0.1, 0.1, 0.1],
                        [1.5, 0.5, 2.5, 0.5, 1.0, 0.5]])
    expected = [roc_auc_score(labels, scores, sample_weight=w) for w in weights]
    assert weighted_aucs(labels, scores, weights) == pytest.approx(expected, abs=1e-12)


def test_every_block_of_many_weightings_is_computed():
    """Three blocks and a part of weightings, computed fresh (catches a block loop that stops
    after the first CHUNK offsets and leaves later rows uninitialised)."""
    rng = np.random.default_rng(11)
    labels = np.array([0, 1] * 5)
    scores = rng.random(10)
    weights = rng.random((3 * weighted_auc.CHUNK + 5, 10))
    expected = [roc_auc_score(labels, scores, sample_weight=w) for w in weights[::97]]
    assert weighted_aucs(labels, scores, weights)[::97] == pytest.approx(expected, abs=1e-12)


def test_every_bootstrap_result_reports_its_own_settings():
    """The confidence level, seed and patient count a caller asked for are what metrics.json
    records, on every path: full interval, too few valid resamples, one class, empty input.
    Exactly two valid resamples already make an interval."""
    labels, probs = np.array([0, 1, 0, 1]), np.array([0.2, 0.8, 0.3, 0.6])
    patients = ["a", "b", "c", "d"]
    full = patient_bootstrap_auc(labels, probs, patients, n_resamples=50, seed=4, confidence=0.9)
    assert (full.confidence, full.seed, full.n_patients) == (0.9, 4, 4) and full.low is not None
    few = patient_bootstrap_auc(labels[:2], probs[:2], ["a", "b"], n_resamples=1, seed=5,
                                confidence=0.8)
    assert few.low is None
    assert (few.confidence, few.seed, few.n_patients, few.n_resamples) == (0.8, 5, 2, 1)
    one_class = patient_bootstrap_auc(np.ones(4), probs, patients, n_resamples=5, seed=6,
                                      confidence=0.8)
    assert (one_class.auc, one_class.confidence, one_class.seed, one_class.n_patients) == (None, 0.8, 6, 4)
    empty = patient_bootstrap_auc(np.array([]), np.array([]), [], n_resamples=5)
    assert empty.auc is None and empty.n_patients == 0
    # find a seed whose 2 resamples of 2 patients both draw both patients: an interval
    for seed in range(200):
        draws = np.random.default_rng(seed).integers(0, 2, size=(2, 2))
        if all(len(set(row)) == 2 for row in draws):
            break
    two = patient_bootstrap_auc(labels[:2], probs[:2], ["a", "b"], n_resamples=2, seed=seed)
    assert two.n_valid == 2 and two.interval == [1.0, 1.0]
