"""Decode one mammogram DICOM into display intensities in [0, 1], tissue bright.

Mammograms are huge (up to ~5000 x 4000) while the study needs at most 256 px, so this decodes
no more than needed: JPEG 2000 files are decoded at a reduced resolution (1/2^r, skipping the
finest wavelet levels) through OpenJPEG -- Pillow's own copy first, so it works after
`pip install` alone, else glymur with a system libopenjp2 (frugalmed.rsna.j2k); pydicom's
plugins (pylibjpeg-openjpeg 2.6) have no such option. JPEG lossless (process 14, incl. SV1) is
decoded in full by dicomsdl, faster than pydicom + GDCM (benchmarks/README.md, latest results)
with identical stored values
(pydicom stays the fallback when dicomsdl is missing or fails); other syntaxes are decoded in
full by pydicom's plugins. Full decodes are reduced by the same 2^r with JPEG 2000's own 5/3
low-pass (frugalmed.rsna.wavelet), so every path gives the same image.
Grey levels follow the file: modality LUT, then the first VOI LUT / window (LINEAR, SIGMOID),
else the stored bit range; MONOCHROME1 is inverted so tissue is bright in every output. All of
it is one lookup table over the stored values, applied to the reduced image only.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from frugalmed.rsna import j2k
from frugalmed.rsna.wavelet import LEGALL_53_LOWPASS, wavelet_reduce

__all__ = ["Decoded", "RejectedImage", "LEGALL_53_LOWPASS", "apply_lut", "decode_mammogram", "display_lut",
           "read_dataset", "reduction_level", "wavelet_reduce"]

log = logging.getLogger(__name__)

SUPPORTED_SYNTAXES = frozenset({
    ImplicitVRLittleEndian, ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian, JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1,
    JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless, JPEG2000, RLELossless,
})
J2K_SYNTAXES = frozenset({JPEG2000Lossless, JPEG2000})
# measured exact against pydicom and faster (benchmarks/bench_decoders.py); others stay with pydicom
DICOMSDL_SYNTAXES = frozenset({JPEGLossless, JPEGLosslessSV1})
GREYSCALE = ("MONOCHROME1", "MONOCHROME2")


class RejectedImage(Exception):
    """An input that cannot be used; `reason` is a short category for rejects.csv summaries."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass
class Decoded:
    """Display intensities in [0, 1] (tissue bright) and how they were obtained."""

    image: np.ndarray  # float32 (rows / 2^r, cols / 2^r)
    reduction: int  # r: the image is 1 / 2^r of the stored resolution
    reduced_decode: bool  # True if JPEG 2000 was decoded at reduced resolution
    photometric: str
    transfer_syntax: str
    decoder: str = ""  # which library decoded the pixels, e.g. "pillow reduce=3", "dicomsdl"


def reduction_level(rows: int, cols: int, min_size: int) -> int:
    """Largest r such that both sides divided by 2^r still reach min_size (0 if none does)."""
    r = 0
    while min(rows, cols) / 2 ** (r + 1) >= min_size:
        r += 1
    return r


def read_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read and check a DICOM file; RejectedImage if it cannot give a greyscale image."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError) as err:
        raise RejectedImage("unreadable DICOM file", f"{type(err).__name__}: {err}") from None
    for warning in caught:  # pydicom reads a cut-off file "successfully", with a warning
        if "end of file" in str(warning.message).lower():
            raise RejectedImage("truncated file", str(warning.message))
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None:
        raise RejectedImage("unreadable DICOM file", "no transfer syntax in the file meta")
    if "PixelData" not in ds:
        raise RejectedImage("no pixel data")
    if syntax not in SUPPORTED_SYNTAXES:
        raise RejectedImage("unsupported transfer syntax", f"{syntax} ({syntax.name})")
    photometric = ds.get("PhotometricInterpretation", "")
    if photometric not in GREYSCALE:
        raise RejectedImage("not a greyscale image", f"PhotometricInterpretation {photometric!r}")
    if int(ds.get("NumberOfFrames", 1) or 1) != 1:
        raise RejectedImage("multi-frame image", f"NumberOfFrames {ds.NumberOfFrames}")
    for key in ("Rows", "Columns", "BitsStored"):
        if key not in ds:
            raise RejectedImage("incomplete image header", f"no {key}")
    return ds


def display_lut(ds: Dataset) -> tuple[np.ndarray, int]:
    """Map every possible stored value to [0, 1] display intensity (tissue bright).

    The modality LUT and the first VOI LUT/window are evaluated once over the whole stored
    range, which gives both the output range to normalise by and a lookup table that is far
    cheaper than applying them to millions of pixels. Returns (lut, lowest stored value).
    """
    bits = int(ds.BitsStored)
    if not 1 <= bits <= 16:
        raise RejectedImage("unsupported bit depth", f"BitsStored {bits}")
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    low = -(2 ** (bits - 1)) if signed else 0
    values = np.arange(low, low + 2**bits, dtype=np.int32 if signed else np.uint32)
    try:
        out = apply_voi_lut(apply_modality_lut(values, ds), ds, index=0, prefer_lut=True)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
        raise RejectedImage("invalid LUT or window", f"{type(err).__name__}: {err}") from None
    out = np.asarray(out, dtype=np.float64)
    lo, hi = float(out.min()), float(out.max())
    if not hi > lo:
        raise RejectedImage("invalid LUT or window", "it maps every stored value to one grey level")
    lut = (out - lo) / (hi - lo)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        lut = 1.0 - lut
    return lut.astype(np.float32), low


