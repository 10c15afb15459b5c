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


SITES = {"big": (160, 0.2), "mid": (45, 0.6), "small": (7, 0.5), "tiny": (3, 0.34)}


def _sited_cohort(seed: int = 5, sites: dict[str, tuple[int, float]] = SITES) -> pd.DataFrame:
    """Sites of very different sizes and positive shares (site -> (patients, positive share));
    1-4 images per patient."""
    rng = np.random.default_rng(seed)
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


# --- the manifest's split column (frugalmed.dataset.splits): assigned, or given and checked ---

from frugalmed.dataset.splits import check_given_splits, split_column  # noqa: E402
from frugalmed.errors import FrugalmedError  # noqa: E402

CONFIG_SPLITS = {"train": 0.6, "val": 0.2, "test": 0.2, "seed": 4}


def test_assigned_split_column_uses_the_configs_fractions_seed_and_sites():
    """Catches the config's seed or fractions ignored, or the site stratification dropped or
    applied to a table whose site column is empty."""
    df = _sited_cohort()
    got = split_column(df, CONFIG_SPLITS)
    want = assign_patient_splits(df.patient_id, df.label, FRACTIONS, seed=4, groups=df.site_id)
    assert got.tolist() == want.tolist()
    assert got.tolist() != split_column(df, dict(CONFIG_SPLITS, seed=5)).tolist()
    other = split_column(df, {"train": 0.5, "val": 0.25, "test": 0.25, "seed": 4})
    assert other.tolist() != got.tolist()
    no_site = df.assign(site_id=np.nan)
    assert split_column(no_site, CONFIG_SPLITS).tolist() == assign_patient_splits(
        df.patient_id, df.label, FRACTIONS, seed=4).tolist()
    without_seed = {k: v for k, v in CONFIG_SPLITS.items() if k != "seed"}
    assert split_column(df.drop(columns="site_id"), without_seed).tolist() == assign_patient_splits(
        df.patient_id, df.label, FRACTIONS, seed=0).tolist()


def _given(splits: list[str], patients: list[str] | None = None) -> pd.DataFrame:
    patients = patients or [f"p{i}" for i in range(len(splits))]
    return pd.DataFrame({"patient_id": patients, "label": [i % 2 for i in range(len(splits))],
                         "split": splits})


def test_a_given_split_column_is_used_as_given():
    """A hospital's fixed test set stays its test set: no reassignment, no reordering."""
    rows = _given(["test", "train", "val", "train", "test"])
    assert split_column(rows, CONFIG_SPLITS, given=True).tolist() == rows["split"].tolist()


def test_given_splits_with_padding_are_used_without_it():
    """'train ' passes the check (values are compared stripped), so it must also be used as
    'train': returned padded, the run would find no training rows (or fail on an unknown split)."""
    rows = _given([" train", "val ", "test", "train"])
    assert split_column(rows, CONFIG_SPLITS, given=True).tolist() == ["train", "val", "test", "train"]


@pytest.mark.parametrize(("splits", "patients", "message"), [
    (["train", "val", "train"], None, r"no sample left in split\(s\) \['test'\]"),
    (["train", "train", "train"], None, r"\['val', 'test'\]"),
    (["train", "val", "test", "testing"], None, "'testing'"),
    (["train", "val", "test", "test"], ["a", "b", "c", "a"], "patient 'a' is in splits"),
    (["train", "val", "test", "test"], ["a", "b", "c", " a "], "patient 'a' is in splits"),
])
def test_a_given_split_column_that_cannot_train_or_would_leak_is_refused(splits, patients, message):
    """Catches a missing split, an unknown value or a patient in two splits slipping through."""
    with pytest.raises(FrugalmedError, match="^t.csv: .*" + message):
        split_column(_given(splits, patients), CONFIG_SPLITS, given=True, where="t.csv")


def test_check_given_splits_counts_and_names_what_is_wrong():
    with pytest.raises(FrugalmedError, match=r"t.csv: column 'split' must be one of .*'x', 'y' \(3 rows\)"):
        check_given_splits(pd.Series(["a", "b", "c", "d"]), pd.Series(["x", "y", "x", "val"]), "t.csv")
    with pytest.raises(FrugalmedError, match=r"patient 'b' is in splits \['test', 'val'\].*\(2 patient"):
        check_given_splits(pd.Series(["a", "b", "b", "c", "c"]),
                           pd.Series(["train", "val", "test", "train", "val"]), "t.csv")
    check_given_splits(pd.Series(["a", "a", "b"]), pd.Series(["train", "train", "test"]), "t.csv")


