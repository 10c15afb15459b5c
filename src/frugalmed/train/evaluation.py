"""What a run reports about its test predictions: the predictions file, the AUC's bootstrap
interval, and the AUC within each group of the dataset's confound columns (site, scanner)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from frugalmed.atomic import write_csv
from frugalmed.stats.auc import auc, patient_bootstrap_auc

log = logging.getLogger(__name__)

PREDICTION_COLUMNS = ["row", "patient_id", "label", "prob"]


def prediction_table(manifest: pd.DataFrame, rows: np.ndarray, probs: np.ndarray | None) -> pd.DataFrame:
    """One line per test image in manifest order: its manifest row, patient, label, probability.

    `probs` None (no weights to test: the run diverged before any epoch finished) leaves
    `prob` empty, so the file still lists exactly the test split's rows.
    """
    order = np.argsort(rows, kind="stable")
    rows = np.asarray(rows)[order]
    table = pd.DataFrame({
        "row": rows.astype(np.int64),
        "patient_id": manifest["patient_id"].astype(str).to_numpy()[rows],
        "label": manifest["label"].to_numpy()[rows].astype(np.int64),
        "prob": np.full(len(rows), np.nan) if probs is None else np.asarray(probs, np.float64)[order],
    })
    return table[PREDICTION_COLUMNS]


def write_predictions(path: str | Path, table: pd.DataFrame) -> None:
    """predictions.csv, atomically (pandas writes floats round-trip exact, NaN as empty)."""
    write_csv(path, table)


def auc_interval(table: pd.DataFrame, n_resamples: int, seed: int) -> dict[str, Any]:
    """metrics.json's test_auc_ci and test_auc_ci_method from a predictions table."""
    if table["prob"].isna().any() or table.empty:
        return {"test_auc_ci": None,
                "test_auc_ci_method": "no interval: the run has no test predictions"}
    result = patient_bootstrap_auc(table["label"].to_numpy(), table["prob"].to_numpy(),
                                   table["patient_id"].to_numpy(), n_resamples, seed)
    method = result.method()
    if result.auc is None:
        method = "no interval: the test split has one class only (AUC undefined)"
    elif result.interval is None:
        method += "; too few resamples with both classes for an interval"
    return {"test_auc_ci": result.interval, "test_auc_ci_method": method}


def auc_by_group(table: pd.DataFrame, manifest: pd.DataFrame,
                 columns: Sequence[str]) -> tuple[dict[str, dict[str, dict[str, Any]]], list[str]]:
    """Test AUC within each value of each confound column; groups lacking a class are left out.

    Returns ({column: {group: {"auc", "n", "positives"}}}, notes). A column the manifest lacks
    is reported as null with a note (the confound check of the data stage names it too).
    """
    result: dict[str, Any] = {}
    notes: list[str] = []
    if table["prob"].isna().any() or table.empty:
        return {column: {} for column in columns}, notes
    rows = table["row"].to_numpy()
    for column in columns:
        if column not in manifest.columns:
            result[column] = None
            notes.append(f"confound column '{column}' is not in the manifest: no per-group AUC")
            continue
        values = manifest[column].to_numpy()[rows]
        groups: dict[str, dict[str, Any]] = {}
        frame = pd.DataFrame({"group": values, "label": table["label"].to_numpy(),
                              "prob": table["prob"].to_numpy()}).dropna(subset=["group"])
        for group, part in frame.groupby("group", sort=True):
            value = auc(part["label"].to_numpy(), part["prob"].to_numpy())
            if value is None:
                continue
            groups[_group_key(group)] = {"auc": value, "n": int(len(part)),
                                         "positives": int(part["label"].sum())}
        result[column] = groups
    return result, notes


def _group_key(value: Any) -> str:
    """A JSON key for a group value: 2.0 read back from a CSV is the group '2'."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)
