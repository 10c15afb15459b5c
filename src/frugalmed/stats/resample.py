"""The random draws of the results stage's bootstrap, in one documented, reproducible scheme.

Two independent streams, both seeded by `study.bootstrap_seed` only (nothing else), so an
interval depends on the data and the seed, never on which other runs happen to be configured:

- patients: ``numpy.random.default_rng([bootstrap_seed, 0]).integers(0, P, size=(B, P))``,
  turned into counts per patient (row b = how often each of the P test patients, in sorted
  patient_id order, appears in resample b). One draw per dataset serves every run of that
  dataset: all runs are scored on the same test patients, so a resample of the test set is the
  same resample for every seed and every setting (Owen 2007's "pigeonhole" bootstrap of a
  crossed design: seeds x patients).
- seeds: ``numpy.random.default_rng([bootstrap_seed, 1]).integers(0, k, size=(B, k))``: row b
  lists the k seed pairs (indices into the sorted paired seeds) drawn with replacement.
"""

from __future__ import annotations

import numpy as np

PATIENT_STREAM = 0
SEED_STREAM = 1


def patient_counts(n_patients: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_patients) int32: how often each patient is drawn in each resample."""
    if n_patients < 1:
        raise ValueError("cannot resample an empty test set")
    rng = np.random.default_rng([seed, PATIENT_STREAM])
    draws = rng.integers(0, n_patients, size=(n_boot, n_patients))
    offsets = np.arange(n_boot)[:, None] * n_patients
    counts = np.bincount((draws + offsets).ravel(), minlength=n_boot * n_patients)
    return counts.reshape(n_boot, n_patients).astype(np.int32)


def seed_draws(n_seeds: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_seeds) indices of the seeds (pairs) drawn with replacement in each resample."""
    if n_seeds < 1:
        raise ValueError("cannot resample zero seeds")
    rng = np.random.default_rng([seed, SEED_STREAM])
    return rng.integers(0, n_seeds, size=(n_boot, n_seeds))
