"""The per-run AUC interval: a patient-level percentile bootstrap (frugalmed.stats.auc)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from frugalmed.stats.auc import _weighted_aucs, patient_bootstrap_auc


def _cohort(n_patients=60, per_patient=3, seed=0, separation=1.0):
    rng = np.random.default_rng(seed)
    patients = np.repeat(np.arange(n_patients), per_patient)
    labels = np.repeat(rng.random(n_patients) < 0.4, per_patient)
    probs = rng.normal(size=len(patients)) + separation * labels
    probs = np.round(probs, 1)  # ties, which the AUC must count one half
    return labels.astype(int), probs, patients


def test_each_resample_is_sklearns_weighted_auc():
    """The vectorised statistic equals roc_auc_score with the resample's multiplicities."""
    labels, probs, patients = _cohort()
    _, index = np.unique(patients.astype(str), return_inverse=True)
    draws = np.random.default_rng(3).integers(0, index.max() + 1, size=(20, index.max() + 1))
    got = _weighted_aucs(labels.astype(bool), probs, index, index.max() + 1, draws)
    for row, value in zip(draws, got):
        weights = np.bincount(row, minlength=index.max() + 1)[index]
        assert value == pytest.approx(roc_auc_score(labels, probs, sample_weight=weights), abs=1e-12)


def test_interval_matches_a_plain_loop_bootstrap():
    """Same seed, same draws: a straightforward per-resample loop gives the same percentiles."""
    labels, probs, patients = _cohort(seed=1)
    result = patient_bootstrap_auc(labels, probs, patients, n_resamples=300, seed=7)
    names, index = np.unique(patients.astype(str), return_inverse=True)
    rng = np.random.default_rng(7)
    draws = rng.integers(0, len(names), size=(300, len(names)))
    values = []
    for row in draws:
        chosen = np.concatenate([np.flatnonzero(index == p) for p in row])
        if len(np.unique(labels[chosen])) == 2:
            values.append(roc_auc_score(labels[chosen], probs[chosen]))
    assert result.interval == pytest.approx(list(np.percentile(values, [2.5, 97.5])), abs=1e-12)
    assert result.auc == pytest.approx(roc_auc_score(labels, probs))
    assert result.low <= result.auc <= result.high
    assert result.n_valid == len(values) and result.n_patients == len(names)


def test_patients_are_resampled_as_units():
    """Copying every image k times within its patient changes nothing (an image-level
    bootstrap would narrow the interval by ~sqrt(k): the bug this catches)."""
    labels, probs, patients = _cohort(per_patient=1, seed=2)
    once = patient_bootstrap_auc(labels, probs, patients, 500, seed=0)
    k = 4
    many = patient_bootstrap_auc(np.repeat(labels, k), np.repeat(probs, k), np.repeat(patients, k),
                                 500, seed=0)
    assert many.interval == pytest.approx(once.interval)


def test_reproducible_and_seed_dependent():
    labels, probs, patients = _cohort(seed=4)
    a = patient_bootstrap_auc(labels, probs, patients, 200, seed=5)
    b = patient_bootstrap_auc(labels, probs, patients, 200, seed=5)
    c = patient_bootstrap_auc(labels, probs, patients, 200, seed=6)
    assert a.interval == b.interval and a.interval != c.interval
    assert "200 resamples" in a.method() and "patients" in a.method()


def test_one_class_and_separable_cases():
    labels = np.zeros(10, int)
    result = patient_bootstrap_auc(labels, np.linspace(0, 1, 10), np.arange(10), 100)
    assert result.auc is None and result.interval is None
    labels = np.array([0, 0, 0, 1, 1, 1])
    result = patient_bootstrap_auc(labels, labels * 0.9, np.arange(6), 200)
    assert result.auc == 1.0 and result.interval == [1.0, 1.0]
    with pytest.raises(ValueError, match="NaN"):
        patient_bootstrap_auc(labels, np.full(6, np.nan), np.arange(6), 10)
