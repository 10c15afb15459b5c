"""How far a grouping column alone (site, scanner) predicts the label: the confound report.

If a scanner's images are mostly positive, a classifier can score well by recognising the
scanner instead of the finding, and a setting that "gains" test AUC may only have learnt the
scanner faster. For each grouping column g of a manifest we fit the simplest group-only
predictor -- each image scores its group's positive share in the training split (groups the
training split never saw score the training prevalence) -- and report its test-split ROC AUC.
A column whose group-only AUC reaches ``study.confound_auc`` is flagged, so the results can
name it next to P_T.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from frugalmed.atomic import write_json
from frugalmed.errors import FrugalmedError

log = logging.getLogger(__name__)

MISSING_GROUP = "missing"
METHOD = (
    "group_only_auc: test-split ROC AUC of a predictor that scores each image by its group's "
    "share of positives in the training split (groups absent from the training split score the "
    "training prevalence); null when the test split lacks one of the labels. prevalence and n: "
    "per group, in the training split; n_by_split: per split and group."
)


def group_keys(values: pd.Series) -> pd.Series:
    """Group names as strings: 49.0 -> '49' (a column with NaN is float), NaN -> 'missing'."""

    def key(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return MISSING_GROUP
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return str(int(value))
        return str(value)

    return values.map(key).astype(str)


def column_report(groups: pd.Series, labels: pd.Series, splits: pd.Series) -> dict[str, Any]:
    """The report of one grouping column (aligned Series of group key, 0/1 label, split name)."""
    from sklearn.metrics import roc_auc_score  # here: common.smk imports this module at parse time

    train = splits == "train"
    test = splits == "test"
    if not train.any():
        raise FrugalmedError("the manifest has no training split; cannot fit the group-only predictor")
    train_prevalence = float(labels[train].mean())
    prevalence = labels[train].groupby(groups[train], sort=True).mean()
    scores = groups[test].map(prevalence).fillna(train_prevalence).astype(float)
    y_test = labels[test].astype(int)
    auc = float(roc_auc_score(y_test, scores)) if y_test.nunique() == 2 else None
    unseen = sorted(set(groups[test]) - set(prevalence.index))
    n_by_split = {
        split: {str(g): int(n) for g, n in groups[splits == split].value_counts().sort_index().items()}
        for split in sorted(splits.unique())
    }
    return {
        "group_only_auc": None if auc is None else round(auc, 6),
        "prevalence": {str(g): round(float(p), 6) for g, p in prevalence.items()},
        "n": {str(g): int(n) for g, n in groups[train].value_counts().sort_index().items()},
        "n_by_split": n_by_split,
        "train_prevalence": round(train_prevalence, 6),
        "test_groups_unseen_in_train": unseen,
    }


def confound_report(
    manifest: pd.DataFrame, columns: Sequence[str], threshold: float
) -> dict[str, Any]:
    """confounds.json of one manifest (columns `label`, `split` and the grouping columns).

    Configured columns the manifest lacks are listed under `missing_columns`, not failed on:
    a dataset kind's default columns need not exist in every cohort.
    """
    for needed in ("label", "split"):
        if needed not in manifest.columns:
            raise FrugalmedError(f"manifest has no '{needed}' column (has {list(manifest.columns)})")
    labels = manifest["label"].astype(int)
    if not labels.isin([0, 1]).all():
        raise FrugalmedError("manifest labels must be 0 or 1 for the confound report")
    splits = manifest["split"].astype(str)
    present = [c for c in columns if c in manifest.columns]
    report = {
        name: column_report(group_keys(manifest[name]), labels, splits) for name in present
    }
    flagged = [
        name for name, r in report.items()
        if r["group_only_auc"] is not None and r["group_only_auc"] >= threshold
    ]  # fmt: skip
    return {
        "columns": report,
        "flagged": flagged,
        "threshold": float(threshold),
        "missing_columns": [c for c in columns if c not in manifest.columns],
        "method": METHOD,
    }


def confounds(
    manifest_path: str, output_path: str, columns: Iterable[str], threshold: float
) -> dict[str, Any]:
    """Rule `confounds`: read a dataset's manifest, write its confounds.json; returns the report."""
    manifest = pd.read_csv(manifest_path, low_memory=False, dtype={"patient_id": str})
    report = confound_report(manifest, list(columns), threshold)
    for name, r in report["columns"].items():
        log.info("%s: group-only test AUC %s over %d groups%s", name, r["group_only_auc"],
                 len(r["n_by_split"].get("train", {})),
                 " -- FLAGGED" if name in report["flagged"] else "")
    if report["missing_columns"]:
        log.warning("configured confound columns not in %s: %s", manifest_path,
                    report["missing_columns"])
    write_json(output_path, report)
    return report
