"""PePR, performance per resource unit: Selvan, Pepin, Igel, Samuel & Dam, "PePR: Performance
Per Resource Unit as a Metric to Promote Small-Scale Deep Learning in Medical Image Analysis",
Proceedings of the 6th Northern Lights Deep Learning Conference (NLDL), PMLR 265, 2025
(arXiv:2403.12562; its first version was titled "Equity through access: a case for small-scale
deep learning").

    PePR = P / (1 + R),   R = (r - r_min) / (r_max - r_min)  in [0, 1]

P is the performance (here the test ROC AUC, in [0, 1]) and R the resource cost min-max
normalised over the compared runs, so the cheapest run keeps its full P and the most expensive
has it halved. One score per resource: energy (PePR-E), memory (PePR-M, on the study's memory
axis: tensor memory on CPU runs, CUDA max allocated on CUDA runs), training time (PePR-T).

Scope. A min-max normalisation makes every score depend on the other runs in its scope. The
scope here is PEPR_SCOPE = dataset x scale x model: the settings of one model on one dataset at
one image scale, which is exactly the comparison each block of the tables and each radar panel
makes (which setting for this model?). Adding a model, a dataset, a scale, or an experiment
whose runs lie outside that block never changes an existing score; adding a setting to the
block does, as it should (it is a new competitor in that comparison). Normalising over a whole
dataset, as before, let an unrelated large model (e.g. adding Swin) rescale every other model's
PePR.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PEPR_SCOPE = ("dataset", "scale", "model")
PEPR_SCOPE_TEXT = "the non-diverged runs of the same dataset, scale and model (all its settings and seeds)"


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
