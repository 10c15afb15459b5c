"""The split column of a manifest: assigned by patient (frugalmed.splits), or given and checked.

A user's own table may carry its own `split` column (a hospital's fixed test set, say); it is
used exactly as given, but only if it cannot leak a patient between training and evaluation.
"""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from frugalmed.errors import FrugalmedError
from frugalmed.splits import SPLIT_NAMES, assign_patient_splits


def split_column(rows: pd.DataFrame, splits: Mapping[str, Any], given: bool = False,
                 where: str = "the manifest") -> pd.Series:
    """The split of every row: `rows['split']` checked (given) or assigned by patient.

    Assignment is `frugalmed.splits.assign_patient_splits` with the config's fractions and
    seed (`splits.{train,val,test,seed}`), stratified by each patient's label, and by label x
    site when the rows carry a `site_id` (RSNA; a table with that column), so every split sees
    every site where the cohort allows.
    """
    if given:
        check_given_splits(rows["patient_id"], rows["split"], where)
        values = rows["split"].astype(str).str.strip()  # as checked: 'train ' is 'train'
        missing = [name for name in SPLIT_NAMES if not (values == name).any()]
        if missing:
            raise FrugalmedError(
                f"{where}: no sample left in split(s) {missing} of the given split column "
                "(after rejects); training needs train, val and test"
            )
        return values
    fractions = {name: float(splits[name]) for name in SPLIT_NAMES}
    sites = rows["site_id"] if "site_id" in rows.columns and rows["site_id"].notna().any() else None
    return assign_patient_splits(rows["patient_id"], rows["label"], fractions,
                                 int(splits.get("seed", 0)), groups=sites)


def check_given_splits(patient_ids: pd.Series, splits: pd.Series, where: str) -> None:
    """Raise, naming the value or the patient, unless every split is train|val|test and no
    patient appears in two splits."""
    values = splits.astype(str).str.strip()
    bad = values[~values.isin(SPLIT_NAMES)]
    if len(bad):
        examples = ", ".join(repr(v) for v in sorted(set(bad))[:5])
        raise FrugalmedError(
            f"{where}: column 'split' must be one of {list(SPLIT_NAMES)} in every row; found "
            f"{examples} ({len(bad)} rows). Fix those rows, or drop the column to let frugalmed "
            "assign splits by patient."
        )
    per_patient = pd.DataFrame({"patient": patient_ids.astype(str).str.strip().to_numpy(),
                                "split": values.to_numpy()})
    n_splits = per_patient.groupby("patient", sort=True)["split"].nunique()
    leaking = n_splits[n_splits > 1]
    if len(leaking):
        patient = leaking.index[0]
        found = sorted(per_patient.loc[per_patient["patient"] == patient, "split"].unique())
        raise FrugalmedError(
            f"{where}: patient {patient!r} is in splits {found}; a patient's images must all be "
            f"in one split, or evaluation sees patients it trained on ({len(leaking)} patient(s) "
            "affected)"
        )
