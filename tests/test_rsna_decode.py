"""Decoding mammogram DICOMs: real files nobody here wrote (pydicom's test data, pydicom-data)
and synthetic ones; polarity, LUT/windows, reduced-resolution JPEG 2000, rejects."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, JPEGLosslessSV1

from frugalmed.rsna.decode import (
    RejectedImage,
    decode_mammogram,
    display_lut,
    read_dataset,
    reduction_level,
)
from frugalmed.rsna.resize import standardise
from frugalmed.synthetic.dicom_mammo import MammoHeader, build_dataset, write_mammogram

warnings.filterwarnings("ignore", category=UserWarning, module="pydicom")


def data_file(name: str) -> str:
    path = get_testdata_file(name)  # pydicom's own files, or the pydicom-data package's
    if path is None:
        pytest.skip(f"{name} not available (pip install pydicom-data)")
    return str(path)


def reference_display(path: str) -> np.ndarray:
    """pydicom's own modality + VOI LUT, normalised to [0, 1] over its output, tissue bright."""
    ds = pydicom.dcmread(path)
    out = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds, index=0).astype(float)
    lut, _ = display_lut(ds)  # for the output range only
    bits = ds.BitsStored
    low = -(2 ** (bits - 1)) if ds.PixelRepresentation else 0
    full = apply_voi_lut(apply_modality_lut(np.arange(low, low + 2**bits), ds), ds, index=0)
    out = (out - full.min()) / (full.max() - full.min())
    return 1.0 - out if ds.PhotometricInterpretation == "MONOCHROME1" else out


def test_reduction_level_keeps_the_target_size():
    assert reduction_level(4096, 3328, 256) == 3  # 3328 / 8 = 416 >= 256 > 208
    assert reduction_level(320, 256, 64) == 2
    assert reduction_level(100, 100, 256) == 0


@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", "RG3_UNCR.dcm", "MR_small.dcm", "CT_small.dcm",
                                  "vlut_04.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm",
                                  "MR_small_jpeg_ls_lossless.dcm"])
def test_full_decode_matches_pydicom_luts(name):
    """Uncompressed, JPEG Lossless SV1 and JPEG-LS files; windows, rescale and a VOI LUT sequence."""
    path = data_file(name)
    decoded = decode_mammogram(path, min_size=10_000)  # r = 0: full resolution
    assert decoded.reduction == 0 and not decoded.reduced_decode
    np.testing.assert_allclose(decoded.image, reference_display(path), atol=1e-4)


def test_voi_lut_sequence_is_applied(tmp_path):
    """Reversing the file's VOI LUT data reverses the decoded grey levels."""
    ds = pydicom.dcmread(data_file("vlut_04.dcm"))
    assert "VOILUTSequence" in ds and "WindowCenter" not in ds
    item = ds.VOILUTSequence[0]
    lut = np.frombuffer(item.LUTData, dtype=np.uint16) if isinstance(item.LUTData, bytes) else np.asarray(item.LUTData)
    item.LUTData = [int(v) for v in lut[::-1]]
    ds.save_as(tmp_path / "reversed.dcm")
    original = decode_mammogram(data_file("vlut_04.dcm"), 10_000).image
    reversed_ = decode_mammogram(tmp_path / "reversed.dcm", 10_000).image
    np.testing.assert_allclose(reversed_, 1.0 - original, atol=1e-3)
    assert original.std() > 0.1


def test_monochrome1_is_inverted():
    """RG1 is a MONOCHROME1 radiograph: decoded intensity falls as the stored value rises."""
    path = data_file("RG1_UNCR.dcm")
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    image = decode_mammogram(path, 10_000).image
    stored = ds.pixel_array.astype(float)
    assert np.corrcoef(stored.ravel()[::97], image.ravel()[::97])[0, 1] < -0.95


def test_jpeg2000_and_uncompressed_copies_decode_alike():
    full_j2k = decode_mammogram(data_file("RG1_J2KR.dcm"), 10_000)
    full_raw = decode_mammogram(data_file("RG1_UNCR.dcm"), 10_000)
    np.testing.assert_array_equal(full_j2k.image, full_raw.image)


