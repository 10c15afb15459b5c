"""From a decoded mammogram to the study's square uint8 images at every scale.

Crop to the breast (the largest foreground component, so burned-in labels and markers drop
out), flip so every breast's chest wall is on the left, pad to a square keeping the aspect
ratio, resize with area averaging (PIL's BOX filter), then average-pool by each scale.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from skimage.measure import label, regionprops

from frugalmed.rsna.decode import RejectedImage


def breast_bbox(image: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the largest bright component (bottom/right exclusive).

    Threshold at 10 % of the way from the background (1st percentile) to bright tissue (99th):
    low enough to keep fatty tissue, high enough to leave out air and detector noise.
    """
    lo, hi = np.percentile(image, [1, 99])
    if not hi > lo:
        raise RejectedImage("no breast found", "the image is flat")
    mask = image > lo + 0.1 * (hi - lo)
    regions = regionprops(label(mask, connectivity=2))
    if not regions:
        raise RejectedImage("no breast found", "no foreground above the threshold")
    top, left, bottom, right = max(regions, key=lambda reg: reg.area).bbox
    return top, bottom, left, right


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
    blocks = base.reshape(size, scale, size, scale).astype(np.float32)
    return np.clip(np.rint(blocks.mean(axis=(1, 3))), 0, 255).astype(np.uint8)


def standardise(
    image: np.ndarray, image_size: int, scales: list[int], crop: bool = True, flip: bool = True
) -> dict[int, np.ndarray]:
    """uint8 square images {scale: (image_size/scale)^2} of one decoded mammogram."""
    if crop:
        image = crop_to_breast(image)
    if flip:
        image = chest_wall_on_left(image)
    base = to_uint8(resize_area(pad_to_square(image), image_size))
    return {scale: average_pool(base, scale) for scale in scales}
