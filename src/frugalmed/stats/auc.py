"""ROC AUC of one run's test predictions with a patient-level bootstrap confidence interval.

Method (the usual cluster bootstrap; Efron & Tibshirani, *An Introduction to the Bootstrap*,
1993, ch. 13 for the percentile interval; Field & Welsh, "Bootstrapping clustered data", JRSS-B
2007, for resampling whole clusters): the test set's patients are drawn with replacement,
as many as there are patients, `n_resamples` times; every image of a drawn patient enters the
resample (a patient drawn twice enters twice). Images of one patient are correlated (two views,
two breasts, neighbouring CT slices), so resampling images instead would understate the
width. Each resample's AUC is the Mann-Whitney statistic with ties counted one half, i.e.
exactly ``sklearn.metrics.roc_auc_score`` with the multiplicities as ``sample_weight``; the
interval is the 2.5th and 97.5th percentile of the resampled AUCs. Resamples that happen to
contain one class only have no AUC and are left out (their number is reported).

All resamples are computed at once: a (resamples x patients) count matrix times two sparse
(patients x tie groups) matrices, instead of one scikit-learn call per resample
(benchmarks/bench_results.py times the two side by side).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.metrics import roc_auc_score

CONFIDENCE = 0.95
# (resamples x groups) elements per chunk: bounds memory at ~100 MB of float64 temporaries
_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class AucInterval:
    """Point AUC, percentile interval, and how it was obtained."""

    auc: float | None
    low: float | None
    high: float | None
    n_resamples: int
    n_valid: int
    n_patients: int
    seed: int
    confidence: float = CONFIDENCE

    @property
    def interval(self) -> list[float] | None:
        return None if self.low is None else [self.low, self.high]

    def method(self) -> str:
        """One sentence for metrics.json: what the interval is and how it was computed."""
        return (
            f"{self.confidence:.0%} percentile bootstrap of the test ROC AUC, resampling the "
            f"{self.n_patients} test patients with replacement (all of a patient's images "
            f"together), {self.n_resamples} resamples seeded with {self.seed}"
            f" ({self.n_valid} with both classes)"
        )


def auc(labels: np.ndarray, probs: np.ndarray) -> float | None:
    """ROC AUC; None when only one class is present (AUC undefined)."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return None
    return float(roc_auc_score(labels, probs))


def patient_bootstrap_auc(labels, probs, patients, n_resamples: int = 2000, seed: int = 0,
                          confidence: float = CONFIDENCE) -> AucInterval:
    """AUC of (labels, probs) and its patient-level percentile bootstrap interval.

    `patients` gives each image's patient (any hashable values). With one class in the data
    the AUC and the interval are None; with fewer than 2 valid resamples the interval is None.
    """
    labels = np.asarray(labels).astype(bool).ravel()
    probs = np.asarray(probs, dtype=np.float64).ravel()
    if not (len(labels) == len(probs) == len(patients)):
        raise ValueError(f"labels ({len(labels)}), probs ({len(probs)}) and patients "
                         f"({len(patients)}) must have one entry per image")
    if np.isnan(probs).any():
        raise ValueError("probs contain NaN; an AUC needs a score for every image")
    _, patient_index = np.unique(np.asarray(patients).astype(str), return_inverse=True)
    n_patients = int(patient_index.max()) + 1 if len(patient_index) else 0
    point = auc(labels, probs)
    if point is None or n_resamples < 1:
        return AucInterval(point, None, None, n_resamples, 0, n_patients, seed, confidence)

    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_patients, size=(n_resamples, n_patients))
    values = _weighted_aucs(labels, probs, patient_index, n_patients, draws)
    valid = values[~np.isnan(values)]
    if len(valid) < 2:
        return AucInterval(point, None, None, n_resamples, len(valid), n_patients, seed, confidence)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(valid, [tail, 100 - tail])
    return AucInterval(point, float(low), float(high), n_resamples, len(valid), n_patients, seed,
                       confidence)


def _weighted_aucs(labels: np.ndarray, probs: np.ndarray, patient_index: np.ndarray,
                   n_patients: int, draws: np.ndarray) -> np.ndarray:
    """AUC of every resample (row of `draws`), NaN where a resample lacks a class.

    With w the multiplicity of each image in a resample, AUC = sum over positives i and
    negatives j of w_i w_j ([s_i > s_j] + 1/2 [s_i == s_j]), divided by W_pos W_neg. Scores
    are grouped into tie groups g (sorted); two sparse (patients x groups) matrices count each
    patient's positive and negative images per group, so one product with the resamples'
    patient counts gives every resample's positive and negative weight per group, and the
    negatives below each group are a cumulative sum.
    """
    _, group = np.unique(probs, return_inverse=True)
    n_groups = int(group.max()) + 1
    shape = (n_patients, n_groups)
    pos = sparse.csc_matrix((np.ones(labels.sum()), (patient_index[labels], group[labels])), shape)
    neg = sparse.csc_matrix((np.ones((~labels).sum()), (patient_index[~labels], group[~labels])),
                            shape)
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // max(n_groups, n_patients))
    out = np.empty(len(draws), dtype=np.float64)
    for first in range(0, len(draws), rows_per_chunk):
        chunk = draws[first:first + rows_per_chunk]
        rows = len(chunk)
        # multiplicity of every patient in each resample: one bincount over offset indices
        offsets = (np.arange(rows)[:, None] * n_patients + chunk).ravel()
        counts = np.bincount(offsets, minlength=rows * n_patients).reshape(rows, n_patients)
        counts = counts.astype(np.float64)
        # (groups, rows): the cumulative sum below runs over contiguous rows of memory
        pos_per_group = np.asarray(pos.T @ counts.T)
        neg_per_group = np.asarray(neg.T @ counts.T)
        # a positive in group g beats the negatives below g and ties half of those in g
        credit = np.cumsum(neg_per_group, axis=0) - 0.5 * neg_per_group
        numerator = np.einsum("gr,gr->r", pos_per_group, credit)
        denominator = pos_per_group.sum(axis=0) * neg_per_group.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[first:first + rows] = np.where(denominator > 0, numerator / denominator, np.nan)
    return out