@pytest.mark.parametrize("name", ["RG1_J2KR.dcm", "RG3_J2KR.dcm", "MR2_J2KR.dcm"])
@pytest.mark.parametrize("size", [64, 256])
def test_reduced_resolution_jpeg2000_agrees_with_full_decode(name, size):
    """Reduced (OpenJPEG, 1/2^r) and full decoding give the same study image within 1 grey level
    on average (OpenJPEG's integer lifting vs the exact 5/3 low-pass of the full decode)."""
    path = data_file(name)
    reduced = decode_mammogram(path, min_size=size, reduce=True)
    full = decode_mammogram(path, min_size=size, reduce=False)
    assert reduced.reduced_decode, "no reduced JPEG 2000 decoding here (Pillow without OpenJPEG?)"
    assert reduced.reduction == full.reduction >= 2
    assert reduced.image.shape == full.image.shape and min(reduced.image.shape) >= size
    a = standardise(reduced.image, size, [1, 4])
    b = standardise(full.image, size, [1, 4])
    assert np.abs(a[1].astype(float) - b[1]).mean() <= 1.0
    assert np.abs(a[4].astype(float) - b[4]).mean() <= 1.0


def synthetic_file(tmp_path, name, photometric, syntax, voi="LINEAR", windows=True, bits=12):
    rng = np.random.default_rng(0)
    tissue = np.zeros((96, 80))
    tissue[20:76, :50] = 0.6 + 0.1 * rng.random((56, 50))
    maxv = 2**bits - 1
    stored = np.rint(100 + tissue * (maxv - 200)).astype(np.uint16)
    win = [(maxv / 2, maxv * 0.9)]
    if photometric == "MONOCHROME1":
        stored = (maxv - stored).astype(np.uint16)
        win = [(maxv - c, w) for c, w in win]
    header = MammoHeader("1", name, "1.2.3", "L", "CC", 50.0, bits, photometric,
                         windows=win if windows else [], voi_function=voi if windows else None)
    path = tmp_path / f"{name}.dcm"
    write_mammogram(path, build_dataset(header, stored, 0), syntax)
    return str(path), tissue


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, JPEGLosslessSV1])
@pytest.mark.parametrize("voi", ["LINEAR", "SIGMOID", None])
def test_both_polarities_give_the_same_bright_tissue(tmp_path, syntax, voi):
    m2, tissue = synthetic_file(tmp_path, "m2", "MONOCHROME2", syntax, voi=voi, windows=voi is not None)
    m1, _ = synthetic_file(tmp_path, "m1", "MONOCHROME1", syntax, voi=voi, windows=voi is not None)
    a, b = decode_mammogram(m2, 10_000).image, decode_mammogram(m1, 10_000).image
    np.testing.assert_allclose(a, b, atol=1e-3)
    assert a[tissue > 0].mean() > a[tissue == 0].mean() + 0.3


def test_sigmoid_window_follows_the_standard(tmp_path):
    path, _ = synthetic_file(tmp_path, "sig", "MONOCHROME2", JPEG2000Lossless, voi="SIGMOID")
    ds = pydicom.dcmread(path)
    c, w = float(ds.WindowCenter), float(ds.WindowWidth)
    x = ds.pixel_array.astype(float)
    expected = 1 / (1 + np.exp(-4 * (x - c) / w))
    full = 1 / (1 + np.exp(-4 * (np.array([0.0, 2**ds.BitsStored - 1]) - c) / w))
    expected = (expected - full[0]) / (full[1] - full[0])
    np.testing.assert_allclose(decode_mammogram(path, 10_000).image, expected, atol=1e-4)


def test_first_of_several_windows_is_used(tmp_path):
    path, _ = synthetic_file(tmp_path, "multi", "MONOCHROME2", JPEGLosslessSV1)
    ds = pydicom.dcmread(path)
    ds.WindowCenter, ds.WindowWidth = [float(ds.WindowCenter), 10.0], [float(ds.WindowWidth), 20.0]
    ds.save_as(path)
    ds_single = pydicom.dcmread(path)
    ds_single.WindowCenter, ds_single.WindowWidth = ds.WindowCenter[0], ds.WindowWidth[0]
    single = tmp_path / "single.dcm"
    ds_single.save_as(single)
    np.testing.assert_array_equal(decode_mammogram(path, 10_000).image,
                                  decode_mammogram(single, 10_000).image)


