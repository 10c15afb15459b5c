"""From a decoded mammogram to the study's square uint8 images at every scale.

Crop to the breast (the largest foreground component, so burned-in labels and markers drop
out), flip so every breast's chest wall is on the left, pad to a square keeping the aspect
ratio, resize with area averaging (PIL's BOX filter), then average-pool by each scale.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from frugalmed.rsna.decode import RejectedImage

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def breast_bbox(image: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the largest bright component (bottom/right exclusive).

    Threshold at 10 % of the way from the background (1st percentile) to bright tissue (99th):
    low enough to keep fatty tissue, high enough to leave out air and detector noise.
    """
    lo, hi = np.percentile(image, [1, 99])
    if not hi > lo:
        raise RejectedImage("no breast found", "the image is flat")
    mask = image > lo + 0.1 * (hi - lo)
    labels, n = ndimage.label(mask, structure=EIGHT_CONNECTED)
    if n == 0:
        raise RejectedImage("no breast found", "no foreground above the threshold")
    if n == 1:  # the usual case: the mask is one component, its box is the mask's
        return _bbox(mask)
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    areas[0] = 0
    largest = np.flatnonzero(areas == areas.max())
    best = int(largest[0])
    if len(largest) > 1:  # a tie: the component met first in raster order, whatever the numbering
        flat = labels.ravel()
        best = int(min(largest, key=lambda c: int(np.argmax(flat == c))))
    rows, cols = ndimage.find_objects(labels, max_label=best)[best - 1]
    return rows.start, rows.stop, cols.start, cols.stop


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def crop_to_breast(image: np.ndarray) -> np.ndarray:
    top, bottom, left, right = breast_bbox(image)
    return image[top:bottom, left:right]


def chest_wall_on_left(image: np.ndarray) -> np.ndarray:
    """Flip horizontally if the right half holds more tissue (the chest wall side is densest).

    Judged from the pixels, not the laterality tag: view conventions differ between vendors.
    """
    half = image.shape[1] // 2
    if half and image[:, -half:].sum() > image[:, :half].sum():
        return image[:, ::-1]
    return image


def pad_to_square(image: np.ndarray) -> np.ndarray:
    """Pad with black to a square: image at the left edge (chest wall), centred vertically."""
    rows, cols = image.shape
    side = max(rows, cols)
    out = np.zeros((side, side), dtype=np.float32)
    top = (side - rows) // 2
    out[top : top + rows, :cols] = image
    return out


def resize_area(image: np.ndarray, size: int) -> np.ndarray:
    """Square float image resized to size x size by area averaging (PIL BOX)."""
    pil = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32), mode="F")
    return np.asarray(pil.resize((size, size), Image.Resampling.BOX), dtype=np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def average_pool(base: np.ndarray, scale: int) -> np.ndarray:
    """The scale x scale average pool of the uint8 base image, rounded back to uint8."""
    if scale == 1:
        return base
    size = base.shape[0] // scale
    sums = base.reshape(size, scale, size, scale).sum(axis=(1, 3), dtype=np.uint32)
    # sum / scale^2 is exact in float32 (an integer below 2^24 over a power of two), so it
    # rounds as the float mean did
    return np.rint(sums.astype(np.float32) / np.float32(scale * scale)).astype(np.uint8)


def pooled_scales(base: np.ndarray, scales: list[int]) -> dict[int, np.ndarray]:
    """average_pool(base, s) for every s, each sum of blocks built from the previous one's.

    Block sums of block sums are exact integers, so rounding once per scale gives the same
    images as pooling the base directly, for a fraction of the work.
    """
    out = {1: base} if 1 in scales else {}
    wide = max(scales) ** 2 * 255 >= 2**16  # block sums must not overflow
    sums, size = base.astype(np.uint32 if wide else np.uint16), 1
    for scale in sorted(s for s in scales if s > 1):
        while size < scale:
            if scale % (2 * size) or sums.shape[0] % 2:  # not a power-of-two chain: pool directly
                out[scale] = average_pool(base, scale)
                break
            sums = sums[0::2, 0::2] + sums[1::2, 0::2] + sums[0::2, 1::2] + sums[1::2, 1::2]
            size *= 2
        else:
            out[scale] = np.rint(sums.astype(np.float32) / np.float32(scale * scale)).astype(np.uint8)
    return {s: out[s] for s in scales}


def standardise(
    image: np.ndarray, image_size: int, scales: list[int], crop: bool = True, flip: bool = True
) -> dict[int, np.ndarray]:
    """uint8 square images {scale: (image_size/scale)^2} of one decoded mammogram."""
    if crop:
        image = crop_to_breast(image)
    if flip:
        image = chest_wall_on_left(image)
    base = to_uint8(resize_area(pad_to_square(image), image_size))
    return pooled_scales(base, scales)
