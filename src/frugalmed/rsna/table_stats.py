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


def index_order_split(rows: pd.DataFrame, batch_size: int = 32) -> dict[str, Any]:
    """The original code's split of these rows: file order, first 60 % / next 20 % / last 20 %.

    raghavian/redl stacks the images patient folder by patient folder (sorted glob of folder
    names, then of file names) and samples train/val/test from index ranges
    [0, 0.6 N), [0.6 N, 0.8 N), [0.8 N, N) (SubsetRandomSampler); its val and test loaders drop
    the last incomplete batch (drop_last=True).
    """
    ordered = rows.assign(_p=rows["patient_id"].astype(str), _i=rows["image_id"].astype(str))
    ordered = ordered.sort_values(["_p", "_i"]).reset_index(drop=True)
    n = len(ordered)
    bounds = {"train": (0, int(0.6 * n)), "val": (int(0.6 * n), int(0.8 * n)), "test": (int(0.8 * n), n)}
    splits, patients = {}, {}
    for name, (lo, hi) in bounds.items():
        part = ordered.iloc[lo:hi]
        patients[name] = set(part["_p"])
        splits[name] = {
            "images": int(len(part)),
            "patients": int(part["_p"].nunique()),
            "birads0_share": round(float((part["BIRADS"] == 0).mean()), 4) if len(part) else None,
            "site_shares": {str(k): round(float(v), 4) for k, v in
                            part["site_id"].astype(str).value_counts(normalize=True).sort_index().items()}
            if "site_id" in part.columns else None,
            "dropped_by_drop_last": int(len(part) % batch_size) if name != "train" else 0,
        }  # fmt: skip
    shared = (patients["train"] & patients["val"]) | (patients["val"] & patients["test"]) | (
        patients["train"] & patients["test"])
    return {"splits": splits, "patients_in_two_splits": len(shared)}


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
        f"original_index_order_split (rows with age < {max_age:g})": index_order_split(original),
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
