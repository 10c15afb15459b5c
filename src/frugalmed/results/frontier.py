"""Pareto-optimal settings: those no other setting beats on every axis at once.

Setting a dominates b when a is at least as good on every axis (higher AUC; lower energy,
memory, time) and strictly better on one. The front is computed on the means over seeds; the
non-inferiority verdict, not the front, is what accounts for the uncertainty of the AUC.
"""

from __future__ import annotations

import numpy as np


def pareto_mask(values: np.ndarray, maximise: list[bool]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of values (n x d); NaN rows are never on it."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[1] != len(maximise):
        raise ValueError(f"values {values.shape} do not match {len(maximise)} axes")
    signs = np.where(maximise, 1.0, -1.0)
    better = values * signs  # larger = better on every axis
    finite = np.isfinite(better).all(axis=1)
    mask = finite.copy()
    for i in np.flatnonzero(finite):
        others = better[finite]
        dominated = np.any(np.all(others >= better[i], axis=1) & np.any(others > better[i], axis=1))
        mask[i] = not dominated
    return mask
