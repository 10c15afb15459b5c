"""ROC AUC of one run's test predictions under many weightings at once.

A bootstrap resample of patients is a weighting of the test images (each image weighted by how
often its patient was drawn). The AUC of weighted data is the weighted Mann-Whitney statistic:
the weighted share of (positive, negative) pairs ranked correctly, ties counting one half —
exactly what ``sklearn.metrics.roc_auc_score(..., sample_weight=w)`` returns. Computing it for
every resample in one pass over the sorted scores (cumulative negative weight below each
score) costs O(B x n) instead of B separate sorts, which keeps the paper grid's results stage
(177 runs x ~1000 test images x 2000 resamples) within seconds.
"""

from __future__ import annotations

import numpy as np

CHUNK = 256  # resamples per block: bounds memory at CHUNK x n doubles


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Unweighted ROC AUC (ties count 1/2); NaN when only one class is present."""
    return float(weighted_aucs(labels, scores, np.ones((1, len(labels))))[0])


def weighted_aucs(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC for each row of `weights` (B x n, one weight per image); NaN where a row leaves
    only one class with positive weight."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=float)
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    if weights.shape[1] != len(labels) or len(scores) != len(labels):
        raise ValueError(f"shapes differ: {len(labels)} labels, {len(scores)} scores, "
                         f"weights {weights.shape}")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    positive = labels[order]
    # first index of each run of tied scores
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    out = np.empty(len(weights))
    for lo in range(0, len(weights), CHUNK):
        w = weights[lo:lo + CHUNK][:, order]
        out[lo:lo + CHUNK] = _aucs_sorted(w, positive, starts)
    return out


def patient_weighted_aucs(labels: np.ndarray, scores: np.ndarray, patient_index: np.ndarray,
                          counts: np.ndarray) -> np.ndarray:
    """AUC for each row of `counts` (B x P patient multiplicities); `patient_index[i]` is the
    column of image i's patient. Same result as weighted_aucs(labels, scores, counts[:, patient_index])."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=float)
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    positive = labels[order]
    columns = np.asarray(patient_index)[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    out = np.empty(len(counts))
    for lo in range(0, len(counts), CHUNK):
        w = counts[lo:lo + CHUNK][:, columns].astype(float)
        out[lo:lo + CHUNK] = _aucs_sorted(w, positive, starts)
    return out


def _aucs_sorted(w: np.ndarray, positive: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Weighted AUC per row; columns of w sorted by ascending score, ties grouped at `starts`."""
    pos = np.add.reduceat(np.where(positive, w, 0.0), starts, axis=1)
    neg = np.add.reduceat(np.where(positive, 0.0, w), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negative weight strictly below each tie group
    correct = np.einsum("ij,ij->i", pos, below + 0.5 * neg)
    total = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, correct / np.where(total > 0, total, 1.0), np.nan)
