"""Reading a table dataset's files: format by content, DICOM LUTs and photometrics, one frame of
a multi-frame file, colour -> luminance, 8/16-bit PNG and TIFF intensities, bad files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from frugalmed.rsna.decode import RejectedImage, apply_lut, decode_mammogram, display_lut
from frugalmed.table.images import LUMA_BT601, read_image, sniff_format, to_unit_grey
from frugalmed.table.preprocess import TableSpec, standardise_table, to_square

warnings.filterwarnings("ignore", category=UserWarning, module="pydicom")


def pdd(name: str) -> str:
    return str(get_testdata_file(name))


def _write_dicom_variant(src: str, dest: Path, **changes) -> Path:
    ds = pydicom.dcmread(src)
    for key, value in changes.items():
        setattr(ds, key, value)
    ds.save_as(dest)
    return dest


@pytest.fixture(scope="module")
def rasters(tmp_path_factory) -> Path:
    from table_fixtures import write_rasters

    folder = tmp_path_factory.mktemp("rasters")
    write_rasters(folder)
    return folder


def test_format_is_recognised_by_content_not_extension(tmp_path: Path, rasters: Path) -> None:
    for name, fmt in [("grey8.png", "png"), ("photo.jpg", "jpeg"), ("grey16.tif", "tiff")]:
        disguised = tmp_path / f"{name}.dat"
        disguised.write_bytes((rasters / name).read_bytes())
        assert sniff_format(disguised) == fmt
    assert sniff_format(pdd("CT_small.dcm")) == "dicom"
    (tmp_path / "empty").write_bytes(b"")
    assert sniff_format(tmp_path / "empty") == "empty"


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "RG3_J2KI.dcm",
                                  "JPGLosslessP14SV1_1s_1f_8b.dcm"])
def test_single_frame_greyscale_dicom_is_the_rsna_decoders_output(name: str) -> None:
    got = read_image(pdd(name), min_size=32)
    expected = decode_mammogram(pdd(name), 32)
    np.testing.assert_array_equal(got.image, expected.image)
    assert got.image_format == "dicom" and got.frames == 1


def test_monochrome1_is_inverted_in_both_decoding_paths(tmp_path: Path) -> None:
    """Catches a MONOCHROME1 file shown with tissue dark (single- and multi-frame paths)."""
    for name, frame in (("MR_small.dcm", "reject"), ("emri_small.dcm", "middle")):
        m2 = _write_dicom_variant(pdd(name), tmp_path / f"m2_{name}",
                                  PhotometricInterpretation="MONOCHROME2")
        m1 = _write_dicom_variant(pdd(name), tmp_path / f"m1_{name}",
                                  PhotometricInterpretation="MONOCHROME1")
        a = read_image(m2, min_size=64, frame=frame).image
        b = read_image(m1, min_size=64, frame=frame).image
        np.testing.assert_allclose(a + b, 1.0, atol=1e-6)


def test_multi_frame_is_rejected_by_default_and_one_frame_used_when_asked() -> None:
    path = pdd("emri_small.dcm")  # 10 frames of 64 x 64 MR, no window
    with pytest.raises(RejectedImage) as err:
        read_image(path, min_size=64)
    assert err.value.reason == "multi-frame image" and "10 frames" in err.value.detail
    ds = pydicom.dcmread(path)
    lut, low = display_lut(ds)
    for rule, index in (("first", 0), ("middle", 5)):
        got = read_image(path, min_size=64, frame=rule)
        assert (got.frames, got.frame) == (10, index)
        np.testing.assert_array_equal(got.image, apply_lut(ds.pixel_array[index], lut, low))


def test_enhanced_multi_frame_takes_its_window_from_the_functional_groups(tmp_path: Path) -> None:
    """Catches a LUT built from the (absent) top-level window of an enhanced object."""
    ds = pydicom.dcmread(pdd("eCT_Supplemental.dcm"))
    item = ds.SharedFunctionalGroupsSequence[0]
    voi = item.FrameVOILUTSequence[0] if "FrameVOILUTSequence" in item else None
    got = read_image(pdd("eCT_Supplemental.dcm"), min_size=512, frame="first").image
    if voi is None:
        pytest.skip("this pydicom-data file has no shared window")
    centre, width = float(voi.WindowCenter), float(voi.WindowWidth)
    assert "WindowCenter" not in ds
    hu = ds.pixel_array[0] * float(ds.SharedFunctionalGroupsSequence[0]
                                   .PixelValueTransformationSequence[0].RescaleSlope)
    hu += float(ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0].RescaleIntercept)
    inside = (hu > centre - width / 2 + 1) & (hu < centre + width / 2 - 1)
    assert inside.any()
    assert (got[hu < centre - width / 2 - 1] == 0).all() and (got[hu > centre + width / 2 + 1] == 1).all()


def test_rgb_dicom_becomes_bt601_luminance() -> None:
    got = read_image(pdd("SC_rgb.dcm"), min_size=32)
    rgb = pydicom.dcmread(pdd("SC_rgb.dcm")).pixel_array.astype(np.float64)
    np.testing.assert_allclose(got.image, (rgb @ LUMA_BT601) / 255, atol=1e-6)
    ybr = read_image(pdd("SC_ybr_full_uncompressed.dcm"), min_size=32).image
    assert np.abs(ybr - got.image).max() < 3 / 255  # the same picture stored as YBR_FULL


def test_palette_colour_dicom_goes_through_its_palette() -> None:
    got = read_image(pdd("OBXXXX1A.dcm"), min_size=32)
    assert got.photometric == "PALETTE COLOR" and got.image.shape == (600, 800)
    assert 0 <= got.image.min() < got.image.max() <= 1


def test_dicom_without_preamble_is_recognised(tmp_path: Path) -> None:
    ds = pydicom.dcmread(pdd("MR_small.dcm"))
    bare = tmp_path / "bare"
    with open(bare, "wb") as fh:
        ds.save_as(fh, enforce_file_format=False, implicit_vr=False, little_endian=True)
    raw = bare.read_bytes()
    if raw[128:132] == b"DICM":  # this pydicom wrote a preamble anyway: strip it
        bare.write_bytes(raw[132:])
    assert sniff_format(bare) == "unknown"
    got = read_image(bare, min_size=64)
    np.testing.assert_allclose(got.image, read_image(pdd("MR_small.dcm"), min_size=64).image)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty file"), (b"just some text\n" * 20, "not an image file"),
     ("truncated", "pixel data could not be decoded"), ("no_pixels", "no pixel data")],
)
def test_bad_files_are_rejected_with_a_reason(tmp_path: Path, content, reason: str) -> None:
    path = tmp_path / "f"
    if content == "truncated":
        data = Path(pdd("MR_small.dcm")).read_bytes()
        path.write_bytes(data[:-3000])
    elif content == "no_pixels":
        path = Path(pdd("rtplan.dcm"))
    else:
        path.write_bytes(content)
    with pytest.raises(RejectedImage) as err:
        read_image(path, min_size=32)
    assert err.value.reason == reason


def test_png_jpeg_tiff_intensities(rasters: Path) -> None:
    from PIL import Image

    grey8 = read_image(rasters / "grey8.png", min_size=32)
    np.testing.assert_allclose(grey8.image, np.asarray(Image.open(rasters / "grey8.png")) / 255,
                               atol=1e-7)  # float32
    rgb8 = read_image(rasters / "rgb8.png", min_size=32).image
    pil_l = np.asarray(Image.open(rasters / "rgb8.png").convert("L")) / 255
    assert np.abs(rgb8 - pil_l).max() <= 1 / 255 + 1e-6  # BT.601, as Pillow's "L"
    stretched = read_image(rasters / "grey16.png", min_size=32).image  # 12 bits in a 16-bit PNG
    assert stretched.min() == 0 and stretched.max() == 1
    full = read_image(rasters / "grey16.png", min_size=32, intensity_16bit="full").image
    stored = np.asarray(Image.open(rasters / "grey16.png")).astype(np.float64)
    assert stored.max() < 4096  # the fixture's 12-bit data
    np.testing.assert_allclose(full, stored / 65535, atol=1e-7)
    np.testing.assert_allclose(stretched, full / full.max(), atol=1e-6)
    rgb16 = read_image(rasters / "rgb16.png", min_size=32, intensity_16bit="full")
    assert rgb16.photometric == "RGB;16"
    np.testing.assert_allclose(rgb16.image, rgb8, atol=2 / 255)  # all 16 bits read, same picture
    tif = read_image(rasters / "grey16.tif", min_size=32, intensity_16bit="full").image
    np.testing.assert_allclose(tif, grey8.image, atol=1 / 255)
    jpg = read_image(rasters / "photo.jpg", min_size=32).image
    assert np.abs(jpg - rgb8).mean() < 4 / 255  # lossy, same picture


def test_tiff_minisWhite_is_inverted_and_multipage_follows_frame(tmp_path: Path) -> None:
    import tifffile

    data = np.arange(3 * 8 * 8, dtype=np.uint8).reshape(3, 8, 8)
    tifffile.imwrite(tmp_path / "w.tif", data[0], photometric="miniswhite")
    np.testing.assert_allclose(read_image(tmp_path / "w.tif", min_size=8).image, 1 - data[0] / 255)
    tifffile.imwrite(tmp_path / "pages.tif", data, photometric="minisblack", metadata=None)
    with pytest.raises(RejectedImage, match="multi-frame"):
        read_image(tmp_path / "pages.tif", min_size=8)
    middle = read_image(tmp_path / "pages.tif", min_size=8, frame="middle")
    np.testing.assert_allclose(middle.image, data[1] / 255)


def test_jpeg_exif_orientation_is_applied(tmp_path: Path) -> None:
    from PIL import Image

    image = Image.fromarray(np.zeros((20, 40), np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees to display
    image.save(tmp_path / "r.jpg", exif=exif)
    assert read_image(tmp_path / "r.jpg", min_size=8).image.shape == (40, 20)


def test_to_unit_grey_rules() -> None:
    assert to_unit_grey(np.array([[0, 255]], np.uint8), 8, "stretch").tolist() == [[0.0, 1.0]]
    assert to_unit_grey(np.array([[100, 300]], np.uint16), 16, "stretch").tolist() == [[0.0, 1.0]]
    np.testing.assert_allclose(to_unit_grey(np.array([[0, 65535]], np.uint16), 16, "full"), [[0, 1]])
    flat = to_unit_grey(np.full((2, 2), 7, np.uint16), 16, "stretch")
    assert (flat == 0).all()


@pytest.mark.parametrize("rule, shape", [("pad", (10, 10)), ("crop", (4, 4)), ("stretch", (4, 10))])
def test_square_rules(rule: str, shape) -> None:
    image = np.ones((4, 10), np.float32)
    out = to_square(image, rule)
    assert out.shape == shape
    if rule == "pad":
        assert out[3:7].min() == 1 and out[:3].max() == 0 and out[7:].max() == 0  # centred
    spec = TableSpec(image_size=8, scales=(1, 2), square=rule)
    images = standardise_table(image, spec)
    assert images[1].shape == (8, 8) and images[2].shape == (4, 4) and images[1].dtype == np.uint8
