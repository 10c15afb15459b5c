"""Any image file a user's table may name, as grey display intensities in [0, 1].

The format is recognised by content, never by extension: DICOM ("DICM" at byte 128, or a bare
dataset without the preamble), PNG, JPEG, TIFF.

DICOM. A single-frame greyscale file goes through the RSNA decoder (frugalmed.rsna.decode:
every transfer syntax it handles, reduced-resolution JPEG 2000, modality LUT, the first VOI
LUT / window, MONOCHROME1 inverted). Colour and multi-frame files are decoded by pydicom here,
one frame only (`frame: first | middle`; `reject`, the default, rejects multi-frame files with
the reason): greyscale frames get the same LUTs (from the functional groups of enhanced
objects where the top level has none) and the same wavelet reduction as the RSNA decoder;
YBR is converted to RGB by pydicom, PALETTE COLOR through its palette.

Colour becomes luminance Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, as Pillow's "L"),
computed on the stored values; alpha is dropped.

Intensity of PNG / JPEG / TIFF: 8-bit samples are divided by 255. Samples of more than 8 bits
follow `intensity_16bit`: `stretch` (default) maps the image's own minimum..maximum to 0..1, so
12-bit data in a 16-bit container is not crushed into the lowest grey levels; `full` divides by
2^bits - 1 (absolute intensities kept, comparable between images). Floating-point TIFFs are
always stretched. TIFF MinIsWhite is inverted; 16-bit colour PNGs are read with pypng (Pillow
would keep 8 of their 16 bits).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, pixel_array
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from frugalmed.rsna.decode import (
    GREYSCALE,
    SUPPORTED_SYNTAXES,
    RejectedImage,
    apply_lut,
    decode_mammogram,
    display_lut,
    reduction_level,
    wavelet_reduce,
)

FORMATS = ("dicom", "png", "jpeg", "tiff")
FRAME_RULES = ("reject", "first", "middle")
INTENSITY_RULES = ("stretch", "full")
LUMA_BT601 = np.array([0.299, 0.587, 0.114])
COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420")
# modality / VOI attributes a greyscale frame's display LUT is built from
LUT_ATTRIBUTES = ("RescaleSlope", "RescaleIntercept", "RescaleType", "ModalityLUTSequence",
                  "WindowCenter", "WindowWidth", "VOILUTFunction", "VOILUTSequence")
FUNCTIONAL_MACROS = ("PixelValueTransformationSequence", "FrameVOILUTSequence")


@dataclass
class GreyImage:
    """Display intensities in [0, 1] (float32) and what they were made from."""

    image: np.ndarray
    image_format: str  # dicom | png | jpeg | tiff
    photometric: str  # DICOM PhotometricInterpretation, Pillow mode or TIFF photometric
    frames: int = 1
    frame: int = 0  # index of the frame used
    transfer_syntax: str = ""
    reduced_decode: bool = False


def sniff_format(path: str | os.PathLike[str]) -> str:
    """dicom | png | jpeg | tiff from the first bytes; 'unknown' otherwise, 'empty' for 0 bytes."""
    with open(path, "rb") as fh:
        head = fh.read(132)
    if not head:
        return "empty"
    if head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    return "unknown"


def select_frame(frames: int, rule: str) -> int:
    """The frame index to use, or RejectedImage for a multi-frame file under `frame: reject`."""
    if frames <= 1:
        return 0
    if rule == "first":
        return 0
    if rule == "middle":
        return frames // 2
    raise RejectedImage("multi-frame image", f"{frames} frames; set the dataset's `frame` to "
                        "first or middle to use one of them")


def read_image(path: str | os.PathLike[str], *, min_size: int, frame: str = "reject",
               intensity_16bit: str = "stretch", j2k_reduce: bool = True) -> GreyImage:
    """The grey image in `path` at no less than `min_size` px where reduced decoding applies.

    Raises RejectedImage (reason + detail) for anything that cannot give an image.
    """
    fmt = sniff_format(path)
    if fmt == "empty":
        raise RejectedImage("empty file")
    if fmt in ("dicom", "unknown"):
        return read_dicom(path, min_size=min_size, frame=frame, j2k_reduce=j2k_reduce,
                          preamble=fmt == "dicom")
    try:
        if fmt == "tiff":
            array, photometric, frames, index, bits = _tiff(path, frame)
        elif fmt == "png" and _png_16bit_colour(path):
            array, photometric, frames, index, bits = _png16(path)
        else:
            array, photometric, frames, index, bits = _pillow(path, fmt, frame)
    except RejectedImage:
        raise
    except Exception as err:  # noqa: BLE001 - Pillow/tifffile/pypng raise many types for bad files
        raise RejectedImage("unreadable image file", f"{fmt}: {type(err).__name__}: {err}") from None
    image = to_unit_grey(array, bits, intensity_16bit, invert=photometric == "MINISWHITE")
    return GreyImage(image, fmt, photometric, frames, index)


# --------------------------------------------------------------------------- DICOM


def read_dicom(path: str | os.PathLike[str], *, min_size: int, frame: str = "reject",
               j2k_reduce: bool = True, preamble: bool = True) -> GreyImage:
    """A DICOM file (with its 128-byte preamble, or a bare dataset when `preamble` is False)."""
    ds = _dataset(path, preamble)
    syntax = ds.file_meta.TransferSyntaxUID
    photometric = str(ds.get("PhotometricInterpretation", ""))
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    enhanced = "SharedFunctionalGroupsSequence" in ds or "PerFrameFunctionalGroupsSequence" in ds
    if frames == 1 and photometric in GREYSCALE and preamble and not enhanced:
        decoded = decode_mammogram(path, min_size, reduce=j2k_reduce)  # the RSNA path, unchanged
        return GreyImage(decoded.image, "dicom", photometric, 1, 0, str(syntax),
                         decoded.reduced_decode)
    index = select_frame(frames, frame)
    if photometric not in (*GREYSCALE, *COLOUR, "PALETTE COLOR"):
        raise RejectedImage("unsupported photometric interpretation", repr(photometric))
    try:
        stored = pixel_array(ds, index=index if frames > 1 else None)
    except Exception as err:  # noqa: BLE001 - plugins raise many types for corrupt data
        raise RejectedImage("pixel data could not be decoded", f"{type(err).__name__}: {err}") from None
    if photometric in GREYSCALE:
        if stored.ndim != 2:
            raise RejectedImage("not a 2-D image", f"pixel array shape {stored.shape}")
        lut, low = display_lut(lut_dataset(ds, index))
        r = reduction_level(int(ds.Rows), int(ds.Columns), min_size)
        image = apply_lut(wavelet_reduce(stored, r) if r else stored, lut, low)
    elif photometric == "PALETTE COLOR":
        try:
            rgb = apply_color_lut(stored, ds)
        except Exception as err:  # noqa: BLE001 - a broken palette
            raise RejectedImage("invalid palette", f"{type(err).__name__}: {err}") from None
        bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
        image = to_unit_grey(rgb, bits, "full")
    else:  # RGB, or YBR which pydicom has converted to RGB
        if stored.ndim != 3 or stored.shape[-1] != 3:
            raise RejectedImage("not a colour image", f"pixel array shape {stored.shape}")
        image = to_unit_grey(stored, int(ds.BitsStored), "full")
    return GreyImage(image.astype(np.float32), "dicom", photometric, frames, index, str(syntax))


def _dataset(path: str | os.PathLike[str], preamble: bool) -> Dataset:
    """Read and check a DICOM dataset (pixel data not decoded); RejectedImage if unusable."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(path, force=not preamble, defer_size="1 MB")
    except Exception as err:  # noqa: BLE001 - pydicom raises many types for corrupt files
        if not preamble or isinstance(err, InvalidDicomError):
            raise RejectedImage("not an image file", "content is neither DICOM, PNG, JPEG nor TIFF") from None
        raise RejectedImage("unreadable DICOM file", f"{type(err).__name__}: {err}") from None
    for warning in caught:  # pydicom reads a cut-off file "successfully", with a warning
        if "end of file" in str(warning.message).lower():
            raise RejectedImage("truncated file", str(warning.message))
    if "PixelData" not in ds:
        if not preamble:  # whatever pydicom made of it, nothing says it is DICOM
            raise RejectedImage("not an image file", "content is neither DICOM, PNG, JPEG nor TIFF")
        raise RejectedImage("no pixel data")
    meta = ds.file_meta
    if "TransferSyntaxUID" not in meta:  # a bare dataset: its encoding is what pydicom read
        implicit, little = ds.original_encoding
        meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                                  ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    if meta.TransferSyntaxUID not in SUPPORTED_SYNTAXES:
        syntax = meta.TransferSyntaxUID
        raise RejectedImage("unsupported transfer syntax", f"{syntax} ({syntax.name})")
    for key in ("Rows", "Columns", "BitsStored", "PhotometricInterpretation"):
        if key not in ds:
            raise RejectedImage("incomplete image header", f"no {key}")
    return ds


