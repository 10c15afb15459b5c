"""RSNA table figures: the age rules, the label polarity, the table-level confound report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from frugalmed.rsna.table_stats import main, table_effects


def _table(n_patients: int = 400, seed: int = 0) -> pd.DataFrame:
    """Patients aged 50-60; machine 21 (site 2) all BIRADS 0, machine 49 (site 1) 25 %."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        machine = 21 if p % 5 == 0 else 49
        age = int(rng.integers(50, 61))
        for view in ("CC", "MLO"):
            birads = 0 if machine == 21 else int(rng.choice([0, 1, 2], p=[0.25, 0.5, 0.25]))
            rows.append({"site_id": "2" if machine == 21 else "1", "patient_id": str(10000 + p),
                         "image_id": str(10**6 + 2 * p + (view == "MLO")), "laterality": "L",
                         "view": view, "age": age, "cancer": 0, "BIRADS": birads,
                         "machine_id": str(machine)})
    return pd.DataFrame(rows)


def test_age_rules_count_exactly_the_images_aged_55():
    table = _table()
    result = table_effects(table)
    rules = result["age_rule"]
    le, lt = rules["age_le_55 (paper text, frugalmed)"], rules["age_lt_55 (original code)"]
    assert le["images"] == int((table.age <= 55).sum())
    assert lt["images"] == int((table.age < 55).sum())
    assert rules["added_by_le"]["images"] == int((table.age == 55).sum()) == le["images"] - lt["images"]


def test_polarity_and_confound_of_an_all_positive_machine():
    result = table_effects(_table())
    polarity = result["label_polarity"]
    assert sum(polarity.values()) == 1.0  # BIRADS is 0, 1 or 2: the two labels are complements
    assert result["birads0_by_group"]["machine_id"]["21"]["birads0_share"] == 1.0
    # 1 in 5 patients on an all-positive machine, 25 % positives elsewhere: clearly above chance
    assert result["confounds"]["columns"]["machine_id"]["group_only_auc"] > 0.65
    assert "machine_id" in result["confounds"]["flagged"]


def test_cli_records_the_input(tmp_path):
    _table(60).to_csv(tmp_path / "train.csv", index=False)
    main([str(tmp_path / "train.csv"), str(tmp_path / "out.json"), "--source", "fake"])
    written = json.loads((tmp_path / "out.json").read_text())
    assert written["input"]["rows"] == 120 and len(written["input"]["sha256"]) == 64


def test_index_order_split_reproduces_the_original_ranges():
    """Rows in patient order, cut at int(0.6 N) and int(0.8 N): a patient can straddle a cut."""
    from frugalmed.rsna.table_stats import index_order_split

    rows = pd.DataFrame({"patient_id": ["3", "1", "1", "2", "2", "4", "5", "5", "6", "6"],
                         "image_id": ["9", "2", "1", "4", "3", "5", "7", "6", "8", "10"],
                         "BIRADS": [0, 1, 1, 2, 0, 0, 1, 1, 0, 0], "site_id": ["1"] * 10})
    result = index_order_split(rows, batch_size=4)
    assert [result["splits"][s]["images"] for s in ("train", "val", "test")] == [6, 2, 2]
    # order: 1,1,2,2,3,4 | 5,5 | 6,6 -> no straddler; image ids sort as text ("10" < "8")
    assert result["patients_in_two_splits"] == 0
    assert result["splits"]["val"]["dropped_by_drop_last"] == 2
    straddle = pd.DataFrame({"patient_id": ["A", "A", "A", "B", "B"], "image_id": list("12345"),
                             "BIRADS": [0, 0, 1, 1, 2], "site_id": ["1"] * 5})
    assert index_order_split(straddle)["patients_in_two_splits"] == 1  # cuts at 3 and 4: B in val and test
