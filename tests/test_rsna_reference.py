"""The faster RSNA per-image pipeline (#19) gives the images the one before it gave, within one grey
level at every scale: on real files nobody here wrote (pydicom-data), on the synthetic cohort
the workflow trains on, and on larger synthetic mammograms in both of RSNA's transfer syntaxes.
The reference is the old pipeline, frozen in tests/rsna_reference.py."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import JPEG2000Lossless, JPEGLosslessSV1

from frugalmed.rsna.preprocess import ImageSpec, process_image
from frugalmed.synthetic.dicom_mammo import MammoHeader, build_dataset, write_mammogram
from rsna_fixtures import rsna_cohort  # noqa: F401
from rsna_reference import reference_process

warnings.filterwarnings("ignore", category=UserWarning, module="pydicom")

REAL = ["RG1_J2KR.dcm", "RG3_J2KR.dcm", "MR2_J2KR.dcm",  # JPEG 2000, reduced (odd sides in RG1)
        "RG1_UNCR.dcm", "RG3_UNCR.dcm", "CT_small.dcm", "vlut_04.dcm",  # full decode + 5/3
        "JPGLosslessP14SV1_1s_1f_8b.dcm", "JPEG-LL.dcm", "MR_small_jpeg_ls_lossless.dcm"]


def assert_same_images(path: str, size: int, scales=(1, 2, 4)) -> None:
    got = process_image(path, ImageSpec(image_size=size, scales=tuple(scales)))
    assert got.images is not None, f"{path}: {got.reason} {got.detail}"
    want = reference_process(path, size, list(scales))
    for s in scales:
        diff = np.abs(got.images[s].astype(int) - want[s].astype(int))
        assert diff.max() <= 1, f"{Path(path).name} at {size} px, scale {s}: max diff {diff.max()}"


@pytest.mark.parametrize("name", REAL)
@pytest.mark.parametrize("size", [32, 64])
def test_real_files_match_the_old_pipeline(name, size):
    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"{name} not available (pip install pydicom-data)")
    assert_same_images(str(path), size)


def test_synthetic_cohort_matches_the_old_pipeline(rsna_cohort):
    files = sorted((rsna_cohort / "train_images").rglob("*.dcm"))
    assert len(files) >= 30
    for path in files:
        assert_same_images(str(path), 32)


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, JPEGLosslessSV1])
@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_larger_mammograms_match_the_old_pipeline(tmp_path, syntax, photometric):
    """Sides that are no multiple of 8 (the one-filter form's edge strips, Pillow's size rounding)
    at 3 levels of reduction, as for RSNA's images."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_cohort import mammogram_like

    rng = np.random.default_rng(5)
    for i, (rows, cols) in enumerate([(523, 417), (520, 409)]):
        stored = mammogram_like(rows, cols, 12, "LR"[i % 2], rng)
        if photometric == "MONOCHROME1":
            stored = (4095 - stored).astype(np.uint16)
        header = MammoHeader("1", f"m{i}", "1.2.3", "LR"[i % 2], "CC", 50.0, 12, photometric,
                             windows=[(2000.0, 3000.0)], voi_function="LINEAR")
        path = tmp_path / f"m{i}.dcm"
        write_mammogram(path, build_dataset(header, stored, 0), syntax)
        assert_same_images(str(path), 64, scales=(1, 2, 4, 8))