def lut_dataset(ds: Dataset, index: int) -> Dataset:
    """What the display LUT of frame `index` needs, with functional-group values applied.

    Enhanced (multi-frame) objects carry rescale and window per frame or shared in functional
    groups instead of at the top level; per-frame values override shared ones, which override
    the top level.
    """
    out = Dataset()
    for key in ("BitsStored", "PixelRepresentation", "PhotometricInterpretation", *LUT_ATTRIBUTES):
        if key in ds:
            setattr(out, key, ds[key].value)
    items = []
    if ds.get("SharedFunctionalGroupsSequence"):
        items.append(ds.SharedFunctionalGroupsSequence[0])
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and index < len(per_frame):
        items.append(per_frame[index])
    for item in items:
        for macro in FUNCTIONAL_MACROS:
            if item.get(macro):
                for key in LUT_ATTRIBUTES:
                    if key in item[macro][0]:
                        setattr(out, key, item[macro][0][key].value)
    return out


# --------------------------------------------------------------------------- PNG, JPEG, TIFF


def _pillow(path: str | os.PathLike[str], fmt: str, rule: str) -> tuple[np.ndarray, str, int, int, int]:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        frames = int(getattr(im, "n_frames", 1))
        index = select_frame(frames, rule)
        im.seek(index)
        if fmt == "jpeg":
            im = ImageOps.exif_transpose(im)  # the orientation a viewer shows
        mode = im.mode
        if mode in ("P", "PA"):
            im = im.convert("RGBA")
        elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            im = im.convert("RGB")
        elif mode == "1":
            im = im.convert("L")
        array = np.asarray(im)
    if mode.startswith("I;16"):
        bits = 16
    elif mode == "I":  # 32-bit integer; Pillow's 16-bit PNGs may open as "I"
        bits = 16 if fmt == "png" else 32
    elif mode == "F":
        bits = 0  # floating point: always stretched
    else:
        bits = 8
    return array, mode, frames, index, bits


