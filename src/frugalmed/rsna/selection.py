"""Which rows of RSNA's train.csv enter the study, and with which label.

The paper keeps women aged <= 55 and predicts BIRADS follow-up (BIRADS 0 = needs recall);
every removal is counted so selection.json shows where the cohort went.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from frugalmed.errors import FrugalmedError

REQUIRED_COLUMNS = ("patient_id", "image_id", "laterality", "view", "age", "BIRADS", "cancer")
LABELS = ("birads_followup", "cancer")


def read_train_csv(path: str | Path) -> pd.DataFrame:
    """train.csv with ids kept as text (they name the files) and a clear error if it is wrong."""
    path = Path(path)
    if not path.is_file():
        raise FrugalmedError(
            f"{path} does not exist. RSNA raw_dir must hold Kaggle's train.csv and "
            "train_images/{patient_id}/{image_id}.dcm (datasets.rsna.raw_dir)."
        )
    table = pd.read_csv(path, dtype={"patient_id": str, "image_id": str, "site_id": str,
                                     "machine_id": str, "laterality": str, "view": str})
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise FrugalmedError(f"{path} lacks the RSNA columns {missing} (has {list(table.columns)})")
    for column in ("age", "BIRADS", "cancer"):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    return table


def select_rows(table: pd.DataFrame, max_age: float, label: str) -> tuple[pd.DataFrame, dict]:
    """Rows of the study with a `label` column (0/1), and how many rows each rule removed."""
    if label not in LABELS:
        raise FrugalmedError(f"unknown RSNA label '{label}' (known: {list(LABELS)})")
    removed: dict[str, int] = {}
    rows = table

    def drop(name: str, keep: pd.Series) -> None:
        nonlocal rows
        removed[name] = int((~keep).sum())
        rows = rows[keep]

    drop("age_missing", rows["age"].notna())
    drop("age_above_max_age", rows["age"] <= max_age)
    if label == "birads_followup":
        drop("birads_missing", rows["BIRADS"].notna())
        labels = (rows["BIRADS"] == 0).astype(int)
    else:
        drop("cancer_missing", rows["cancer"].notna())
        labels = (rows["cancer"] > 0).astype(int)
    rows = rows.assign(label=labels.to_numpy()).reset_index(drop=True)
    counts = {
        "rows_in_train_csv": int(len(table)),
        "max_age": max_age,
        "label": label,
        "removed": removed,
        "selected": int(len(rows)),
        "selected_positives": int(rows["label"].sum()),
    }
    return rows, counts
