"""Paired comparison of a setting with the baseline: ΔAUC with a hierarchical bootstrap interval,
resource ratios as geometric means with t intervals, and the non-inferiority rule.

Design. Runs are paired by seed (the seed fixes data order and initialisation for both
settings), and every run of a dataset is scored on the same test patients. The test AUC of a
setting therefore varies for two crossed reasons: the training seed, and which patients happen
to be in the test set. The interval resamples both (Owen 2007, "The pigeonhole bootstrap"; a
two-stage bootstrap as in Davison & Hinkley 1997, sec. 3.8, and Field & Welsh 2007):

    for b in 1..B:  draw k seed pairs with replacement (frugalmed.stats.resample.seed_draws)
                    draw the test patients with replacement, once (resample.patient_counts):
                    the same patients for every seed and both settings, as in the study
                    Δ*_b = mean over the drawn pairs of AUC_setting(w_b) - AUC_baseline(w_b)

with AUC(w_b) the image-level AUC weighting each image by how often its patient was drawn
(patients, not images, are the independent units: Obuchowski 1997). The 95 % interval is the
2.5th-97.5th percentile of Δ* (Efron & Tibshirani 1993, percentile method). Resamples that
leave one class only (possible on tiny test sets) have no AUC; they are dropped and counted.

Resources (energy, memory, time) have no test-set variation: the ratio setting ÷ baseline is
taken per pair, and its geometric mean gets the t interval of the mean log ratio
(exp(mean ± t_{k-1, 0.975} · sd/√k)), the usual interval for ratios of positive measurements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import stdtrit  # Student t quantile; scipy.stats costs ~1 s more to import

LEVEL = 0.95
MIN_PAIRS = 3  # fewer seed pairs: the interval cannot say much about seed-to-seed variation


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95 % interval (NaN where it cannot be computed)."""

    estimate: float
    low: float
    high: float
    undefined_share: float = 0.0  # share of bootstrap resamples without an AUC (one class)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float, float]:
    """(low, high, undefined share) of the finite samples' central `level` percentile interval."""
    samples = np.asarray(samples, dtype=float)
    finite = samples[np.isfinite(samples)]
    undefined = 1.0 - len(finite) / len(samples) if len(samples) else 1.0
    if len(finite) == 0:
        return math.nan, math.nan, undefined
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high), undefined


def resampled_seed_means(per_seed: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Mean over each resample's drawn seeds: per_seed is (k, B) (seed j's value in resample b),
    draws is (B, k) from resample.seed_draws; returns (B,)."""
    per_seed = np.asarray(per_seed, dtype=float)
    k, n_boot = per_seed.shape
    if draws.shape != (n_boot, k):
        raise ValueError(f"draws {draws.shape} do not match {k} seeds x {n_boot} resamples")
    return per_seed[draws.T, np.arange(n_boot)].mean(axis=0)


def mean_auc_interval(point: np.ndarray, boot: np.ndarray, draws: np.ndarray) -> Interval:
    """Mean AUC over seeds with its hierarchical-bootstrap interval (seeds, then patients).

    point: (k,) each seed's AUC on the full test set; boot: (k, B) under each patient resample.
    """
    low, high, undefined = percentile_interval(resampled_seed_means(boot, draws))
    return Interval(float(np.mean(point)), low, high, undefined)


def paired_delta_auc(base_point: np.ndarray, setting_point: np.ndarray, base_boot: np.ndarray,
                     setting_boot: np.ndarray, draws: np.ndarray) -> Interval:
    """Mean paired ΔAUC (setting - baseline) over seed pairs, with its hierarchical-bootstrap
    interval. Row j of every array is seed pair j; boot arrays are (k, B) on shared patient
    resamples (column b = the same resample of the test patients for both settings)."""
    delta_point = np.asarray(setting_point, float) - np.asarray(base_point, float)
    delta_boot = np.asarray(setting_boot, float) - np.asarray(base_boot, float)
    return mean_auc_interval(delta_point, delta_boot, draws)


def geometric_mean_ratio(ratios: np.ndarray, level: float = LEVEL) -> Interval:
    """Geometric mean of positive paired ratios with the t interval of the mean log ratio.

    One ratio: the estimate without an interval (NaN bounds). Non-positive or non-finite
    ratios are not allowed here: the caller drops pairs without a measurement.
    """
    ratios = np.asarray(ratios, dtype=float)
    if len(ratios) == 0:
        return Interval(math.nan, math.nan, math.nan)
    if not np.all(np.isfinite(ratios) & (ratios > 0)):
        raise ValueError(f"ratios must be finite and positive, got {ratios}")
    logs = np.log(ratios)
    mean = float(logs.mean())
    if len(logs) < 2:
        return Interval(math.exp(mean), math.nan, math.nan)
    half = float(stdtrit(len(logs) - 1, 0.5 + level / 2)) * float(logs.std(ddof=1)) / math.sqrt(len(logs))
    return Interval(math.exp(mean), math.exp(mean - half), math.exp(mean + half))


def noninferior(delta: Interval, margin: float, n_pairs: int) -> bool | None:
    """Non-inferior when the interval's lower bound lies above -margin (Ahn, Park & Lee 2013).

    None (no verdict) with fewer than MIN_PAIRS seed pairs or without an interval.
    """
    if n_pairs < MIN_PAIRS or not math.isfinite(delta.low):
        return None
    return bool(delta.low > -margin)