@pytest.mark.parametrize("grouped", [False, True])
@pytest.mark.parametrize("n", range(1, 26))
def test_split_sizes_are_the_rounded_fractions_and_no_wanted_split_is_empty(n, grouped):
    """One stratum of n patients: each split gets floor or ceil of its fraction of n (largest
    remainder, so the sizes sum to n), and from 3 patients on no split is empty. Catches a
    rounding that drops or duplicates patients, a remainder handed to the wrong split, or a
    small cohort left without a validation or test patient."""
    df = pd.DataFrame({"patient_id": [f"P{i:02d}" for i in range(n)], "label": 0, "site_id": "s"})
    split = assign_patient_splits(df.patient_id, df.label, FRACTIONS, seed=n,
                                  groups=df.site_id if grouped else None)
    counts = split.value_counts()
    assert counts.sum() == n
    for name, fraction in FRACTIONS.items():
        got = counts.get(name, 0)
        if n >= 3:
            assert got >= 1, (n, name)
            assert abs(got - fraction * n) < 1.5, (n, name, got)
        else:
            assert np.floor(fraction * n) <= got <= np.ceil(fraction * n) + 1, (n, name, got)
    if n >= 5:  # no repair needed: exactly the largest-remainder rounding
        want = {name: int(np.floor(f * n)) for name, f in FRACTIONS.items()}
        rest = n - sum(want.values())
        for name in sorted(FRACTIONS, key=lambda s: -(FRACTIONS[s] * n - want[s]))[:rest]:
            want[name] += 1
        if min(want.values()) >= 1:
            assert {name: counts.get(name, 0) for name in FRACTIONS} == want, n


def test_a_split_with_fraction_zero_stays_empty():
    """splits.val: 0 means no validation patient: the repair that fills empty splits must not
    invent one (nor may rounding)."""
    df = _cohort(30)
    fractions = {"train": 0.7, "val": 0.0, "test": 0.3}
    for groups in (None, pd.Series(["a", "b"] * (len(df) // 2) + ["a"] * (len(df) % 2))):
        split = assign_patient_splits(df.patient_id, df.label, fractions, seed=0, groups=groups)
        assert "val" not in set(split)
        per_patient = pd.Series(split.values, index=df.patient_id).groupby(level=0).first()
        assert per_patient.value_counts()["train"] == 21 and per_patient.value_counts()["test"] == 9


def test_the_row_index_is_kept_and_patients_are_matched_as_text():
    """The split is aligned to the caller's index (a filtered manifest has gaps), and patient
    1 (int) and '1' (text) are the same patient."""
    ids = pd.Series([1, "1", 2, 3, 4, 5, 6, 7], index=[10, 11, 20, 30, 40, 50, 60, 70])
    labels = pd.Series([1, 0, 1, 0, 1, 0, 1, 0], index=ids.index)
    for groups in (None, pd.Series(["a", "a", "b", "b", "a", "b", "a", "b"], index=ids.index)):
        split = assign_patient_splits(ids, labels, FRACTIONS, seed=0, groups=groups)
        assert list(split.index) == list(ids.index) and split.name == "split"
        assert split.loc[10] == split.loc[11]


@pytest.mark.parametrize("grouped", [False, True])
def test_a_patients_split_does_not_depend_on_the_row_order(grouped):
    """The same cohort read in another row order (a re-sorted table, files listed by another
    filesystem) gives every patient the same split: a rerun must not move patients between
    training and test. Catches strata or patients taken in order of appearance."""
    df = _sited_cohort()
    shuffled = df.sample(frac=1, random_state=1)
    def per_patient(frame):
        split = assign_patient_splits(frame.patient_id, frame.label, FRACTIONS, seed=2,
                                      groups=frame.site_id if grouped else None)
        return dict(zip(frame.patient_id, split))
    assert per_patient(df) == per_patient(shuffled)


def test_two_sites_of_exactly_three_patients_each_reach_every_split():
    """A site of exactly MIN_SITE_PATIENTS (3) patients is stratified on its own, not pooled
    with other small sites: each of two such sites lands one patient in train, val and test.
    Bug caught: `<=` for `<` in the pooling rule (the two sites pooled, so one of them can
    miss a split)."""
    df = _sited_cohort(sites={"big": (160, 0.2), "mid": (45, 0.6), "three_a": (3, 0.34),
                              "three_b": (3, 0.34)})
    for seed in range(5):
        df["split"] = assign_patient_splits(df.patient_id, df.label, FRACTIONS, seed=seed, groups=df.site_id)
        per_patient = _per_patient(df)
        for site in ("three_a", "three_b"):
            assert set(per_patient[per_patient.site == site].split) == {"train", "val", "test"}, (seed, site)
