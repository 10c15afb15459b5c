"""Cutting a fixed-size, HU-windowed uint8 patch out of one CT slice."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from skimage.transform import rescale

AIR_HU = -1000.0


def window_to_uint8(hu: np.ndarray, window: Sequence[float]) -> np.ndarray:
    """Map HU linearly from [low, high] to 0..255, clipping outside (lung window by default)."""
    low, high = float(window[0]), float(window[1])
    scaled = (np.asarray(hu, dtype=np.float32) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def patch_origin(centre: float, size: int, extent: int) -> int:
    """First index of a `size` window centred on `centre`, shifted inward at the borders."""
    start = int(np.floor(centre + 0.5)) - size // 2
    return int(min(max(start, 0), max(extent - size, 0)))


def crop_patch(
    image: np.ndarray, centre_row: float, centre_col: float, size: int, fill: float = AIR_HU
) -> tuple[np.ndarray, int, int]:
    """size x size crop centred on (row, col), moved inward where it would leave the image.

    An image smaller than the patch (possible after resampling) is padded with `fill`.
    Returns (patch, first row, first column).
    """
    rows, cols = image.shape
    if rows < size or cols < size:
        padded = np.full((max(rows, size), max(cols, size)), fill, dtype=image.dtype)
        padded[:rows, :cols] = image
        image = padded
        rows, cols = image.shape
    r0 = patch_origin(centre_row, size, rows)
    c0 = patch_origin(centre_col, size, cols)
    return image[r0 : r0 + size, c0 : c0 + size], r0, c0


def resample_in_plane(
    hu: np.ndarray, spacing_mm: float, target_mm: float | None
) -> tuple[np.ndarray, float]:
    """Resample a slice to `target_mm` pixels (bilinear); returns (image, zoom factor)."""
    if target_mm is None or np.isclose(spacing_mm, target_mm):
        return hu, 1.0
    factor = float(spacing_mm) / float(target_mm)
    out = rescale(
        hu.astype(np.float32), factor, order=1, preserve_range=True, anti_aliasing=factor < 1
    )
    return out.astype(np.float32), factor