def test_rejects_say_why(tmp_path):
    good, _ = synthetic_file(tmp_path, "good", "MONOCHROME2", JPEG2000Lossless)
    ds = pydicom.dcmread(good)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.201"  # HTJ2K: no decoder here
    ds.save_as(tmp_path / "htj2k.dcm")
    del ds.PixelData
    ds.save_as(tmp_path / "nopixels.dcm")
    data = open(good, "rb").read()
    (tmp_path / "truncated.dcm").write_bytes(data[: len(data) * 2 // 3])
    (tmp_path / "text.dcm").write_text("not a DICOM file")
    expected = {
        "htj2k.dcm": "unsupported transfer syntax",
        "nopixels.dcm": "no pixel data",
        "truncated.dcm": ("truncated file", "pixel data could not be decoded"),
        "text.dcm": "unreadable DICOM file",
    }
    for name, reason in expected.items():
        with pytest.raises(RejectedImage) as err:
            decode_mammogram(tmp_path / name, 32, reduce=False)
        assert err.value.reason in ((reason,) if isinstance(reason, str) else reason), name


def test_display_lut_edges_bit_depths_missing_sign_and_dtype(tmp_path):
    """Catches: 1-bit or 16-bit images refused / 17 bits accepted; a file without
    PixelRepresentation (unsigned by the standard's default) read as signed or crashing; the
    display values held as float64 (twice the memory of every decoded mammogram)."""
    path, _ = synthetic_file(tmp_path, "plain", "MONOCHROME2", JPEGLosslessSV1, windows=False)
    ds = pydicom.dcmread(path)
    lut, low = display_lut(ds)
    assert lut.dtype == np.float32 and low == 0 and len(lut) == 2**12
    assert decode_mammogram(path, 10_000).image.dtype == np.float32
    unsigned = ds.copy()
    del unsigned.PixelRepresentation
    lut_default, low_default = display_lut(unsigned)
    assert low_default == 0 and np.array_equal(lut_default, lut)
    for bits in (1, 16):
        ds.BitsStored = bits
        lut, _ = display_lut(ds)
        assert len(lut) == 2**bits and lut.min() == 0.0 and lut.max() == 1.0
    ds.BitsStored = 17
    with pytest.raises(RejectedImage, match="BitsStored 17"):
        display_lut(ds)


def test_a_voi_lut_beats_a_window_and_a_constant_lut_is_refused(tmp_path):
    """A file with both a VOI LUT Sequence and a window is shown through the LUT (DICOM PS3.3
    C.11.2: pydicom's prefer_lut); a LUT that maps every value to one grey level is refused
    instead of producing a NaN image."""
    ds = pydicom.dcmread(data_file("vlut_04.dcm"))
    original = decode_mammogram(data_file("vlut_04.dcm"), 10_000).image
    ds.WindowCenter, ds.WindowWidth = 100, 10
    ds.save_as(tmp_path / "both.dcm")
    np.testing.assert_allclose(decode_mammogram(tmp_path / "both.dcm", 10_000).image, original)
    ds = pydicom.dcmread(data_file("vlut_04.dcm"))
    item = ds.VOILUTSequence[0]
    n = len(np.frombuffer(item.LUTData, dtype=np.uint16)) if isinstance(item.LUTData, bytes) else len(item.LUTData)
    item.LUTData = [7] * n
    with pytest.raises(RejectedImage, match="one grey level"):
        display_lut(ds)


# --- found by the mutation pass of rsna_decode (docs/testing.md) -----------------------------


def test_decoded_says_which_path_and_decoder_gave_the_pixels(tmp_path):
    """The preprocessing log and selection.json report how each image was decoded; the default
    is the reduced JPEG 2000 decode. Bug caught: reduced decoding off by default, taken for
    r = 0 or for other syntaxes, or its decoder, photometric or syntax misreported."""
    j2k, _ = synthetic_file(tmp_path, "j2k", "MONOCHROME1", JPEG2000Lossless)
    reduced = decode_mammogram(j2k, 24)  # 96 x 80 -> r = 1 (48 x 40)
    assert reduced.reduction == 1 and reduced.reduced_decode
    assert reduced.decoder.startswith(("pillow reduce=1", "glymur"))
    assert (reduced.photometric, reduced.transfer_syntax) == ("MONOCHROME1", str(JPEG2000Lossless))
    full = decode_mammogram(j2k, 24, reduce=False)
    assert full.reduced_decode is False and full.decoder == "pydicom + 5/3 x1"
    assert (full.photometric, full.transfer_syntax) == ("MONOCHROME1", str(JPEG2000Lossless))
    assert full.image.shape == reduced.image.shape == (48, 40)
    same_size = decode_mammogram(j2k, 80)  # r = 0: nothing to reduce
    assert same_size.reduction == 0 and not same_size.reduced_decode and same_size.decoder == "pydicom"
    sv1, _ = synthetic_file(tmp_path, "sv1", "MONOCHROME2", JPEGLosslessSV1)
    lossless = decode_mammogram(sv1, 24)
    assert not lossless.reduced_decode and lossless.decoder == "dicomsdl + 5/3 x1"
    assert lossless.transfer_syntax == str(JPEGLosslessSV1) and lossless.photometric == "MONOCHROME2"
    assert decode_mammogram(sv1, 80).decoder == "dicomsdl"


@pytest.mark.parametrize("change, reason", [
    (lambda ds: setattr(ds, "PhotometricInterpretation", "RGB"), "not a greyscale image"),
    (lambda ds: delattr(ds, "PhotometricInterpretation"), "not a greyscale image"),
    (lambda ds: setattr(ds, "NumberOfFrames", 2), "multi-frame image"),
    (lambda ds: delattr(ds, "Rows"), "incomplete image header"),
    (lambda ds: delattr(ds, "BitsStored"), "incomplete image header"),
    (lambda ds: delattr(ds.file_meta, "TransferSyntaxUID"), "unreadable DICOM file"),
])
def test_headers_that_cannot_give_one_greyscale_image_are_rejected(tmp_path, change, reason):
    """Bug caught: an RGB, multi-frame or header-less file decoded as a mammogram (or a crash
    instead of a reject the selection report can count)."""
    path, _ = synthetic_file(tmp_path, "base", "MONOCHROME2", ExplicitVRLittleEndian)
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(tmp_path / "bad.dcm", enforce_file_format=False)
    with pytest.raises(RejectedImage) as err:
        read_dataset(tmp_path / "bad.dcm")
    assert err.value.reason == reason


@pytest.mark.parametrize("frames", [None, 1, "1", 0])
def test_a_single_frame_header_is_accepted(tmp_path, frames):
    """NumberOfFrames absent, 1, or 0 (no count given) all mean one frame."""
    path, _ = synthetic_file(tmp_path, "one", "MONOCHROME2", ExplicitVRLittleEndian)
    ds = pydicom.dcmread(path)
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.save_as(tmp_path / "one_frame.dcm")
    assert read_dataset(tmp_path / "one_frame.dcm").Rows == 96


def test_signed_jpeg2000_decodes_alike_reduced_and_in_full(tmp_path):
    """Signed stored values (PixelRepresentation 1, negative values present) through the reduced
    JPEG 2000 path: the LUT is indexed from the lowest stored value, as in the full decode.
    Bug caught: the reduced path indexing the LUT from 0 (negative values clipped to black)."""
    rng = np.random.default_rng(0)
    stored = np.rint(100 + rng.random((96, 80)) * 3000).astype(np.uint16)
    header = MammoHeader("1", "s", "1.2.3", "L", "CC", 50.0, 12, "MONOCHROME2",
                         windows=[(0.0, 3000.0)], voi_function="LINEAR")
    ds = build_dataset(header, stored, 0)
    signed = (stored.astype(np.int32) - 1500).astype(np.int16)
    assert signed.min() < 0
    ds.PixelRepresentation = 1
    ds.PixelData = signed.tobytes()
    ds.compress(JPEG2000Lossless, signed)
    ds.save_as(tmp_path / "signed.dcm", enforce_file_format=True)
    reduced = decode_mammogram(tmp_path / "signed.dcm", 24)
    full = decode_mammogram(tmp_path / "signed.dcm", 24, reduce=False)
    assert reduced.reduced_decode and not full.reduced_decode
    assert np.abs(reduced.image - full.image).max() < 2e-3


def test_a_failing_reduced_decode_falls_back_to_the_full_decode(tmp_path, monkeypatch, caplog):
    """Any error of the reduced JPEG 2000 path costs speed, never the image."""
    from frugalmed.rsna import decode as decode_module

    j2k_file, _ = synthetic_file(tmp_path, "j2k", "MONOCHROME2", JPEG2000Lossless)

    def broken(ds, r):
        raise RuntimeError("codestream says no")
    monkeypatch.setattr(decode_module, "_j2k_reduced", broken)
    got = decode_mammogram(j2k_file, 24)
    assert got.reduced_decode is False and got.decoder == "pydicom + 5/3 x1"
    assert "reduced JPEG 2000 decode failed" in caplog.text
