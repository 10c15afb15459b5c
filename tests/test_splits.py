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


# --- stratified by label x site (groups) ---


def _sited_cohort(seed: int = 5) -> pd.DataFrame:
    """Four sites of very different sizes and positive shares; 1-4 images per patient."""
    rng = np.random.default_rng(seed)
    sites = {"big": (160, 0.2), "mid": (45, 0.6), "small": (7, 0.5), "tiny": (3, 0.34)}
    rows, p = [], 0
    for site, (n, share) in sites.items():
        for _ in range(n):
            positive = rng.random() < share
            for _ in range(rng.integers(1, 5)):
                rows.append({"patient_id": f"P{p:04d}", "site_id": site, "label": int(positive)})
            p += 1
    return pd.DataFrame(rows)


def _per_patient(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby("patient_id").agg(split=("split", "first"), label=("label", "max"),
                                        site=("site_id", "first"))


def test_groups_keep_patients_whole_and_fractions_exact():
    """Catches per-stratum rounding drift: 8 small strata must still give 0.6/0.2/0.2 overall."""
    df = _sited_cohort()
    df["split"] = assign_patient_splits(df.patient_id, df.label, FRACTIONS, seed=0,
                                        groups=df.site_id)
    assert (df.groupby("patient_id")["split"].nunique() == 1).all()
    counts = _per_patient(df).split.value_counts()
    assert df.patient_id.nunique() == 215  # -> 129 / 43 / 43
    assert (counts["train"], counts["val"], counts["test"]) == (129, 43, 43)


def test_groups_every_split_sees_every_site():
    """Every site with >= 3 patients appears in train, val and test (the tiny one too)."""
    df = _sited_cohort()
    for seed in range(5):
        df["split"] = assign_patient_splits(df.patient_id, df.label, FRACTIONS, seed=seed,
                                            groups=df.site_id)
        per_patient = _per_patient(df)
        for site, part in per_patient.groupby("site"):
            assert set(part.split) == {"train", "val", "test"}, (seed, site)


def test_groups_stratify_label_within_site():
    """Each site x label stratum is split in proportion (within one patient of rounding + a move)."""
    df = _sited_cohort()
    df["split"] = assign_patient_splits(df.patient_id, df.label, FRACTIONS, seed=0,
                                        groups=df.site_id)
    per_patient = _per_patient(df)
    for (site, label), part in per_patient.groupby(["site", "label"]):
        counts = part.split.value_counts()
        for split, fraction in FRACTIONS.items():
            assert abs(counts.get(split, 0) - fraction * len(part)) <= 1.5, (site, label, split)


def test_groups_none_is_the_label_only_split():
    """The data helper's unchanged calls must give the same splits as before."""
    df = _sited_cohort()
    a = assign_patient_splits(df.patient_id, df.label, FRACTIONS, seed=3)
    b = assign_patient_splits(df.patient_id, df.label, FRACTIONS, seed=3, groups=None)
    assert a.equals(b)


def test_groups_with_missing_values_and_determinism():
    df = _sited_cohort()
    df.loc[df.site_id == "small", "site_id"] = np.nan
    a = assign_patient_splits(df.patient_id, df.label, FRACTIONS, seed=0, groups=df.site_id)
    b = assign_patient_splits(df.patient_id, df.label, FRACTIONS, seed=0, groups=df.site_id)
    assert a.equals(b) and a.notna().all()
    assert set(a[df.site_id.isna()]) == {"train", "val", "test"}


def test_many_small_sites_keep_the_split_sizes_exact():
    """Sites of about 2 patients each (a table whose site_id is nearly a patient id): rounding
    within each tiny stratum used to leave val 25 % too large; small sites are pooled, so the
    split sizes are the rounding of the fractions and no patient is in two splits."""
    rng = np.random.default_rng(3)
    n = 1000
    patients = pd.Series([f"P{i:04d}" for i in range(n)])
    labels = pd.Series(rng.integers(0, 2, n))
    sites = pd.Series(rng.integers(0, n // 2, n))
    splits = assign_patient_splits(patients, labels, {"train": 0.6, "val": 0.2, "test": 0.2}, 0,
                                   groups=sites)
    assert splits.value_counts().to_dict() == {"train": 600, "val": 200, "test": 200}
