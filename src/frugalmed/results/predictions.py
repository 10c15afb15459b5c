"""Test predictions of the runs, checked against the dataset's manifest before any use.

Every statistic of the comparisons is computed from `predictions.csv` files, so a file that
scores the wrong rows (a stale run after the manifest changed, a file copied from another
dataset, training rows leaking into the test pass) would silently change the conclusions.
A predictions file is accepted only if its rows are exactly the test split of the manifest,
with the manifest's patient and label on every row.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from frugalmed.errors import FrugalmedError

COLUMNS = ("row", "patient_id", "label", "prob")


class PredictionsError(FrugalmedError):
    """A predictions.csv (or the manifest it is checked against) is unusable."""


@dataclass(frozen=True)
class TestSplit:
    """The test rows of one dataset's manifest, in manifest order."""

    manifest: str
    rows: np.ndarray           # 0-based manifest rows
    patient_ids: np.ndarray    # str, per row
    labels: np.ndarray         # 0/1, per row
    patient_index: np.ndarray  # per row: index into `patients`
    patients: np.ndarray       # sorted unique patient ids

    @property
    def n_patients(self) -> int:
        return len(self.patients)


def load_test_split(manifest: str | os.PathLike[str]) -> TestSplit:
    """The test split of a manifest.csv (columns at least patient_id, split, label)."""
    path = Path(manifest)
    try:
        frame = pd.read_csv(path, usecols=["patient_id", "split", "label"],
                            dtype={"patient_id": str, "split": str})
    except FileNotFoundError:
        raise PredictionsError(f"{path}: manifest missing; run the dataset's preprocessing") from None
    except ValueError as err:
        raise PredictionsError(f"{path}: not a manifest with patient_id, split, label ({err})") from None
    test = frame[frame["split"] == "test"]
    if test.empty:
        raise PredictionsError(f"{path}: no row has split == 'test'; nothing to compare on")
    labels = pd.to_numeric(test["label"], errors="coerce")
    if not labels.isin([0, 1]).all():
        raise PredictionsError(f"{path}: test labels must be 0 or 1")
    patients, index = np.unique(test["patient_id"].to_numpy(dtype=str), return_inverse=True)
    return TestSplit(path.as_posix(), test.index.to_numpy(), test["patient_id"].to_numpy(dtype=str),
                     labels.to_numpy(dtype=int), index, patients)


def predictions_path(metrics_path: str | os.PathLike[str]) -> Path:
    """predictions.csv beside a run's metrics.json."""
    return Path(metrics_path).with_name("predictions.csv")


def read_predictions(path: str | os.PathLike[str], split: TestSplit,
                     require_probs: bool = True) -> np.ndarray:
    """The run's probabilities aligned to split.rows; a PredictionsError naming the file when
    its rows are not exactly the test split (or probabilities are unusable)."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype={"patient_id": str})
    except FileNotFoundError:
        raise PredictionsError(
            f"{path}: missing; rerun the run's training job (rule train writes it)") from None
    except (ValueError, pd.errors.ParserError) as err:
        raise PredictionsError(f"{path}: unreadable CSV ({err}); delete it and rerun the run") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise PredictionsError(f"{path}: lacks column(s) {missing}; expected {list(COLUMNS)}")
    rows = pd.to_numeric(frame["row"], errors="coerce")
    if rows.isna().any() or (rows % 1 != 0).any():
        raise PredictionsError(f"{path}: column 'row' must hold whole manifest row numbers")
    rows = rows.astype(np.int64).to_numpy()
    if np.array_equal(rows, split.rows):  # the usual case: the test rows in manifest order
        return _checked(path, frame, split, require_probs)
    duplicated = pd.Series(rows)[pd.Series(rows).duplicated()].unique()
    if len(duplicated):
        raise PredictionsError(f"{path}: rows {_few(duplicated)} appear more than once")
    extra = np.setdiff1d(rows, split.rows)
    absent = np.setdiff1d(split.rows, rows)
    if len(extra) or len(absent):
        parts = []
        if len(extra):
            parts.append(f"{len(extra)} row(s) not in the test split (e.g. {_few(extra)})")
        if len(absent):
            parts.append(f"{len(absent)} test row(s) missing (e.g. {_few(absent)})")
        raise PredictionsError(
            f"{path}: its rows are not the test split of {split.manifest}: {'; '.join(parts)}. "
            "The run was trained or scored on other data than this manifest: rerun it")
    frame = frame.assign(row=rows).set_index("row").loc[split.rows]
    return _checked(path, frame, split, require_probs)


def _checked(path: Path, frame: pd.DataFrame, split: TestSplit, require_probs: bool) -> np.ndarray:
    """Probabilities of `frame` (rows already aligned to split.rows) after checking that
    patient and label agree with the manifest on every row."""
    if not np.array_equal(frame["patient_id"].astype(str).to_numpy(), split.patient_ids):
        raise PredictionsError(f"{path}: patient_id differs from {split.manifest} on the same rows")
    labels = pd.to_numeric(frame["label"], errors="coerce").to_numpy()
    if not np.array_equal(labels, split.labels):
        raise PredictionsError(f"{path}: label differs from {split.manifest} on the same rows")
    probs = pd.to_numeric(frame["prob"], errors="coerce").to_numpy(dtype=float)
    if require_probs and not (np.isfinite(probs).all() and (probs >= 0).all() and (probs <= 1).all()):
        raise PredictionsError(f"{path}: 'prob' must be finite probabilities in [0, 1]")
    return probs


def _few(values, n: int = 3) -> str:
    shown = ", ".join(str(v) for v in list(values)[:n])
    return shown + (", ..." if len(values) > n else "")