def _png_16bit_colour(path: str | os.PathLike[str]) -> bool:
    """True for a 16-bit PNG with colour or alpha (IHDR bit depth 16, colour type 2, 4 or 6)."""
    with open(path, "rb") as fh:
        head = fh.read(29)
    return len(head) == 29 and head[24] == 16 and head[25] in (2, 4, 6)


def _png16(path: str | os.PathLike[str]) -> tuple[np.ndarray, str, int, int, int]:
    import png  # pypng: Pillow reads 16-bit colour PNGs at 8 bits per sample

    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    array = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    array = array.reshape(height, width, info["planes"])
    mode = ("LA" if info["greyscale"] else "RGBA" if info["alpha"] else "RGB") + ";16"
    return array, mode, 1, 0, int(info["bitdepth"])


def _tiff(path: str | os.PathLike[str], rule: str) -> tuple[np.ndarray, str, int, int, int]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        pages = tif.pages
        frames = len(pages)
        index = select_frame(frames, rule)
        page = pages[index]
        array = page.asarray()
        photometric = page.photometric.name if page.photometric is not None else ""
        bits = int(page.bitspersample)
        if page.axes.startswith("S") and array.ndim == 3:  # planar: samples first
            array = np.moveaxis(array, 0, -1)
        if photometric == "PALETTE":
            colormap = np.asarray(page.colormap)  # (3, 2**bits), 16-bit entries
            array, bits = colormap[:, array].transpose(1, 2, 0), 16
        elif photometric not in ("MINISBLACK", "MINISWHITE", "RGB"):
            raise RejectedImage("unsupported TIFF photometric", photometric)
    if array.dtype.kind == "f":
        bits = 0
    return array, photometric, frames, index, bits


# --------------------------------------------------------------------------- intensities


def luminance(array: np.ndarray) -> np.ndarray:
    """Grey values of an (H, W), (H, W, 2|3|4) array: alpha dropped, colour -> BT.601 luma."""
    array = np.asarray(array)
    if array.ndim == 2:
        return array.astype(np.float64)
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise RejectedImage("unsupported image layout", f"array shape {array.shape}")
    if array.shape[-1] <= 2:  # grey (+ alpha)
        return array[..., 0].astype(np.float64)
    return array[..., :3].astype(np.float64) @ LUMA_BT601


def to_unit_grey(array: np.ndarray, bits: int, intensity_16bit: str, invert: bool = False) -> np.ndarray:
    """[0, 1] grey of stored samples: /255 for 8 bits; `full` (/ 2^bits - 1) or `stretch`
    (the image's min..max) beyond 8 bits; always stretched for floats (bits 0)."""
    if array.dtype == bool:
        array, bits = array.astype(np.uint8), 1
    grey = luminance(array)
    if 0 < bits <= 8 or (bits > 8 and intensity_16bit == "full"):
        grey = grey / float(2**bits - 1)
    else:
        lo, hi = float(np.min(grey)), float(np.max(grey))
        grey = (grey - lo) / (hi - lo) if hi > lo else np.zeros_like(grey)
    grey = np.clip(grey, 0.0, 1.0)
    return (1.0 - grey if invert else grey).astype(np.float32)
