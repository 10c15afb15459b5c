"""The confound report: a group-only predictor's test AUC per grouping column, and its flag."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from frugalmed.config import confound_columns
from frugalmed.confounds import confound_report, confounds, group_keys
from frugalmed.splits import assign_patient_splits

FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}
MACHINES = {21: 1, 29: 1, 48: 1, 49: 1, 93: 2, 170: 2, 190: 2, 216: 2}  # machine -> site


def _cohort(n_patients: int, label_of_machine, seed: int = 0) -> pd.DataFrame:
    """Patients with 2-4 images each on one machine; labels from `label_of_machine(machine, rng)`."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        machine = int(rng.choice(list(MACHINES)))
        for _ in range(int(rng.integers(2, 5))):
            rows.append({"patient_id": f"P{p:05d}", "machine_id": machine,
                         "site_id": MACHINES[machine], "label": label_of_machine(machine, rng)})
    frame = pd.DataFrame(rows)
    frame["split"] = assign_patient_splits(frame.patient_id, frame.label, FRACTIONS, seed=0)
    return frame


def test_label_a_function_of_machine_is_found_and_flagged():
    """Acceptance: label = f(machine_id) -> group-only AUC >= 0.95, flagged (site only partly)."""
    positive_machines = {21, 29, 93}
    frame = _cohort(600, lambda m, rng: int(m in positive_machines))
    report = confound_report(frame, ["site_id", "machine_id"], threshold=0.6)
    machine = report["columns"]["machine_id"]
    assert machine["group_only_auc"] >= 0.95
    assert "machine_id" in report["flagged"]
    assert machine["prevalence"]["21"] == 1.0 and machine["prevalence"]["49"] == 0.0
    # site 1 holds 2 of 4 positive machines, site 2 one of 4: a weaker, real, association
    assert 0.5 < report["columns"]["site_id"]["group_only_auc"] < machine["group_only_auc"]


def test_labels_independent_of_site_are_not_flagged():
    """Acceptance: labels drawn independently of site/machine -> AUC 0.5 +- 0.1, not flagged."""
    frame = _cohort(3000, lambda m, rng: int(rng.random() < 0.3), seed=1)
    report = confound_report(frame, ["site_id", "machine_id"], threshold=0.6)
    for column in ("site_id", "machine_id"):
        assert abs(report["columns"][column]["group_only_auc"] - 0.5) <= 0.1
    assert report["flagged"] == []


def test_scores_come_from_the_training_split_only():
    """Catches a predictor fitted on all splits (test labels leaking into the scores)."""
    frame = pd.DataFrame({
        "label": [1, 1, 0, 0, 0, 1, 0, 1],
        "split": ["train", "train", "train", "train", "test", "test", "test", "test"],
        "site_id": ["A", "A", "B", "B", "A", "A", "B", "B"],
    })  # fmt: skip
    # train: A all positive, B all negative; test: A and B half positive -> AUC exactly 0.5
    column = confound_report(frame, ["site_id"], 0.6)["columns"]["site_id"]
    assert column["prevalence"] == {"A": 1.0, "B": 0.0}
    assert column["group_only_auc"] == pytest.approx(0.5)
    assert column["n"] == {"A": 2, "B": 2}
    assert column["n_by_split"]["test"] == {"A": 2, "B": 2}


def test_unseen_group_scores_training_prevalence():
    frame = pd.DataFrame({
        "label": [1, 0, 0, 0, 1, 0, 0],
        "split": ["train", "train", "train", "train", "test", "test", "test"],
        "site_id": ["A", "B", "B", "B", "A", "C", "B"],
    })  # fmt: skip
    column = confound_report(frame, ["site_id"], 0.6)["columns"]["site_id"]
    # scores: A 1.0, C 0.25 (training prevalence, 1 of 4), B 0.0 -> the positive ranks first
    assert column["test_groups_unseen_in_train"] == ["C"]
    assert column["train_prevalence"] == 0.25
    assert column["group_only_auc"] == pytest.approx(1.0)


def test_single_label_test_split_gives_null_and_no_flag():
    frame = pd.DataFrame({"label": [1, 0, 0, 0], "split": ["train", "train", "test", "test"],
                          "site_id": [1, 2, 1, 2]})
    report = confound_report(frame, ["site_id"], 0.6)
    assert report["columns"]["site_id"]["group_only_auc"] is None
    assert report["flagged"] == []


def test_missing_columns_are_listed_not_failed():
    frame = pd.DataFrame({"label": [1, 0, 1, 0], "split": ["train", "train", "test", "test"],
                          "site_id": [1, 2, 1, 2]})
    report = confound_report(frame, ["site_id", "machine_id"], 0.6)
    assert list(report["columns"]) == ["site_id"]
    assert report["missing_columns"] == ["machine_id"]
    assert report["flagged"] == ["site_id"] and report["threshold"] == 0.6


def test_group_keys_normalise_numbers_and_missing():
    keys = group_keys(pd.Series([49.0, np.nan, 21.0, "x"], dtype=object))
    assert keys.tolist() == ["49", "missing", "21", "x"]


def test_confound_columns_default_by_kind():
    def columns(name, dataset):
        return confound_columns({"datasets": {name: dataset}}, name)

    assert columns("rsna", {}) == ["site_id", "machine_id"]
    assert columns("lidc", {}) == []
    assert columns("mammo2", {"kind": "rsna"}) == ["site_id", "machine_id"]
    assert columns("rsna", {"confound_columns": ["site_id"]}) == ["site_id"]
    assert columns("rsna", {"confound_columns": []}) == []


def test_rule_function_writes_json(tmp_path):
    frame = _cohort(60, lambda m, rng: int(m in {21, 29}))
    frame.to_csv(tmp_path / "manifest.csv", index=False)
    confounds(str(tmp_path / "manifest.csv"), str(tmp_path / "confounds.json"),
              ["site_id", "machine_id"], 0.6)
    written = json.loads((tmp_path / "confounds.json").read_text())
    assert set(written) >= {"columns", "flagged", "threshold"}
    assert set(written["columns"]["machine_id"]) >= {"group_only_auc", "prevalence", "n"}


def test_bad_labels_fail_clearly():
    frame = pd.DataFrame({"label": [2, 0], "split": ["train", "test"], "site_id": [1, 2]})
    with pytest.raises(Exception, match="0 or 1"):
        confound_report(frame, ["site_id"], 0.6)


def test_default_target_builds_the_report_of_rsna_only(tmp_path, repo, snakemake_exe):
    """The demo's `all` schedules `confounds` for RSNA (site_id, machine_id) and not for LIDC
    (no grouping columns): catches the report dropping out of the default target."""
    import subprocess

    proc = subprocess.run(
        [snakemake_exe, "-s", str(repo / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(repo / "config/config.yaml"), "-n", "--cores", "1"],
        capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "results/data/rsna/confounds.json" in out
    assert "results/data/lidc/confounds.json" not in out
