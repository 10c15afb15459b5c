"""Read training runs' metrics.json files into one flat table, one row per run.

Nested fields (state_bytes, environment, ...) are flattened with a dot (`state_bytes.params`,
`environment.torch`) so every value the training job recorded reaches the summary, including
keys added after the contract (energy_kwh_gpu, inference_latency_ms, ...).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from frugalmed.config import SETTINGS
from frugalmed.errors import FrugalmedError
from frugalmed.grid import Run

# The contract's keys; they lead the summary's columns in this order.
REQUIRED_KEYS = (
    "dataset", "scale", "model", "setting", "seed", "device",
    "test_auc", "test_accuracy", "best_val_auc", "best_epoch", "epochs_run", "diverged",
    "train_time_s", "energy_kwh", "energy_source", "peak_memory_gb", "memory_source",
    "state_bytes", "environment",
)
IDENTITY = ("dataset", "scale", "model", "setting", "seed")


class MetricsError(FrugalmedError):
    """A metrics.json file is unreadable or lacks what the contract requires."""


def read_metrics(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One run's metrics.json, checked against the contract and against its own path."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise MetricsError(f"{path}: missing; run the training job that writes it") from None
    except json.JSONDecodeError as err:
        raise MetricsError(
            f"{path}: not valid JSON ({err}); delete it and rerun its training job"
        ) from None
    if not isinstance(record, dict):
        raise MetricsError(f"{path}: expected a JSON object, got {type(record).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise MetricsError(
            f"{path}: lacks required key(s) {missing}; it was written by an incompatible "
            "training job - delete it and rerun the job"
        )
    expected = Run(
        str(record["dataset"]), int(record["scale"]), str(record["model"]),
        str(record["setting"]), int(record["seed"]),
    ).metrics_path
    if not path.as_posix().endswith(expected):
        raise MetricsError(
            f"{path}: its fields (dataset, scale, model, setting, seed) say it belongs at "
            f"{expected}; it was copied to the wrong place - move or delete it"
        )
    return record


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts become dotted keys; lists are kept as JSON text so a CSV cell holds them."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(value)
        else:
            flat[name] = value
    return flat


def load_summary(paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """One row per run, the contract's columns first, then every other field in first-seen order."""
    rows = []
    for path in paths:
        row = flatten(read_metrics(path))
        row["metrics_path"] = Path(path).as_posix()
        rows.append(row)
    if not rows:
        raise MetricsError("no metrics.json files given: the config selects no runs here")
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    lead = [c for c in columns if c in REQUIRED_KEYS or c.split(".")[0] in REQUIRED_KEYS]
    lead.sort(key=lambda c: REQUIRED_KEYS.index(c.split(".")[0]))
    ordered = lead + [c for c in columns if c not in lead]
    frame = pd.DataFrame(rows).reindex(columns=ordered)
    return _typed(frame)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Give the aggregation columns fixed dtypes so JSON nulls and booleans compare reliably."""
    frame = frame.copy()
    for col in ("scale", "seed"):
        frame[col] = frame[col].astype(int)
    for col in ("dataset", "model", "setting"):
        frame[col] = frame[col].astype(str)
    frame["diverged"] = frame["diverged"].map(_as_bool)
    for col in ("test_auc", "test_accuracy", "best_val_auc", "train_time_s", "energy_kwh",
                "peak_memory_gb"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    for col in ("energy_source", "memory_source", "device"):
        frame[col] = frame[col].fillna("unknown").astype(str)
    order = {s: i for i, s in enumerate(setting_order(frame["setting"].unique()))}
    frame["_order"] = frame["setting"].map(order)
    frame = frame.sort_values(["dataset", "model", "scale", "_order", "seed"], kind="stable")
    return frame.drop(columns="_order").reset_index(drop=True)


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return bool(value)


def setting_order(settings: Iterable[str]) -> list[str]:
    """The settings table's order (the paper's five, then frugalmed's act8 pair), then any
    others A-Z.

    New settings need no change here: they appear after the known ones.
    """
    present = list(dict.fromkeys(settings))
    known = [s for s in SETTINGS if s in present]
    return known + sorted(s for s in present if s not in known)


def is_estimated(source: str) -> bool:
    """Energy that was (at least partly) estimated, e.g. from TDP x time, not metered.

    A source may combine components with '+' (e.g. `nvml+estimated-tdp`: GPU metered, CPU
    estimated); any estimated component makes the total an estimate.
    """
    return any(part.strip().lower().startswith("estimated") for part in str(source).split("+"))