def apply_lut(stored: np.ndarray, lut: np.ndarray, low: int) -> np.ndarray:
    """Display intensities of stored values; out-of-range values (junk high bits) are clipped."""
    index = stored.astype(np.intp)  # reduced images: small, and integer-valued already
    if low:
        index -= low
    return lut.take(index, mode="clip")


_WARNED: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    """A warning per process, not per file: the same cause would repeat for thousands of files."""
    if key not in _WARNED:
        _WARNED.add(key)
        log.warning(message)


def _j2k_reduced(ds: Dataset, r: int) -> tuple[np.ndarray, str] | None:
    """Stored values at 1/2^r resolution and the decoder's name, or None where no reduced path
    applies (then the caller decodes in full)."""
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    header = j2k.read_header(frame)
    if header is None or header.components != 1:
        return None
    # pydicom corrects header/codestream mismatches (sign, more bits than BitsStored); leave
    # those files to it. Fewer bits than BitsStored decode to the same values either way.
    if header.precision > int(ds.BitsStored) or header.signed != bool(ds.get("PixelRepresentation", 0)):
        return None
    if (header.rows, header.cols) != (int(ds.Rows), int(ds.Columns)):
        return None
    levels = min(r, header.levels)  # a codestream cannot skip more levels than it has
    if levels == 0:
        return None
    stored, name = None, ""
    if j2k.pillow_available():
        try:
            stored, name = j2k.decode_pillow(frame, header, levels), f"pillow reduce={levels}"
        except Exception as err:  # noqa: BLE001 - try the next decoder
            _warn_once("pillow", f"Pillow's reduced JPEG 2000 decoding failed ({type(err).__name__}: {err}); "
                       "such files go to glymur (system libopenjp2) or a full decode; selection.json's "
                       "reduced_resolution_decodes counts the reduced ones")
    if stored is None and j2k.glymur_available():
        stored, name = j2k.decode_glymur(frame, levels), f"glymur reduce={levels}"
    if stored is None:
        return None
    if levels < r:
        stored, name = wavelet_reduce(stored, r - levels), f"{name} + 5/3 x{r - levels}"
    return stored, name


def _stored_dicomsdl(path: str | os.PathLike[str], ds: Dataset) -> np.ndarray | None:
    """Stored values decoded by dicomsdl, or None where it is missing or disagrees with the header.

    Only the pixels come from dicomsdl: every check and all LUT metadata stay with pydicom's
    Dataset, so rejects and grey levels are the same whichever decoder ran.
    """
    try:
        import dicomsdl
    except ImportError:
        return None
    stored = np.asarray(dicomsdl.open(str(path)).pixelData(storedvalue=True))
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    if stored.shape != (int(ds.Rows), int(ds.Columns)) or stored.dtype.kind != ("i" if signed else "u"):
        return None  # leave unusual files to pydicom, which corrects header/codestream mismatches
    return stored


def decode_mammogram(path: str | os.PathLike[str], min_size: int, reduce: bool = True) -> Decoded:
    """Decode `path` to [0, 1] display intensities at the smallest 1/2^r resolution >= min_size."""
    ds = read_dataset(path)
    syntax = ds.file_meta.TransferSyntaxUID
    lut, low = display_lut(ds)
    r = reduction_level(int(ds.Rows), int(ds.Columns), min_size)
    photometric = ds.PhotometricInterpretation
    if reduce and r > 0 and syntax in J2K_SYNTAXES:
        try:
            reduced = _j2k_reduced(ds, r)
        except Exception as err:  # noqa: BLE001 - any failure falls back to pydicom's full decode
            log.warning("%s: reduced JPEG 2000 decode failed (%s); decoding in full", path, err)
            reduced = None
        if reduced is not None:
            stored, decoder = reduced
            return Decoded(apply_lut(stored, lut, low), r, True, photometric, str(syntax), decoder)
    stored, decoder = None, "pydicom"
    if syntax in DICOMSDL_SYNTAXES:
        try:
            stored = _stored_dicomsdl(path, ds)
        except Exception as err:  # noqa: BLE001 - any failure falls back to pydicom's decode
            log.debug("%s: dicomsdl decode failed (%s); decoding with pydicom", path, err)
            stored = None
        if stored is not None:
            decoder = "dicomsdl"
    try:
        if stored is None:
            stored = ds.pixel_array
    except Exception as err:  # noqa: BLE001 - plugins raise many types for corrupt data
        raise RejectedImage("pixel data could not be decoded", f"{type(err).__name__}: {err}") from None
    if stored.ndim != 2:
        raise RejectedImage("not a 2-D image", f"pixel array shape {stored.shape}")
    image = apply_lut(wavelet_reduce(stored, r) if r else stored, lut, low)
    return Decoded(image, r, False, photometric, str(syntax), decoder + (f" + 5/3 x{r}" if r else ""))
