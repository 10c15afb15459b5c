"""The labels file of a `kind: table` dataset, checked twice.

At planning time (frugalmed.config) the file as a whole: it exists, has rows and the required
columns, its labels have the two values the config names, a given `split` column is valid and
keeps every patient in one split. A problem there stops the workflow before any job, naming the
config key. At preprocessing time (frugalmed.table.preprocess) row by row: a row whose file is
missing or repeated, whose label is neither value or whose patient_id is empty becomes a reject
with its reason; the other rows go on.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from frugalmed.dataset.splits import check_given_splits
from frugalmed.errors import ConfigError, FrugalmedError
from frugalmed.splits import SPLIT_NAMES

REQUIRED_COLUMNS = ("file", "patient_id", "label")
#: Columns frugalmed writes into a table dataset's manifest; a labels file may not use them.
RESERVED_COLUMNS = ("sample_id", "source_file", "label_value", "image_format", "photometric",
                    "transfer_syntax", "reduced_decode", "frames", "frame")


def read_labels(path: str | os.PathLike[str], dataset: str) -> pd.DataFrame:
    """The labels table, every cell as text (ids and labels are kept exactly as written).

    ConfigError (naming datasets.{dataset}.labels) if the file is missing, empty, lacks a
    required column or uses a reserved one.
    """
    key = f"datasets.{dataset}.labels"
    path = Path(path)
    if not path.is_file():
        raise ConfigError(key, f"the labels file {path} does not exist (a CSV with columns "
                          f"{', '.join(REQUIRED_COLUMNS)}; optional split, site_id, others)")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise ConfigError(key, f"the labels file {path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ConfigError(key, f"{path} is not a readable CSV file: {err}") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ConfigError(key, f"{path} lacks the column(s) {missing} (has {list(table.columns)}); "
                          f"required: {list(REQUIRED_COLUMNS)}")
    reserved = [c for c in RESERVED_COLUMNS if c in table.columns]
    if reserved:
        raise ConfigError(key, f"{path} has column(s) {reserved}, which frugalmed writes into the "
                          "manifest itself; rename them")
    duplicated = sorted({c for c in table.columns if list(table.columns).count(c) > 1})
    if duplicated:
        raise ConfigError(key, f"{path} has the column(s) {duplicated} more than once")
    if table.empty:
        raise ConfigError(key, f"the labels file {path} has a header but no rows")
    for column in table.columns:
        table[column] = table[column].str.strip()
    return table


def label_columns(path: str | os.PathLike[str]) -> list[str]:
    """The column names of a labels file (its header only); [] if it cannot be read."""
    try:
        header = pd.read_csv(path, dtype=str, nrows=0, encoding="utf-8-sig")
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return []
    return [str(c).strip() for c in header.columns]


def canonical(value: Any) -> Any:
    """A label value for comparison: numbers as floats ('1', '1.0' and 1 agree), text stripped."""
    if isinstance(value, bool):
        return str(value)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def resolve_negative(values: pd.Series, positive: Any, negative: Any, dataset: str) -> Any:
    """The label value meaning negative: `negative` when set; else 0 if `positive` is a number;
    else the one value of the column other than `positive`."""
    if negative is not None:
        return negative
    if isinstance(canonical(positive), float):
        return 0
    others = sorted({v for v in values if v != "" and canonical(v) != canonical(positive)})
    if len(others) != 1:
        raise ConfigError(
            f"datasets.{dataset}.negative",
            f"the label column has {len(others)} values besides positive ({positive!r}): "
            f"{others[:6]}; name the negative one with negative: (rows with any other value are "
            "then rejected)",
        )
    return others[0]


def binary_labels(values: pd.Series, positive: Any, negative: Any) -> pd.Series:
    """1 for `positive`, 0 for `negative`, <NA> for anything else (a row to reject)."""
    pos, neg = canonical(positive), canonical(negative)
    mapped = [1 if canonical(v) == pos else 0 if canonical(v) == neg else pd.NA for v in values]
    return pd.Series(mapped, index=values.index, dtype="Int64")


def check_labels(table: pd.DataFrame, positive: Any, negative: Any, dataset: str,
                 path: str | os.PathLike[str]) -> Any:
    """Planning-time checks of the whole table; returns the negative value. ConfigError if the
    labels lack either value, or a given split column is invalid or leaks a patient."""
    negative = resolve_negative(table["label"], positive, negative, dataset)
    labels = binary_labels(table["label"], positive, negative)
    for value, name, code in ((positive, "positive", 1), (negative, "negative", 0)):
        if not (labels == code).any():
            found = sorted(set(table["label"]))[:6]
            raise ConfigError(
                f"datasets.{dataset}.{name}",
                f"no row of {path} has label {value!r}; the label column must hold exactly two "
                f"values, one of them positive (found {found})",
            )
    if "split" in table.columns:
        try:
            check_given_splits(table["patient_id"], table["split"], str(path))
        except FrugalmedError as err:
            raise ConfigError(f"datasets.{dataset}.labels", str(err)) from None
        missing = [s for s in SPLIT_NAMES if not (table["split"] == s).any()]
        if missing:
            raise ConfigError(f"datasets.{dataset}.labels",
                              f"the split column of {path} has no {missing} row; training needs "
                              "train, val and test (or drop the column to assign splits)")
    return negative


@dataclass
class RowPlan:
    """The rows to decode (with their resolved paths) and the rows rejected before decoding."""

    rows: pd.DataFrame
    paths: list[str]
    rejects: list[tuple[str, str, str]] = field(default_factory=list)


def plan_rows(table: pd.DataFrame, raw_dir: str | os.PathLike[str], positive: Any,
              negative: Any, labels_name: str = "labels.csv") -> RowPlan:
    """Resolve every row's file; reject rows without a usable file, label or patient_id.

    `file` is relative to raw_dir (an absolute path is used as it is). A file named by several
    rows is kept once if the rows agree (same patient, label and split) and rejected on every
    row if they do not.
    """
    raw = Path(raw_dir)
    table = table.assign(_line=table.index + 2)  # CSV line numbers: line 1 is the header
    table["_file"] = [PurePosixPath(os.path.normpath(f.replace("\\", "/"))).as_posix() if f else ""
                      for f in table["file"]]
    table["_path"] = [str(raw / f) if f else "" for f in table["_file"]]
    table["_binary"] = binary_labels(table["label"], positive, negative)
    rejects: list[tuple[str, str, str]] = []
    keep = pd.Series(True, index=table.index)

    def reject(mask: pd.Series, reason: str, detail) -> None:
        for i in table.index[mask & keep]:
            row = table.loc[i]
            rejects.append((row["_path"] or f"{labels_name} line {row['_line']}", reason,
                            detail(row)))
        keep[mask] = False

    reject(table["_file"] == "", "no file named", lambda r: f"{labels_name} line {r['_line']}")
    reject(table["patient_id"] == "", "no patient_id", lambda r: f"{labels_name} line {r['_line']}")
    reject(table["_binary"].isna(), "label is neither the positive nor the negative value",
           lambda r: f"label {r['label']!r} on {labels_name} line {r['_line']} "
           f"(positive {positive!r}, negative {negative!r})")
    fields = ["patient_id", "label"] + (["split"] if "split" in table.columns else [])
    by_file = table[keep].groupby("_file", sort=False)
    for _, group in by_file:
        if len(group) < 2:
            continue
        lines = ", ".join(str(n) for n in group["_line"])
        agree = len(group[fields].drop_duplicates()) == 1
        mask = table.index.isin(group.index if not agree else group.index[1:])
        reason = "duplicate file" if agree else "duplicate file with conflicting rows"
        reject(pd.Series(mask, index=table.index), reason,
               lambda r, lines=lines: f"{labels_name} lines {lines}")
    exists = pd.Series([bool(p) and os.path.isfile(p) for p in table["_path"]], index=table.index)
    reject(~exists, "file missing", lambda r: f"{labels_name} line {r['_line']}")
    rows = table[keep].copy()
    rows["label_value"] = rows["label"]
    rows["label"] = rows["_binary"].astype(int)
    return RowPlan(rows, list(rows["_path"]), rejects)
