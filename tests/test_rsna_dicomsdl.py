"""dicomsdl fast path for JPEG lossless: the same stored values as pydicom, on synthetic
mammograms and on real files nobody here wrote (pydicom-data); pydicom is the fallback."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import JPEGLosslessSV1

from frugalmed.rsna import decode
from frugalmed.rsna.decode import RejectedImage, decode_mammogram
from frugalmed.synthetic.dicom_mammo import MammoHeader, build_dataset, write_mammogram

dicomsdl = pytest.importorskip("dicomsdl")
warnings.filterwarnings("ignore", category=UserWarning, module="pydicom")

REAL_FILES = ["JPGLosslessP14SV1_1s_1f_8b.dcm",  # 8-bit unsigned
              "JPEG-LL.dcm"]  # 16-bit signed


def real_file(name: str) -> str:
    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"{name} not available (pip install pydicom-data)")
    return str(path)


def synthetic_sv1(tmp_path, bits: int, photometric: str) -> str:
    rng = np.random.default_rng(bits)
    stored = rng.integers(0, 2**bits, size=(97, 81), dtype=np.uint16)  # odd sides, full range
    header = MammoHeader("1", f"b{bits}", "1.2.3", "L", "CC", 50.0, bits, photometric,
                         windows=[(2 ** (bits - 1), 2**bits * 0.8)], voi_function="SIGMOID")
    path = tmp_path / f"sv1_{bits}_{photometric}.dcm"
    write_mammogram(path, build_dataset(header, stored, 0), JPEGLosslessSV1)
    return str(path)


def files(tmp_path, which: str) -> str:
    if which.startswith("synthetic"):
        _, bits, photometric = which.split(":")
        return synthetic_sv1(tmp_path, int(bits), photometric)
    return real_file(which)


CASES = ["synthetic:12:MONOCHROME2", "synthetic:16:MONOCHROME1", "synthetic:10:MONOCHROME2", *REAL_FILES]


@pytest.mark.parametrize("which", CASES)
def test_dicomsdl_stored_values_equal_pydicom(tmp_path, which):
    path = files(tmp_path, which)
    ds = decode.read_dataset(path)
    assert ds.file_meta.TransferSyntaxUID in decode.DICOMSDL_SYNTAXES
    fast = decode._stored_dicomsdl(path, ds)
    assert fast is not None, "dicomsdl path was not taken"
    reference = ds.pixel_array
    assert fast.dtype == reference.dtype and fast.shape == reference.shape
    np.testing.assert_array_equal(fast, reference)


@pytest.mark.parametrize("which", CASES)
@pytest.mark.parametrize("min_size", [10_000, 24])  # full resolution, and reduced by 2^r
def test_decoded_image_is_the_same_without_dicomsdl(tmp_path, monkeypatch, which, min_size):
    path = files(tmp_path, which)
    with_sdl = decode_mammogram(path, min_size)
    monkeypatch.setitem(sys.modules, "dicomsdl", None)  # import fails: as if not installed
    assert decode._stored_dicomsdl(path, decode.read_dataset(path)) is None
    without = decode_mammogram(path, min_size)
    assert with_sdl.reduction == without.reduction
    np.testing.assert_array_equal(with_sdl.image, without.image)


def test_dicomsdl_failure_falls_back_to_pydicom(tmp_path, monkeypatch):
    path = synthetic_sv1(tmp_path, 12, "MONOCHROME2")
    expected = decode_mammogram(path, 10_000).image

    def broken(*args, **kwargs):
        raise dicomsdl.DicomException("simulated decoder failure")

    monkeypatch.setattr(dicomsdl, "open", broken)
    np.testing.assert_array_equal(decode_mammogram(path, 10_000).image, expected)


def test_codestream_both_decoders_refuse_is_still_rejected(tmp_path):
    """A destroyed JPEG header: dicomsdl fails, pydicom fails, the reject reason is unchanged."""
    data = bytearray(open(synthetic_sv1(tmp_path, 12, "MONOCHROME2"), "rb").read())
    sof = data.find(b"\xff\xc3")
    assert sof > 0
    data[sof : sof + 12] = bytes(12)
    (tmp_path / "broken.dcm").write_bytes(bytes(data))
    with pytest.raises(RejectedImage) as err:
        decode_mammogram(tmp_path / "broken.dcm", 10_000)
    assert err.value.reason == "pixel data could not be decoded"
