"""ROC AUC of one run's test predictions under many weightings at once.

A bootstrap resample of patients is a weighting of the test images (each image weighted by how
often its patient was drawn). The AUC of weighted data is the weighted Mann-Whitney statistic:
the weighted share of (positive, negative) pairs ranked correctly, ties counting one half —
exactly what ``sklearn.metrics.roc_auc_score(..., sample_weight=w)`` returns.

For every resample at once, in one pass over the scores sorted once: the cumulative negative
weight C up to each position gives, for a positive image whose score ties the images at
positions lo+1..hi, the negatives strictly below it (C[lo]) and those tied with it
(C[hi] - C[lo]), so its correctly ranked weight is (C[lo] + C[hi]) / 2. Patient resamples have
integer weights, so the sums are exact integers. O(B x n) instead of B sorts, which keeps the
paper grid's results stage (177 runs x ~1000 test images x 2000 resamples) within seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK = 256  # resamples per block: bounds memory at CHUNK x n values


@dataclass(frozen=True)
class _Sorted:
    """Positions of the positives and their tie groups in ascending score order."""

    order: np.ndarray     # argsort of the scores
    positive: np.ndarray  # sorted positions of positive images
    negative: np.ndarray  # sorted positions of negative images
    lo: np.ndarray        # per positive: last position strictly below its tie group (-1: none)
    hi: np.ndarray        # per positive: last position of its tie group


def _sort(labels: np.ndarray, scores: np.ndarray) -> _Sorted:
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=float)
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} scores")
    order = np.argsort(scores, kind="mergesort")
    ranked = scores[order]
    new_group = np.r_[True, ranked[1:] != ranked[:-1]]
    group = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    ends = np.r_[starts[1:] - 1, len(ranked) - 1]
    positive_sorted = labels[order]
    pos = np.flatnonzero(positive_sorted)
    return _Sorted(order, pos, np.flatnonzero(~positive_sorted), starts[group[pos]] - 1,
                   ends[group[pos]])


def _aucs(pos_w: np.ndarray, neg_w: np.ndarray, s: _Sorted, exact: bool) -> np.ndarray:
    """pos_w: (b, n_pos) weights of the positives; neg_w: (b, n) weights of the negatives at
    their sorted positions (0 elsewhere)."""
    acc = np.int64 if exact else np.float64
    cum = np.cumsum(neg_w, axis=1, dtype=acc)
    below = np.where(s.lo >= 0, cum[:, np.maximum(s.lo, 0)], 0)
    correct2 = np.einsum("ij,ij->i", pos_w.astype(acc), below + cum[:, s.hi])  # 2 x correct
    total2 = 2 * pos_w.sum(axis=1, dtype=acc) * cum[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total2 > 0, correct2 / np.where(total2 > 0, total2, 1), np.nan)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Unweighted ROC AUC (ties count 1/2); NaN when only one class is present."""
    return float(weighted_aucs(labels, scores, np.ones((1, len(labels))))[0])


def weighted_aucs(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC for each row of `weights` (B x n, one weight per image); NaN where a row leaves
    only one class with positive weight."""
    s = _sort(labels, scores)
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    if weights.shape[1] != len(s.order):
        raise ValueError(f"weights {weights.shape} do not match {len(s.order)} images")
    out = np.empty(len(weights))
    for lo in range(0, len(weights), CHUNK):
        w = weights[lo:lo + CHUNK][:, s.order]
        neg = np.zeros_like(w)
        neg[:, s.negative] = w[:, s.negative]
        out[lo:lo + CHUNK] = _aucs(w[:, s.positive], neg, s, exact=False)
    return out


def patient_weighted_aucs(labels: np.ndarray, scores: np.ndarray, patient_index: np.ndarray,
                          counts: np.ndarray) -> np.ndarray:
    """AUC for each row of `counts` (B x P integer patient multiplicities); `patient_index[i]`
    is the column of image i's patient. Equals weighted_aucs(labels, scores,
    counts[:, patient_index]), in exact integer arithmetic."""
    s = _sort(labels, scores)
    columns = np.asarray(patient_index)[s.order]
    pos_cols, neg_cols = columns[s.positive], columns[s.negative]
    counts = np.asarray(counts)
    if not np.issubdtype(counts.dtype, np.integer):
        raise ValueError("counts must be integer patient multiplicities")
    out = np.empty(len(counts))
    for lo in range(0, len(counts), CHUNK):
        c = counts[lo:lo + CHUNK]
        neg = np.zeros((len(c), len(s.order)), dtype=np.int32)
        neg[:, s.negative] = c[:, neg_cols]
        out[lo:lo + CHUNK] = _aucs(c[:, pos_cols], neg, s, exact=True)
    return out
