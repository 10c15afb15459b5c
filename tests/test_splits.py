import numpy as np
import pandas as pd
import pytest

from frugalmed.splits import assign_patient_splits

FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


def _cohort(n_patients: int = 50, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        positive = p % 4 == 0
        for _ in range(rng.integers(1, 5)):
            rows.append({"patient_id": f"P{p:03d}", "label": int(positive and rng.random() < 0.7)})
    return pd.DataFrame(rows)


def test_no_patient_in_two_splits():
    df = _cohort()
    df["split"] = assign_patient_splits(df.patient_id, df.label, FRACTIONS, seed=0)
    assert (df.groupby("patient_id")["split"].nunique() == 1).all()
    assert set(df.split) == {"train", "val", "test"}


def test_patient_fractions_and_stratification():
    df = _cohort(100)
    df["split"] = assign_patient_splits(df.patient_id, df.label, FRACTIONS, seed=0)
    per_patient = df.groupby("patient_id").agg(split=("split", "first"), label=("label", "max"))
    counts = per_patient.split.value_counts()
    assert counts["train"] == 60 and counts["val"] == 20 and counts["test"] == 20
    positives = per_patient[per_patient.label == 1].split.value_counts()
    assert all(positives.get(s, 0) > 0 for s in ("train", "val", "test"))


def test_deterministic_and_seed_dependent():
    df = _cohort()
    a = assign_patient_splits(df.patient_id, df.label, FRACTIONS, seed=0)
    b = assign_patient_splits(df.patient_id, df.label, FRACTIONS, seed=0)
    c = assign_patient_splits(df.patient_id, df.label, FRACTIONS, seed=1)
    assert a.equals(b)
    assert not a.equals(c)


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_small_cohorts_assign_every_patient(n):
    df = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)], "label": [i % 2 for i in range(n)]})
    split = assign_patient_splits(df.patient_id, df.label, FRACTIONS, seed=0)
    assert split.notna().all() and len(split) == n


def test_three_patients_fill_three_splits():
    df = pd.DataFrame({"patient_id": ["A", "A", "B", "C", "C"], "label": [1, 0, 1, 1, 1]})
    split = assign_patient_splits(df.patient_id, df.label, FRACTIONS, seed=0)
    assert set(split) == {"train", "val", "test"}
    assert split.iloc[0] == split.iloc[1] and split.iloc[3] == split.iloc[4]
