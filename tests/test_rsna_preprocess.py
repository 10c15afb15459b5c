"""RSNA preprocessing: selection counts, crop/flip/resize, manifest-array alignment, patient-level
splits, rejects (corrupt file, image without row, row without file) and the reject limit."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from frugalmed.errors import FrugalmedError
from frugalmed.rsna.preprocess import ImageSpec, preprocess_rsna, process_image
from frugalmed.rsna.resize import average_pool, breast_bbox, standardise
from frugalmed.rsna.selection import read_train_csv, select_rows
from rsna_fixtures import SPLITS, copy_cohort, outputs_in, rsna_cohort  # noqa: F401

SPEC = ImageSpec(image_size=32, scales=(1, 2, 4))


def run(raw, out, **kwargs):
    args = dict(max_age=55, label="birads_followup", spec=SPEC, splits=SPLITS,
                max_reject_fraction=0.5, threads=1)
    args.update(kwargs)
    return preprocess_rsna(raw, outputs_in(out, args["spec"].scales), **args)


@pytest.fixture(scope="module")
def processed(rsna_cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("rsna_out")
    manifest = run(rsna_cohort, out, threads=2)  # the process pool path
    return out, manifest


def test_selection_counts_every_removal():
    table = pd.DataFrame({
        "patient_id": list("aabbccdd"), "image_id": [str(i) for i in range(8)],
        "laterality": ["L"] * 8, "view": ["CC"] * 8,
        "age": [30, np.nan, 60, 50, 55, 40, 41, 42],
        "BIRADS": [0, 1, 0, np.nan, 2, 0, 1, np.nan],
        "cancer": [1, 0, 0, 0, 0, 1, 0, 0],
    })
    rows, counts = select_rows(table, max_age=55, label="birads_followup")
    assert counts["removed"] == {"age_missing": 1, "age_above_max_age": 1, "birads_missing": 2}
    assert counts["selected"] == len(rows) == 4
    assert rows["label"].tolist() == [1, 0, 1, 0]  # BIRADS 0 -> 1 (needs follow-up)
    rows, counts = select_rows(table, max_age=55, label="cancer")
    assert counts["removed"] == {"age_missing": 1, "age_above_max_age": 1, "cancer_missing": 0}
    assert rows["label"].tolist() == [1, 0, 0, 1, 0, 0]


def test_selection_json_matches_the_csv(processed, rsna_cohort):
    out, manifest = processed
    table = read_train_csv(rsna_cohort / "train.csv")
    counts = json.loads((out / "selection.json").read_text())
    assert counts["rows_in_train_csv"] == len(table)
    assert counts["removed"]["age_missing"] == table["age"].isna().sum()
    assert counts["removed"]["age_above_max_age"] == (table["age"] > 55).sum()
    young = table[table["age"] <= 55]
    assert counts["removed"]["birads_missing"] == young["BIRADS"].isna().sum()
    assert counts["kept"] == len(manifest) == counts["selected"] - counts["rejected"]
    assert (manifest["age"] <= 55).all() and manifest["BIRADS"].notna().all()
    assert (manifest["label"] == (manifest["BIRADS"] == 0)).all()


def test_manifest_and_arrays_are_aligned(processed):
    out, manifest = processed
    assert list(manifest.columns[:11]) == ["sample_id", "patient_id", "split", "label", "source_file",
                                           "image_id", "laterality", "view", "age", "BIRADS", "cancer"]
    on_disk = pd.read_csv(out / "manifest.csv", dtype={"patient_id": str, "image_id": str})
    assert len(on_disk) == len(manifest) and on_disk["sample_id"].is_unique
    arrays = {s: np.load(out / f"images_s{s}.npy") for s in SPEC.scales}
    for s, array in arrays.items():
        assert array.dtype == np.uint8 and array.shape == (len(manifest), 32 // s, 32 // s)
        np.testing.assert_array_equal(array, np.stack([average_pool(a, s) for a in arrays[1]]))
    for i in (0, len(manifest) // 2, len(manifest) - 1):  # row i is the image of manifest row i
        expected = process_image(on_disk["source_file"][i], SPEC).images
        for s in SPEC.scales:
            np.testing.assert_array_equal(arrays[s][i], expected[s])
    assert len({a.tobytes() for a in arrays[1]}) == len(manifest)


def test_splits_are_patient_level(processed):
    _, manifest = processed
    assert set(manifest["split"]) == {"train", "val", "test"}
    assert (manifest.groupby("patient_id")["split"].nunique() == 1).all()


def test_images_are_bright_cropped_and_face_left(processed):
    _, manifest = processed
    images = np.load(processed[0] / "images_s1.npy").astype(float)
    assert (images[:, :, :8].mean(axis=(1, 2)) > images[:, :, -8:].mean(axis=(1, 2))).all()
    assert images[:, 12:20, :10].mean() > 60  # tissue is bright in every polarity
    assert (images.max(axis=(1, 2)) > 120).all()
    # the burned-in marker (top corner opposite the chest wall) was cropped away
    assert images[:, :3, -4:].max() < 100


def test_crop_keeps_the_largest_component_and_pads_to_square():
    image = np.zeros((100, 60), dtype=np.float32)
    image[10:90, :40] = 0.6  # breast, chest wall on the left
    image[2:6, 50:58] = 1.0  # a marker
    assert breast_bbox(image) == (10, 90, 0, 40)
    out = standardise(image, 20, [1, 2], crop=True, flip=True)
    assert out[1].shape == (20, 20) and out[2].shape == (10, 10)
    assert out[1][:, :10].min() > 140 and out[1][:, 10:].max() == 0  # 80x40 -> 20x10, padded right
    flipped = standardise(image[:, ::-1], 20, [1], crop=True, flip=True)
    np.testing.assert_array_equal(flipped[1], out[1])


def test_rejects_are_listed_and_the_run_goes_on(rsna_cohort, tmp_path):
    raw = copy_cohort(rsna_cohort, tmp_path / "raw")
    table = read_train_csv(raw / "train.csv")
    kept, _ = select_rows(table, 55, "birads_followup")
    paths = [raw / "train_images" / p / f"{i}.dcm" for p, i in zip(kept["patient_id"], kept["image_id"])]
    corrupt, missing = paths[0], paths[1]
    data = corrupt.read_bytes()
    corrupt.write_bytes(data[: len(data) * 2 // 3])  # cut inside the pixel data
    missing.unlink()
    orphan = raw / "train_images" / str(kept["patient_id"][2]) / "123.dcm"
    shutil.copy(paths[2], orphan)
    out = tmp_path / "out"
    manifest = run(raw, out)
    rejects = pd.read_csv(out / "rejects.csv")
    reasons = dict(zip(rejects["source_file"], rejects["reason"]))
    assert reasons[str(missing)] == "listed in train.csv but file missing"
    assert reasons[str(orphan)] == "no row in train.csv"
    assert reasons[str(corrupt)] in ("truncated file", "unreadable DICOM file", "pixel data could not be decoded")
    assert len(rejects) == 3
    assert len(manifest) == len(kept) - 2 == len(np.load(out / "images_s1.npy"))
    assert not set(manifest["source_file"]) & {str(corrupt), str(missing), str(orphan)}
    counts = json.loads((out / "selection.json").read_text())
    assert counts["rejected"] == 3 and counts["csv_rows_without_file"] == 1
    assert counts["files_without_csv_row"] == 1


def test_too_many_rejects_fail_with_the_commonest_reasons(rsna_cohort, tmp_path):
    raw = copy_cohort(rsna_cohort, tmp_path / "raw")
    for path in list((raw / "train_images").glob("*/*.dcm"))[::2]:
        path.write_bytes(b"garbage")
    with pytest.raises(FrugalmedError, match=r"max_reject_fraction.*unreadable DICOM file"):
        run(raw, tmp_path / "out", max_reject_fraction=0.05)
    assert not (tmp_path / "out" / "manifest.csv").exists()
    assert not list((tmp_path / "out").glob("*.npy")) and not list((tmp_path / "out").glob(".*partial"))


def test_missing_train_csv_is_a_clear_error(tmp_path):
    with pytest.raises(FrugalmedError, match="train.csv does not exist"):
        run(tmp_path, tmp_path / "out")


def test_splits_are_stratified_by_site(processed, monkeypatch):
    """RSNA's splits use label x site_id strata: every site with >= 3 patients is in every split,
    and the split assignment receives site_id (catches the wiring being dropped)."""
    import frugalmed.dataset.splits as dataset_splits

    _, manifest = processed
    for site, part in manifest.groupby("site_id"):
        if part["patient_id"].nunique() >= 3:
            assert set(part["split"]) == {"train", "val", "test"}, site
    seen = {}

    def spy(patient_ids, labels, fractions, seed, groups=None):
        seen["groups"] = None if groups is None else list(groups)
        return pd.Series(["train"] * len(patient_ids), index=patient_ids.index)

    monkeypatch.setattr(dataset_splits, "assign_patient_splits", spy)
    rows = manifest.drop(columns=["split"]).head(4)
    dataset_splits.split_column(rows, SPLITS)
    assert seen["groups"] == list(rows["site_id"])
