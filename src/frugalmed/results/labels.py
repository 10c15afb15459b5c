"""Labels that say what really ran, read from each run's metrics.json (`precision`, `device`).

The paper's settings have a CUDA meaning: amp = float16 autocast + GradScaler, bnb8_half =
float16 weights (model.half()). On a CPU frugalmed runs bfloat16 instead and has no scaler; an
act8 setting's 8-bit gradient quantisation is simulated (rounding noise only, no memory saved).
A table row or legend entry that said just "amp" would claim a different experiment, so every
label compares the precision the run recorded with the paper's meaning and names each
difference, e.g. ``amp (bf16 autocast, no scaler — CPU)``. The reference is the setting's
recorded definition (`precision.setting`), the description always the recorded precision —
never inferred from the setting's name.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import pandas as pd

SHORT = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64"}
SIMULATED_GRADIENTS = "8-bit gradient quantisation simulated: noise only, no memory saved"
PAPER_HALF = "float16"      # bnb8_half's weights in the paper (CUDA)
PAPER_AUTOCAST = "float16"  # amp's autocast dtype in the paper (CUDA), with a GradScaler


def _get(run: Mapping[str, Any], key: str) -> Any:
    value = run.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value) if value is not None else False


def differences(run: Mapping[str, Any]) -> list[str] | None:
    """How this run's recorded precision differs from the paper's CUDA meaning of its setting.

    `run` is one summary row (metrics.json flattened: `precision.weights_dtype`, ...). None when
    the run did not record its precision (metrics.json from before it was written).
    """
    weights = _get(run, "precision.weights_dtype")
    if weights is None:
        return None
    autocast = _get(run, "precision.autocast_dtype")
    scaler = _flag(_get(run, "precision.grad_scaler"))
    wants_half = _get(run, "precision.setting.weights_dtype") == "half"
    wants_autocast = _flag(_get(run, "precision.setting.autocast"))
    quantised = _flag(_get(run, "precision.setting.quantize_activations"))
    out = []
    expected_weights = PAPER_HALF if wants_half else "float32"
    if weights != expected_weights:
        out.append(f"{SHORT.get(weights, weights)} weights")
    if wants_autocast:
        if autocast is None:
            out.append("no autocast")
        elif autocast != PAPER_AUTOCAST or not scaler:
            out.append(f"{SHORT.get(autocast, autocast)} autocast" + ("" if scaler else ", no scaler"))
    elif autocast is not None:
        out.append(f"{SHORT.get(autocast, autocast)} autocast")
    if quantised:
        out.append(SIMULATED_GRADIENTS)
    return out


def run_label(run: Mapping[str, Any]) -> str:
    """`setting (what differs — DEVICE)`, or the bare setting when it ran as the paper meant."""
    setting = str(run["setting"])
    diffs = differences(run)
    if diffs is None:
        return f"{setting} (precision not recorded)"
    if not diffs:
        return setting
    device = str(_get(run, "device") or "unknown device")
    suffix = "" if device == "cuda" else f" — {device.upper()}"
    return f"{setting} ({'; '.join(diffs)}{suffix})"


def group_label(runs: pd.DataFrame | Iterable[Mapping[str, Any]]) -> str:
    """One label for several runs of a setting; distinct labels joined by ' / ' (e.g. a figure
    whose panels ran on different devices)."""
    if isinstance(runs, pd.DataFrame) and "run_label" in runs.columns:
        return " / ".join(dict.fromkeys(runs["run_label"].astype(str)))
    if isinstance(runs, pd.DataFrame):
        # only the columns a label reads, each distinct combination once (tables of many runs)
        wanted = [c for c in runs.columns if c in ("setting", "device") or c.startswith("precision.")]
        rows = runs[wanted].drop_duplicates().to_dict("records")
    else:
        rows = list(runs)
    labels = list(dict.fromkeys(run_label(r) for r in rows))
    return " / ".join(labels)


def label_map(summary: pd.DataFrame, by: Iterable[str]) -> dict[tuple, str]:
    """group_label of every group of `summary` by the columns `by` (setting among them)."""
    by = list(by)
    return {
        (key if isinstance(key, tuple) else (key,)): group_label(group)
        for key, group in summary.groupby(by, sort=False)
    }
