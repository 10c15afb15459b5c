"""The synthetic RSNA-like cohort: Kaggle's layout, real DICOM in RSNA's encodings, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, JPEGLosslessSV1

from frugalmed.errors import FrugalmedError
from frugalmed.confounds import confound_report
from frugalmed.splits import assign_patient_splits
from frugalmed.synthetic.rsna import (
    MACHINE_DETECTOR,
    RSNA_COLUMNS,
    cohort_table,
    render_breast,
    synthesize_rsna,
)
from rsna_fixtures import COLS, N_PATIENTS, ROWS, rsna_cohort  # noqa: F401

MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"


def test_table_has_rsna_columns_and_plausible_values():
    table = cohort_table(400, seed=0)
    assert list(table.columns[:14]) == RSNA_COLUMNS
    per_patient = table.groupby("patient_id").size()
    assert per_patient.between(2, 4).all() and set(per_patient) == {2, 3, 4}
    ages = table["age"].dropna()
    assert ages.min() >= 26 and ages.max() <= 89 and ages.max() - ages.min() > 40
    assert table["age"].isna().any()  # a few missing, as in RSNA
    assert set(table["BIRADS"].dropna()) == {0, 1, 2} and table["BIRADS"].isna().any()
    assert table["image_id"].is_unique
    # the finding is label-dependent: far more masses when BIRADS == 0
    mass = table["_has_mass"]
    assert mass[table["BIRADS"] == 0].mean() > 0.7 > 0.1 > mass[table["BIRADS"].isin([1, 2])].mean()
    assert table.loc[table["cancer"] == 1, "BIRADS"].eq(0).mean() > 0.5


def test_site_confound_is_moderate_and_flagged():
    """The demo's deliberate confound: a scanner-only predictor beats chance clearly but is far
    from perfect (group-only test AUC ~0.75 by machine, ~0.67 by site on a large cohort, like the
    real RSNA table's 0.71 / 0.67). Catches the confound vanishing or becoming the whole label."""
    table = cohort_table(3000, seed=0)
    table = table[(table["age"] <= 55) & table["BIRADS"].notna()].copy()
    table["label"] = (table["BIRADS"] == 0).astype(int)
    table["split"] = assign_patient_splits(table["patient_id"], table["label"],
                                           {"train": 0.6, "val": 0.2, "test": 0.2}, 0,
                                           groups=table["site_id"]).to_numpy()
    report = confound_report(table, ["site_id", "machine_id"], threshold=0.6)
    machine = report["columns"]["machine_id"]["group_only_auc"]
    site = report["columns"]["site_id"]["group_only_auc"]
    assert 0.68 <= machine <= 0.85 and 0.6 <= site <= 0.78, (machine, site)
    assert report["flagged"] == ["site_id", "machine_id"]
    shares = table.groupby("machine_id")["label"].mean()
    assert shares.max() - shares.min() > 0.4  # some machines lean to follow-up, others do not


def test_every_machine_marks_its_pixels():
    """Detector contrast and noise differ by machine: the confound is visible in the images too."""
    noisy, quiet = max(MACHINE_DETECTOR, key=lambda m: MACHINE_DETECTOR[m][1]), min(
        MACHINE_DETECTOR, key=lambda m: MACHINE_DETECTOR[m][1])
    images = {m: render_breast(np.random.default_rng(3), 160, 128, "L", "CC", "B", False,
                               MACHINE_DETECTOR[m]) for m in (noisy, quiet)}
    rough = {m: np.abs(np.diff(img[40:120, 10:60], axis=1)).mean() for m, img in images.items()}
    assert rough[noisy] > 1.5 * rough[quiet]


def test_table_is_deterministic_in_the_seed():
    pd.testing.assert_frame_equal(cohort_table(30, 5), cohort_table(30, 5))
    assert not cohort_table(30, 5).equals(cohort_table(30, 6))


def test_layout_and_every_file_reads_back(rsna_cohort):
    table = pd.read_csv(rsna_cohort / "train.csv")
    assert list(table.columns) == RSNA_COLUMNS
    files = sorted((rsna_cohort / "train_images").glob("*/*.dcm"))
    assert len(files) == len(table) and table["patient_id"].nunique() == N_PATIENTS
    seen = {"syntax": set(), "photometric": set(), "voi": set(), "multi": False, "bits": set()}
    for row in table.itertuples():
        ds = pydicom.dcmread(rsna_cohort / "train_images" / str(row.patient_id) / f"{row.image_id}.dcm")
        assert ds.SOPClassUID == MG_FOR_PRESENTATION
        assert ds.file_meta.TransferSyntaxUID in (JPEG2000Lossless, JPEGLosslessSV1)
        assert ds.PatientID == str(row.patient_id) and ds.ImageLaterality == row.laterality
        assert ds.ViewPosition == row.view
        assert 12 <= ds.BitsStored <= 16
        pixels = ds.pixel_array  # decodes with its declared transfer syntax
        assert pixels.shape == (ROWS, COLS) and pixels.max() < 2**ds.BitsStored
        seen["syntax"].add(ds.file_meta.TransferSyntaxUID)
        seen["photometric"].add(ds.PhotometricInterpretation)
        seen["bits"].add(ds.BitsStored)
        if "WindowCenter" in ds:
            seen["voi"].add(ds.VOILUTFunction)
            seen["multi"] |= ds["WindowCenter"].VM > 1
    assert seen["syntax"] == {JPEG2000Lossless, JPEGLosslessSV1}
    assert seen["photometric"] == {"MONOCHROME1", "MONOCHROME2"}
    assert seen["voi"] == {"LINEAR", "SIGMOID"} and seen["multi"]
    assert len(seen["bits"]) > 1


def test_marker_is_written_last(rsna_cohort):
    marker = rsna_cohort / ".frugalmed_raw_complete"
    newest = max(p.stat().st_mtime_ns for p in rsna_cohort.rglob("*.dcm"))
    assert marker.stat().st_mtime_ns >= max(newest, (rsna_cohort / "train.csv").stat().st_mtime_ns)


def test_monochrome1_stores_inverted_values(rsna_cohort):
    """Tissue is bright on display: stored values are low in tissue for MONOCHROME1."""
    for path in sorted((rsna_cohort / "train_images").glob("*/*.dcm")):
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array.astype(float)
        centre = pixels[ROWS // 2, :].mean()  # crosses the breast
        corner = pixels[-3:, :3].mean() if ds.ImageLaterality == "R" else pixels[-3:, -3:].mean()
        if ds.PhotometricInterpretation == "MONOCHROME1":
            assert centre < corner
        else:
            assert centre > corner


def test_mass_is_bright_and_breast_faces_its_side():
    left = render_breast(np.random.default_rng(1), 160, 128, "L", "CC", "B", mass=False)
    right = render_breast(np.random.default_rng(1), 160, 128, "R", "CC", "B", mass=False)
    np.testing.assert_array_equal(left, right[:, ::-1])
    assert left[:, :32].mean() > left[:, -32:].mean()  # chest wall on the left for L
    with_mass = render_breast(np.random.default_rng(1), 160, 128, "L", "CC", "B", mass=True)
    assert (with_mass - left).max() > 0.3


def test_same_seed_gives_identical_files(tmp_path):
    a = synthesize_rsna(tmp_path / "a", tmp_path / "a" / ".m", 4, 64, 48, seed=9)
    b = synthesize_rsna(tmp_path / "b", tmp_path / "b" / ".m", 4, 64, 48, seed=9)
    pd.testing.assert_frame_equal(a, b)
    for row in a.itertuples():
        rel = f"train_images/{row.patient_id}/{row.image_id}.dcm"
        da, db = pydicom.dcmread(tmp_path / "a" / rel), pydicom.dcmread(tmp_path / "b" / rel)
        np.testing.assert_array_equal(da.pixel_array, db.pixel_array)
        assert da.SOPInstanceUID == db.SOPInstanceUID


def test_refuses_to_overwrite_data_it_did_not_write(tmp_path):
    (tmp_path / "train.csv").write_text("real data\n")
    with pytest.raises(FrugalmedError, match="did not write"):
        synthesize_rsna(tmp_path, tmp_path / ".m", 4, 64, 48, seed=0)
    assert (tmp_path / "train.csv").read_text() == "real data\n"


def test_rerun_replaces_an_earlier_synthetic_cohort(tmp_path):
    synthesize_rsna(tmp_path, tmp_path / ".m", 4, 64, 48, seed=0)
    second = synthesize_rsna(tmp_path, tmp_path / ".m", 4, 64, 48, seed=1)
    files = {p.stem for p in (tmp_path / "train_images").glob("*/*.dcm")}
    assert files == set(second["image_id"].astype(str))  # no files left from seed 0
