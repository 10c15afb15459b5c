"""The patch rule on the synthetic cohort, checked against pylidc's own masks and volume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from frugalmed.errors import ConfigError, FrugalmedError
from frugalmed.lidc.extract import ExtractParams
from frugalmed.lidc.patches import window_to_uint8
from frugalmed.dataset.outputs import MANIFEST_FIRST
from frugalmed.lidc.preprocess import MANIFEST_COLUMNS, preprocess_lidc
from frugalmed.pylidc_compat import import_pylidc
from lidc_fixtures import *  # noqa: F401,F403
from lidc_fixtures import SMALL_PATIENT, SPLITS, copy_patients, outputs

PARAMS = ExtractParams(patch_size=48, min_raters=2, hu_window=(-1000.0, 400.0))


@pytest.fixture(scope="module")
def built(lidc_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("lidc_out")
    summary = preprocess_lidc(str(lidc_cohort), outputs(out), PARAMS, SPLITS, 0.0, workers=2)
    return {
        "summary": summary,
        "manifest": pd.read_csv(out / "manifest.csv"),
        "images": np.load(out / "images_s1.npy"),
        "rejects": pd.read_csv(out / "rejects.csv"),
        "selection": json.loads((out / "selection.json").read_text()),
    }


def _independent_slices(nodule: list) -> dict[int, int]:
    """slice k -> raters with a non-empty pylidc boolean_mask there, counted here directly."""
    counts: dict[int, int] = {}
    for ann in nodule:
        mask = ann.boolean_mask()
        k0 = ann.bbox()[2].start
        for dk in range(mask.shape[2]):
            if mask[:, :, dk].any():
                counts[k0 + dk] = counts.get(k0 + dk, 0) + 1
    return counts


def test_outputs_follow_the_contract(built: dict) -> None:
    manifest, images = built["manifest"], built["images"]
    first = [*MANIFEST_FIRST, *MANIFEST_COLUMNS]
    assert list(manifest.columns[: len(first)]) == first
    assert images.dtype == np.uint8 and images.shape == (len(manifest), 48, 48)
    assert manifest["sample_id"].is_unique
    assert set(manifest["label"]) == {0, 1}
    assert set(manifest["split"]) <= {"train", "val", "test"}
    assert manifest.groupby("patient_id")["split"].nunique().max() == 1
    two_scans = manifest[manifest["patient_id"] == "LIDC-IDRI-0365"]
    assert two_scans["scan_id"].nunique() == 2  # both scans, one split
    assert list(built["rejects"].columns) == ["source_file", "reason", "detail"] and built["rejects"].empty
    sel = built["selection"]
    assert sel["patches"] == len(manifest) and sel["scans"] == 4 and sel["patients"] == 3
    assert sel["labels"] == {"0": int((manifest.label == 0).sum()), "1": int(manifest.label.sum())}
    assert sum(s["patches"] for s in sel["splits"].values()) == len(manifest)
    prevalence = sel["prevalence_by_min_raters"]  # the configured rule's row equals the labels
    assert prevalence["2"]["positives"] == sel["labels"]["1"]
    for m in ("1", "2", "3", "4"):
        positives = int((manifest.n_raters >= int(m)).sum())
        assert prevalence[m] == {"positives": positives, "negatives": len(manifest) - positives,
                                 "share_positive": round(positives / len(manifest), 4)}


def test_patches_and_labels_equal_pylidc_counted_independently(lidc_cohort: Path, built: dict) -> None:
    manifest, images = built["manifest"], built["images"]
    pl = import_pylidc(lidc_cohort)
    for patient in ("LIDC-IDRI-0078", SMALL_PATIENT):
        scan = pl.query(pl.Scan).filter(pl.Scan.patient_id == patient).first()
        volume = scan.to_volume(verbose=False)
        for nodule_id, nodule in enumerate(scan.cluster_annotations(verbose=False)):
            expected = _independent_slices(nodule)
            rows = manifest[(manifest.scan_id == scan.id) & (manifest.nodule_id == nodule_id)]
            assert dict(zip(rows.slice_index, rows.n_raters)) == expected
            assert (rows.label == (rows.n_raters >= 2).astype(int)).all()
            for i, row in rows.iterrows():
                r0, c0, k = row.patch_row0, row.patch_col0, row.slice_index
                window = volume[r0 : r0 + 48, c0 : c0 + 48, k]
                np.testing.assert_array_equal(images[i], window_to_uint8(window, (-1000, 400)))
                assert row.z_mm == pytest.approx(scan.slice_zvals[k])


def test_patch_centre_lies_on_the_painted_nodule(built: dict) -> None:
    manifest, images = built["manifest"], built["images"]
    # the faintest painted nodule pixel (ground glass, smallest cross-section, edge) is about
    # -770 HU; the lung parenchyma around it -850 HU
    nodule_floor = window_to_uint8(np.array([-800.0]), (-1000, 400))[0]
    on_nodule = []
    for i, row in manifest.iterrows():
        r = int(round(row.centroid_row)) - row.patch_row0
        c = int(round(row.centroid_col)) - row.patch_col0
        assert 0 <= r < 48 and 0 <= c < 48
        if row.patch_row0 not in (0, 512 - 48) and row.patch_col0 not in (0, 512 - 48):
            assert abs(r - 24) <= 1 and abs(c - 24) <= 1  # centred away from borders
        on_nodule.append(images[i, max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2].max() > nodule_floor)
    assert np.mean(on_nodule) > 0.95


def test_missing_series_is_rejected_not_fatal(lidc_cohort: Path, tmp_path: Path) -> None:
    raw = copy_patients(lidc_cohort, tmp_path / "raw", [SMALL_PATIENT])
    (raw / "LIDC-IDRI-0078").mkdir()  # patient folder present, its series missing
    (raw / "not-a-patient").mkdir()
    out = tmp_path / "out"
    summary = preprocess_lidc(str(raw), outputs(out), PARAMS, SPLITS, 0.5)
    rejects = pd.read_csv(out / "rejects.csv")
    assert summary["scans"] == 2 and summary["scans_rejected"] == 1
    assert rejects["source_file"].str.contains("LIDC-IDRI-0078").sum() == 1
    assert rejects["reason"].str.contains("series not found").any()
    assert rejects["source_file"].str.endswith("not-a-patient").any()
    assert set(pd.read_csv(out / "manifest.csv")["patient_id"]) == {SMALL_PATIENT}
    with pytest.raises(FrugalmedError, match="max_reject_fraction"):
        preprocess_lidc(str(raw), outputs(tmp_path / "out2"), PARAMS, SPLITS, 0.05)
    assert not (tmp_path / "out2" / "manifest.csv").exists()


def test_missing_slice_rejects_only_that_nodule(lidc_cohort: Path, built: dict, tmp_path: Path) -> None:
    raw = copy_patients(lidc_cohort, tmp_path / "raw", ["LIDC-IDRI-0078"])
    manifest = built["manifest"]
    rows = manifest[manifest.patient_id == "LIDC-IDRI-0078"]
    victim = rows[rows.nodule_id == rows.nodule_id.min()].iloc[0]
    Path(victim.source_file.replace(str(lidc_cohort), str(raw))).unlink()
    out = tmp_path / "out"
    summary = preprocess_lidc(str(raw), outputs(out), PARAMS, SPLITS, 0.0)
    rejects = pd.read_csv(out / "rejects.csv")
    assert len(rejects) == 1 and "slices missing" in rejects.reason[0]
    assert rejects.detail[0].startswith("z = ")
    assert rejects.source_file[0].endswith(f"#nodule{victim.nodule_id}")
    kept = pd.read_csv(out / "manifest.csv")
    assert victim.nodule_id not in set(kept.nodule_id)
    assert len(kept) == len(rows) - (rows.nodule_id == victim.nodule_id).sum()
    assert summary["scans_with_missing_slices"] == 1 and summary["nodules_rejected"] == 1


def test_unreadable_file_rejects_the_scan_naming_the_file(lidc_cohort: Path, tmp_path: Path) -> None:
    raw = copy_patients(lidc_cohort, tmp_path / "raw", [SMALL_PATIENT, "LIDC-IDRI-0078"])
    bad = sorted((raw / SMALL_PATIENT).rglob("*.dcm"))[5]
    bad.write_bytes(b"\x00" * 200 + b"not DICOM")
    out = tmp_path / "out"
    preprocess_lidc(str(raw), outputs(out), PARAMS, SPLITS, 0.5)
    rejects = pd.read_csv(out / "rejects.csv")
    assert list(rejects.source_file) == [str(bad)]
    assert "unreadable" in rejects.reason[0]


def test_scans_restriction(lidc_cohort: Path, tmp_path: Path) -> None:
    summary = preprocess_lidc(
        str(lidc_cohort), outputs(tmp_path / "a"), PARAMS, SPLITS, 0.0, restrict=[SMALL_PATIENT]
    )
    assert summary["scans"] == 1
    assert set(pd.read_csv(tmp_path / "a" / "manifest.csv").patient_id) == {SMALL_PATIENT}
    with pytest.raises(ConfigError, match="datasets.lidc.scans"):
        preprocess_lidc(str(lidc_cohort), outputs(tmp_path / "b"), PARAMS, SPLITS, 0.0,
                        restrict=["LIDC-IDRI-9999"])


def test_in_plane_resampling(lidc_cohort: Path, tmp_path: Path) -> None:
    params = ExtractParams(patch_size=48, pixel_spacing_mm=1.0)
    preprocess_lidc(str(lidc_cohort), outputs(tmp_path), params, SPLITS, 0.0,
                    restrict=[SMALL_PATIENT])  # fmt: skip
    manifest = pd.read_csv(tmp_path / "manifest.csv")
    images = np.load(tmp_path / "images_s1.npy")
    assert np.allclose(manifest.pixel_spacing_mm, 1.0)
    centre = images[:, 22:26, 22:26].reshape(len(images), -1).max(axis=1)
    assert np.mean(centre > window_to_uint8(np.array([-650.0]), (-1000, 400))[0]) > 0.9
