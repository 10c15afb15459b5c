"""Decode one mammogram DICOM into display intensities in [0, 1], tissue bright.

Mammograms are huge (up to ~5000 x 4000) while the study needs at most 256 px, so this decodes
no more than needed: JPEG 2000 files are decoded at a reduced resolution (1/2^r, skipping the
finest wavelet levels) through glymur/OpenJPEG, where pylibjpeg-openjpeg 2.6 has no such option;
JPEG lossless (process 14, incl. SV1) is decoded in full by dicomsdl, 2-3x faster than pydicom +
GDCM with identical stored values (pydicom stays the fallback when dicomsdl is missing or
fails); other syntaxes are decoded in full by pydicom's plugins. Full decodes are reduced by
the same 2^r with JPEG 2000's own 5/3 low-pass, so every path gives the same image.
Grey levels follow the file: modality LUT, then the first VOI LUT / window (LINEAR, SIGMOID),
else the stored bit range; MONOCHROME1 is inverted so tissue is bright in every output.
"""

from __future__ import annotations

import logging
import os
import tempfile
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
_SHM = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


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
    index = np.clip(stored.astype(np.int64) - low, 0, len(lut) - 1)
    return lut[index]


def _j2k_reduced(ds: Dataset, r: int) -> np.ndarray | None:
    """Stored values at 1/2^r resolution via glymur, or None where that path does not apply."""
    try:
        import glymur
    except ImportError:
        return None
    if glymur.version.openjpeg_version in ("0.0.0", None, ""):
        return None  # glymur without a system libopenjp2
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    fd, name = tempfile.mkstemp(suffix=".j2k", dir=_SHM)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(frame)
        jp2 = glymur.Jp2k(name)
        segments = {seg.marker_id: seg for seg in jp2.codestream.segment}
        siz, cod = segments.get("SIZ"), segments.get("COD")
        if siz is None or cod is None or len(siz.bitdepth) != 1:
            return None
        # pydicom corrects header/codestream mismatches; leave those files to it
        if siz.bitdepth[0] != int(ds.BitsStored) or bool(siz.signed[0]) != bool(ds.PixelRepresentation):
            return None
        r = min(r, int(cod.num_res))
        if r == 0:
            return None
        step = 2**r
        return np.asarray(jp2[::step, ::step])
    finally:
        os.unlink(name)


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


# JPEG 2000's reversible 5/3 (LeGall) analysis low-pass (ITU-T T.800 Annex F); wavelet_reduce
# computes it as (-1, 2, 6, 2, -1) integer sums, exactly
LEGALL_53_LOWPASS = np.array([-1.0, 2.0, 6.0, 2.0, -1.0], dtype=np.float32) / 8.0


def _lowpass_taps(x: np.ndarray, axis: int) -> list[np.ndarray]:
    """The five taps x[2j-2 .. 2j+2] along `axis` for every kept (even) sample j, edges mirrored
    about the edge sample (scipy's mode="mirror" = numpy's "reflect")."""
    kept = (x.shape[axis] + 1) // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (2, 2)
    padded = np.pad(x, pad, mode="reflect")
    taps = []
    for start in range(5):
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, start + 2 * kept, 2)
        taps.append(padded[tuple(index)])
    return taps


def _lowpass_decimate(x: np.ndarray, axis: int, work: type) -> np.ndarray:
    """8 x the 5/3 low-pass of x along `axis` at even samples only, summed in dtype `work`.

    Only the kept half of the outputs is computed (filtering everything, then dropping every
    other sample, did twice the work).
    """
    t0, t1, t2, t3, t4 = _lowpass_taps(x, axis)
    acc = np.add(t1, t3, dtype=work)  # in place from here: fewer temporaries, half the time
    acc *= 2
    acc += np.multiply(t2, 6, dtype=work)
    acc -= t0
    acc -= t4
    return acc


def wavelet_reduce(stored: np.ndarray, levels: int) -> np.ndarray:
    """Stored values at 1/2^levels resolution, as a JPEG 2000 decoder's reduced output gives them.

    Full-decoded files are reduced with the same 5/3 low-pass and even-sample decimation that
    OpenJPEG's reduced decoding amounts to, so an image looks the same whichever transfer
    syntax (and so whichever site) it came from: a box filter would blur JPEG Lossless
    images more than JPEG 2000 ones, a difference a classifier could learn.
    The first level (on the full-size image, most of the cost) runs in exact int32 arithmetic
    on the stored integers; later levels sum in float64 and round to float32 after each pass.
    Both give bit for bit the values of a float32 scipy convolve1d(mode="mirror") then [::2],
    the straightforward implementation (tests/test_rsna_decode.py checks this).
    """
    image = stored
    for level in range(levels):
        if level == 0 and stored.dtype.kind in "ui" and stored.dtype.itemsize <= 2:
            # |64 x value| <= 64 * 1.25^2 * 2^16 < 2^24: exact in int32 and in float32
            rows = _lowpass_decimate(stored, 0, np.int32)
            image = _lowpass_decimate(rows, 1, np.int32).astype(np.float32) / np.float32(64)
            continue
        rows = (_lowpass_decimate(image, 0, np.float64) / 8).astype(np.float32)
        image = (_lowpass_decimate(rows, 1, np.float64) / 8).astype(np.float32)
    return np.rint(np.asarray(image, dtype=np.float32))


def decode_mammogram(path: str | os.PathLike[str], min_size: int, reduce: bool = True) -> Decoded:
    """Decode `path` to [0, 1] display intensities at the smallest 1/2^r resolution >= min_size."""
    ds = read_dataset(path)
    syntax = ds.file_meta.TransferSyntaxUID
    lut, low = display_lut(ds)
    r = reduction_level(int(ds.Rows), int(ds.Columns), min_size)
    stored = None
    if reduce and r > 0 and syntax in J2K_SYNTAXES:
        try:
            stored = _j2k_reduced(ds, r)
        except Exception as err:  # noqa: BLE001 - any failure falls back to pydicom's full decode
            log.warning("%s: reduced JPEG 2000 decode failed (%s); decoding in full", path, err)
            stored = None
    if stored is not None:
        return Decoded(apply_lut(stored, lut, low), r, True, ds.PhotometricInterpretation, str(syntax))
    if syntax in DICOMSDL_SYNTAXES:
        try:
            stored = _stored_dicomsdl(path, ds)
        except Exception as err:  # noqa: BLE001 - any failure falls back to pydicom's decode
            log.debug("%s: dicomsdl decode failed (%s); decoding with pydicom", path, err)
            stored = None
    try:
        if stored is None:
            stored = ds.pixel_array
    except Exception as err:  # noqa: BLE001 - plugins raise many types for corrupt data
        raise RejectedImage("pixel data could not be decoded", f"{type(err).__name__}: {err}") from None
    if stored.ndim != 2:
        raise RejectedImage("not a 2-D image", f"pixel array shape {stored.shape}")
    image = apply_lut(wavelet_reduce(stored, r) if r else stored, lut, low)
    return Decoded(image, r, False, ds.PhotometricInterpretation, str(syntax))
