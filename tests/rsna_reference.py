"""The RSNA per-image pipeline as it was before issue #19 (commit f2cb180), kept as the reference
the faster one must match within one grey level (tests/test_rsna_reference.py).

Only what changed is frozen here: the 5/3 reduction (float32, rounded after every level; it was
bit for bit the scipy version below), and crop/flip/pad/resize/pooling (skimage components,
float means). Reading, checks and the display LUT are the package's, unchanged by #19; so are
the reduced JPEG 2000 stored values, which OpenJPEG decodes whichever binding calls it (Pillow
and glymur give identical pixels: tests/test_rsna_j2k.py).
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from pydicom.encaps import generate_frames
from scipy.ndimage import convolve1d
from skimage.measure import label, regionprops

from frugalmed.rsna import decode, j2k

LOWPASS_F32 = np.array([-1.0, 2.0, 6.0, 2.0, -1.0], dtype=np.float32) / 8.0


def reference_wavelet_reduce(stored: np.ndarray, levels: int) -> np.ndarray:
    image = stored.astype(np.float32)
    for _ in range(levels):
        image = convolve1d(image, LOWPASS_F32, axis=0, mode="mirror")[::2]
        image = convolve1d(image, LOWPASS_F32, axis=1, mode="mirror")[:, ::2]
    return np.rint(image)


def reference_apply_lut(stored: np.ndarray, lut: np.ndarray, low: int) -> np.ndarray:
    return lut[np.clip(stored.astype(np.int64) - low, 0, len(lut) - 1)]


def reference_decode(path: str, min_size: int) -> np.ndarray:
    """Display image in [0, 1] as the old decode_mammogram gave it (reduce=True)."""
    ds = decode.read_dataset(path)
    lut, low = decode.display_lut(ds)
    r = decode.reduction_level(int(ds.Rows), int(ds.Columns), min_size)
    if r and ds.file_meta.TransferSyntaxUID in decode.J2K_SYNTAXES:
        frame = next(generate_frames(ds.PixelData, number_of_frames=1))
        header = j2k.read_header(frame)
        if header and header.precision == int(ds.BitsStored) and header.signed == bool(ds.PixelRepresentation):
            levels = min(r, header.levels)
            return reference_apply_lut(j2k.decode_pillow(frame, header, levels), lut, low)
    stored = ds.pixel_array
    return reference_apply_lut(reference_wavelet_reduce(stored, r) if r else stored, lut, low)


def reference_standardise(image: np.ndarray, image_size: int, scales: list[int]) -> dict[int, np.ndarray]:
    lo, hi = np.percentile(image, [1, 99])
    mask = image > lo + 0.1 * (hi - lo)
    top, left, bottom, right = max(regionprops(label(mask, connectivity=2)), key=lambda reg: reg.area).bbox
    image = image[top:bottom, left:right]
    half = image.shape[1] // 2
    if half and image[:, -half:].sum() > image[:, :half].sum():
        image = image[:, ::-1]
    rows, cols = image.shape
    side = max(rows, cols)
    square = np.zeros((side, side), dtype=np.float32)
    square[(side - rows) // 2 : (side - rows) // 2 + rows, :cols] = image
    pil = Image.fromarray(np.ascontiguousarray(square, dtype=np.float32), mode="F")
    resized = np.asarray(pil.resize((image_size, image_size), Image.Resampling.BOX), dtype=np.float32)
    base = np.clip(np.rint(resized * 255.0), 0, 255).astype(np.uint8)
    out = {}
    for scale in scales:
        size = image_size // scale
        blocks = base.reshape(size, scale, size, scale).astype(np.float32)
        out[scale] = np.clip(np.rint(blocks.mean(axis=(1, 3))), 0, 255).astype(np.uint8)
    return out


def reference_process(path: str, image_size: int, scales: list[int]) -> dict[int, np.ndarray]:
    return reference_standardise(reference_decode(path, image_size), image_size, scales)
