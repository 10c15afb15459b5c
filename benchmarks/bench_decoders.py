"""The DICOM decoder candidates compared per transfer syntax, each from file on disk to array.

Every candidate reads the file itself, so file parsing is part of what it is timed on, as it is
in preprocessing. Candidates whose library is missing are reported as unavailable, not dropped.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.encaps import generate_frames
from pydicom.pixels import pixel_array

Decode = Callable[[Path], np.ndarray]


@dataclass(frozen=True)
class Candidate:
    """One way to decode: `reduce` > 0 decodes only the resolution level 2**-reduce."""

    name: str
    decode: Decode
    reduce: int = 0


def _pydicom_plugin(plugin: str) -> Decode:
    def decode(path: Path) -> np.ndarray:
        return pixel_array(path, decoding_plugin=plugin)

    return decode


def _codestream(path: Path) -> tuple[bytes, pydicom.Dataset]:
    ds = pydicom.dcmread(path)
    return next(generate_frames(ds.PixelData, number_of_frames=1)), ds


def _pillow_j2k(reduce: int) -> Decode:
    """Pillow's bundled OpenJPEG; `reduce` is its own reduced-resolution switch."""

    def decode(path: Path) -> np.ndarray:
        from PIL import Image

        stream, ds = _codestream(path)
        image = Image.open(io.BytesIO(stream))
        image.reduce = reduce
        arr = np.asarray(image)
        # Pillow scales 9-16 bit samples up to the full 16 bits; undo it.
        return arr >> (16 - int(ds.BitsStored)) if arr.dtype == np.uint16 else arr

    return decode


def _glymur_j2k(reduce: int) -> Decode:
    """OpenJPEG through glymur (system libopenjp2). glymur reads files only, so the codestream
    goes through a file in memory-backed /dev/shm; that write is part of the time."""

    def decode(path: Path) -> np.ndarray:
        import glymur

        stream, _ = _codestream(path)
        tmpdir = "/dev/shm" if os.path.isdir("/dev/shm") else None
        with tempfile.NamedTemporaryFile(suffix=".j2k", dir=tmpdir) as fh:
            fh.write(stream)
            fh.flush()
            jp2 = glymur.Jp2k(fh.name)
            step = 2**reduce
            return jp2[::step, ::step] if reduce else jp2[:]

    return decode


def _dicomsdl(path: Path) -> np.ndarray:
    import dicomsdl

    return dicomsdl.open(str(path)).pixelData(storedvalue=True)


def available(module: str) -> bool:
    try:
        __import__(module)
    except Exception:  # noqa: BLE001 - a broken install counts as missing
        return False
    if module == "glymur":
        import glymur

        return bool(glymur.version.openjpeg_version) and glymur.version.openjpeg_version != "0.0.0"
    return True


def candidates(syntax: str, reduce: int) -> tuple[list[Candidate], list[str]]:
    """Decoder candidates of one syntax ('j2k' | 'jpegls1'), and the names of missing ones."""
    wanted: list[tuple[str, str, Callable[[], Candidate]]] = [
        ("pydicom+pylibjpeg", "pylibjpeg", lambda: Candidate("pydicom+pylibjpeg", _pydicom_plugin("pylibjpeg"))),
        ("pydicom+gdcm", "gdcm", lambda: Candidate("pydicom+gdcm", _pydicom_plugin("gdcm"))),
        ("dicomsdl", "dicomsdl", lambda: Candidate("dicomsdl", _dicomsdl)),
    ]
    if syntax == "j2k":
        wanted += [
            ("pillow", "PIL", lambda: Candidate("pillow", _pillow_j2k(0))),
            ("glymur", "glymur", lambda: Candidate("glymur", _glymur_j2k(0))),
            (f"pillow reduce={reduce}", "PIL", lambda: Candidate(f"pillow reduce={reduce}", _pillow_j2k(reduce), reduce)),
            (f"glymur reduce={reduce}", "glymur", lambda: Candidate(f"glymur reduce={reduce}", _glymur_j2k(reduce), reduce)),
        ]
    found, missing = [], []
    for name, module, make in wanted:
        (found.append(make()) if available(module) else missing.append(name))
    return found, missing


def reduce_level(rows: int, cols: int, target: int) -> int:
    """The coarsest JPEG 2000 resolution level whose image is still at least `target` both ways."""
    level = 0
    while math.ceil(rows / 2 ** (level + 1)) >= target and math.ceil(cols / 2 ** (level + 1)) >= target:
        level += 1
    return level


def check(candidate: Candidate, path: Path, reference: np.ndarray) -> str:
    """'exact' when pixels equal the reference; for reduced decodes, agreement with the reference's
    2**r block means (the wavelet's low band is close to, not equal to, a block mean)."""
    try:
        out = np.asarray(candidate.decode(path))
    except Exception as err:  # noqa: BLE001 - a failing candidate is a result to report
        return f"FAILED: {type(err).__name__}: {err}"[:120]
    if not candidate.reduce:
        if out.shape != reference.shape:
            return f"WRONG shape {out.shape} != {reference.shape}"
        diff = int(np.abs(out.astype(np.int64) - reference.astype(np.int64)).max())
        return "exact" if diff == 0 else f"WRONG (max abs diff {diff})"
    step = 2**candidate.reduce
    rows, cols = (s // step * step for s in reference.shape)
    blocks = reference[:rows, :cols].reshape(rows // step, step, cols // step, step).mean(axis=(1, 3))
    part = out[: blocks.shape[0], : blocks.shape[1]].astype(np.float64)
    want = tuple(math.ceil(s / step) for s in reference.shape)
    if out.shape != want:
        return f"WRONG shape {out.shape} != {want}"
    corr = float(np.corrcoef(part.ravel(), blocks.ravel())[0, 1])
    rel = float(np.abs(part - blocks).mean() / max(float(np.ptp(reference)), 1.0))
    verdict = "ok" if corr > 0.99 and rel < 0.01 else "WRONG"
    return f"{verdict} (r={corr:.4f} vs block mean, mean abs diff {100 * rel:.2f}% of range)"
