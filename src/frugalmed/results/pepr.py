"""PePR, performance per resource unit (Selvan, Pepin, Igel, Samuel & Dam 2024,
"Equity through access: a case for small-scale deep learning", arXiv:2403.12562).

    PePR = P / (1 + R),   R = (r - r_min) / (r_max - r_min)  in [0, 1]

P is the performance (here the test ROC AUC, in [0, 1]) and R the resource cost min-max
normalised over the compared runs (here: every non-diverged run of one dataset), so the
cheapest run keeps its full P and the most expensive has it halved. One score per resource:
energy (PePR-E), peak memory (PePR-M), training time (PePR-T).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def minmax_normalise(values: pd.Series) -> pd.Series:
    """(r - min) / (max - min) over the finite values; all 0 when every value is equal.

    NaN stays NaN (a run without that measurement gets no PePR for it).
    """
    values = values.astype(float)
    finite = values[np.isfinite(values)]
    if finite.empty:
        return values * np.nan
    low, high = finite.min(), finite.max()
    if high == low:
        return values.where(~np.isfinite(values), 0.0)
    return (values - low) / (high - low)


def pepr(performance: pd.Series, resource: pd.Series) -> pd.Series:
    """PePR of each run: performance / (1 + min-max normalised resource)."""
    return performance.astype(float) / (1.0 + minmax_normalise(resource))
