"""What the selection rules and the site confound mean on RSNA's train.csv, from the table alone.

Several of the study's questions need no image: how many images the paper text's age rule
(age <= 55) adds over the original code's (age < 55), how the label's polarity differs, and
how far the scanner alone predicts the label (the confound report, on the rows the study
keeps, split exactly as the workflow splits them). This module answers them for any table in
the RSNA layout:

    python -m frugalmed.rsna.table_stats path/to/train.csv docs/data/rsna_table_effects.json

The numbers in docs/deviations.md come from its committed output.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

import pandas as pd

from frugalmed.atomic import write_json
from frugalmed.confounds import confound_report, group_keys
from frugalmed.rsna.selection import read_train_csv, select_rows
from frugalmed.splits import assign_patient_splits

FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


def _cohort(rows: pd.DataFrame) -> dict[str, Any]:
    return {
        "images": int(len(rows)),
        "patients": int(rows["patient_id"].nunique()),
        "birads0_images": int((rows["BIRADS"] == 0).sum()),
        "birads0_share": round(float((rows["BIRADS"] == 0).mean()), 4) if len(rows) else None,
    }


def table_effects(table: pd.DataFrame, max_age: float = 55.0, split_seed: int = 0,
                  threshold: float = 0.6) -> dict[str, Any]:
    """Age-rule, label and confound figures of one train.csv-like table (see module doc)."""
    kept, counts = select_rows(table, max_age, "birads_followup")  # frugalmed: age <= max_age
    original = kept[kept["age"] < max_age]  # the original code: df.age < AGE
    added = kept[kept["age"] >= max_age]
    kept = kept.copy()
    kept["split"] = assign_patient_splits(kept["patient_id"], kept["label"], FRACTIONS,
                                          split_seed, groups=kept.get("site_id")).to_numpy()
    groups = {}
    for column in ("site_id", "machine_id"):
        if column in kept.columns:
            keys = group_keys(kept[column])
            share = kept["label"].groupby(keys).agg(["mean", "size"])
            groups[column] = {str(g): {"birads0_share": round(float(r["mean"]), 4), "images": int(r["size"])}
                              for g, r in share.iterrows()}
    return {
        "selection_counts": counts,
        "age_rule": {
            f"age_le_{max_age:g} (paper text, frugalmed)": _cohort(kept),
            f"age_lt_{max_age:g} (original code)": _cohort(original),
            "added_by_le": {"images": int(len(added)),
                            "patients_only_in_le": int(len(set(added["patient_id"]) - set(original["patient_id"])))},
        },
        "label_polarity": {
            "frugalmed birads_followup (BIRADS == 0) positive share": round(float(kept["label"].mean()), 4),
            "original code (BIRADS > 0) positive share": round(float((kept["BIRADS"] > 0).mean()), 4),
        },
        "birads0_by_group": groups,
        "confounds": confound_report(kept, ["site_id", "machine_id"], threshold),
        "split": {"fractions": FRACTIONS, "seed": split_seed,
                  "stratified_by": "label x site_id" if "site_id" in kept.columns else "label"},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_csv", help="RSNA train.csv (or a table with its columns)")
    parser.add_argument("output", help="JSON to write")
    parser.add_argument("--max-age", type=float, default=55.0)
    parser.add_argument("--source", default=None, help="where the table came from (recorded)")
    args = parser.parse_args(argv)
    table = read_train_csv(args.train_csv)
    result = table_effects(table, args.max_age)
    digest = hashlib.sha256(Path(args.train_csv).read_bytes()).hexdigest()
    write_json(args.output, {"input": {"file": Path(args.train_csv).name, "sha256": digest,
                                       "rows": int(len(table)), "source": args.source},
                             **result})
    c = result["confounds"]
    print({col: r["group_only_auc"] for col, r in c["columns"].items()}, "flagged:", c["flagged"])


if __name__ == "__main__":
    main()
