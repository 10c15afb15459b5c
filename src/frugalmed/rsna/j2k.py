"""Reduced-resolution JPEG 2000 decoding: only the wavelet levels the study needs.

A JPEG 2000 codestream holds its image as wavelet levels, so OpenJPEG can decode 1/2^r of the
resolution without computing the finest r levels (far faster than a full decode: the decoder
table of benchmarks/README.md, latest results).
Two routes to OpenJPEG's `cp_reduce`, tried in this order:

1. **Pillow** (`Image.reduce`), whose wheels ship their own libopenjp2: works after
   `pip install` alone, decodes from memory. Pillow sizes the reduced image as
   round(size / 2^r), OpenJPEG as ceil(size / 2^r); for sizes whose remainder is below half of
   2^r (e.g. 1841 px at r = 2) the decoded tile is then wider than Pillow's image and Pillow
   fails with "broken data stream". `decode_pillow` gives Pillow the size that rounds to
   OpenJPEG's (exact: every decoded pixel is kept; the shape is checked after decoding).
2. **glymur** with a system libopenjp2 (`apt-get install libopenjp2-7`), when Pillow was built
   without OpenJPEG or fails on a file: glymur reads files only, so the codestream goes through
   a file in memory-backed /dev/shm.

Both return the stored values OpenJPEG decodes (identical pixels: tests/test_rsna_j2k.py).
Files whose codestream disagrees with the DICOM header (bit depth, signedness) are left to
pydicom's full decode, which corrects such mismatches.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
from dataclasses import dataclass

import numpy as np

_SHM = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
SOC, SIZ, COD, COC, SOT = 0xFF4F, 0xFF51, 0xFF52, 0xFF53, 0xFF90


@dataclass(frozen=True)
class CodestreamHeader:
    """What the main header of a JPEG 2000 codestream says (ITU-T T.800 A.5.1, A.6.1, A.6.2)."""

    rows: int
    cols: int
    components: int
    precision: int  # bits of component 0
    signed: bool
    levels: int  # wavelet decomposition levels of component 0 (COD, or its COC)
    origin: tuple[int, int]  # (XOsiz, YOsiz): image offset on the reference grid


def read_header(codestream: bytes) -> CodestreamHeader | None:
    """Parse SIZ and COD/COC of a raw codestream; None if it is not one or is cut short."""
    try:
        if struct.unpack_from(">H", codestream, 0)[0] != SOC:
            return None
        pos, siz, levels, coc_levels = 2, None, None, None
        while pos + 4 <= len(codestream):
            marker, length = struct.unpack_from(">HH", codestream, pos)
            body = pos + 4
            if marker == SOT:
                break
            if marker == SIZ:
                _, xsiz, ysiz, xo, yo = struct.unpack_from(">HIIII", codestream, body)
                csiz = struct.unpack_from(">H", codestream, body + 34)[0]
                ssiz = codestream[body + 36]
                siz = (xsiz, ysiz, xo, yo, csiz, (ssiz & 0x7F) + 1, bool(ssiz & 0x80))
            elif marker == COD:
                levels = codestream[body + 5]  # Scod, SGcod (4 bytes), then SPcod: levels first
            elif marker == COC and siz is not None:
                wide = siz[4] >= 257  # component index on 2 bytes when there are 257+ components
                component = struct.unpack_from(">H" if wide else ">B", codestream, body)[0]
                if component == 0:
                    coc_levels = codestream[body + (2 if wide else 1) + 1]
            pos = body + length - 2
        if siz is None or levels is None:
            return None
        xsiz, ysiz, xo, yo, csiz, precision, signed = siz
        return CodestreamHeader(rows=ysiz - yo, cols=xsiz - xo, components=csiz, precision=precision,
                                signed=signed, levels=coc_levels if coc_levels is not None else levels,
                                origin=(xo, yo))
    except (struct.error, IndexError):
        return None


def reduced_shape(header: CodestreamHeader, r: int) -> tuple[int, int]:
    """OpenJPEG's (rows, cols) at 1/2^r: ceil(extent / 2^r) - ceil(offset / 2^r) each way."""
    step = 2**r
    xo, yo = header.origin
    return (-(-(header.rows + yo) // step) - -(-yo // step), -(-(header.cols + xo) // step) - -(-xo // step))


def pillow_available() -> bool:
    try:
        from PIL import features
    except ImportError:
        return False
    return bool(features.check_codec("jpg_2000"))


def glymur_available() -> bool:
    try:
        import glymur
    except ImportError:
        return False
    return glymur.version.openjpeg_version not in ("0.0.0", None, "")


def decode_pillow(codestream: bytes, header: CodestreamHeader, r: int) -> np.ndarray:
    """Stored values at 1/2^r resolution through Pillow's OpenJPEG (raises if Pillow cannot)."""
    from PIL import Image

    if header.components != 1 or header.precision > 16 or header.origin != (0, 0):
        raise ValueError(f"{header.components} components of {header.precision} bits, image offset "
                         f"{header.origin}: not a greyscale image Pillow decodes exactly")
    image = Image.open(io.BytesIO(codestream), formats=["JPEG2000"])
    rows, cols = reduced_shape(header, r)
    if r:
        image.reduce = r
        step = 2**r
        # Pillow's load() sets the size to int((size + step / 2) / step); from this size that is
        # exactly OpenJPEG's ceil (Pillow would otherwise round down sizes like 1841 / 4 and
        # reject the decoded tile as out of bounds)
        image._size = (cols * step, rows * step)
    image.load()
    pixels = np.asarray(image)
    if pixels.shape != (rows, cols):
        raise ValueError(f"Pillow decoded {pixels.shape}, OpenJPEG's reduced size is {(rows, cols)}")
    # Pillow scales samples up to its mode's full range (L: 8 bits, I;16: 16) and offsets
    # signed samples by half their range; undo both
    shift = (8 if pixels.dtype == np.uint8 else 16) - header.precision
    if shift < 0:
        raise ValueError(f"Pillow mode {image.mode} cannot hold {header.precision}-bit samples")
    if shift:
        pixels = pixels >> shift
    if header.signed:
        pixels = pixels.astype(np.int32) - 2 ** (header.precision - 1)
        pixels = pixels.astype(np.int16 if header.precision > 8 else np.int8)
    return pixels


def decode_glymur(codestream: bytes, r: int) -> np.ndarray:
    """Stored values at 1/2^r resolution through glymur and the system libopenjp2."""
    import glymur

    fd, name = tempfile.mkstemp(suffix=".j2k", dir=_SHM)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(codestream)
        jp2 = glymur.Jp2k(name)
        step = 2**r
        return np.asarray(jp2[::step, ::step] if r else jp2[:])
    finally:
        os.unlink(name)
