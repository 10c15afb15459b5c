"""Pure parts of the patch rule: rater counts from masks, cropping, windowing, resampling."""

from __future__ import annotations

import numpy as np
import pytest

from frugalmed.lidc.nodules import nodule_slices
from frugalmed.lidc.patches import crop_patch, patch_origin, resample_in_plane, window_to_uint8


def _mask(shape, box) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[box] = True
    return mask


def test_nodule_slices_counts_raters_per_slice_and_centres_on_the_union() -> None:
    # rater A: rows 10-13, cols 20-23 on slices 5-6; rater B: rows 12-15, cols 20-23, slices 6-7
    a = (np.array([[10, 13], [20, 23], [5, 6]]), _mask((4, 4, 2), np.s_[:, :, :]))
    b_mask = _mask((4, 4, 2), np.s_[:, :, :])
    b_mask[:, :, 1] = False  # B marks slice 7 with an empty mask (e.g. contour points only)
    b = (np.array([[12, 15], [20, 23], [6, 7]]), b_mask)
    slices = nodule_slices([a, b])
    assert [(s.k, s.n_raters) for s in slices] == [(5, 1), (6, 2)]
    union6 = slices[1]
    assert union6.area_px == 6 * 4  # rows 10-15 x cols 20-23
    assert (union6.centroid_row, union6.centroid_col) == (12.5, 21.5)
    assert nodule_slices([]) == []


def test_window_maps_lung_window_to_uint8() -> None:
    out = window_to_uint8(np.array([-2000, -1000, -300, 400, 3000]), (-1000, 400))
    assert out.dtype == np.uint8 and list(out) == [0, 0, 128, 255, 255]


@pytest.mark.parametrize(
    ("centre", "expected"), [(256.0, 224), (3.0, 0), (510.2, 448), (31.6, 0), (32.5, 1)]
)
def test_patch_origin_shifts_inward_at_borders(centre: float, expected: int) -> None:
    assert patch_origin(centre, 64, 512) == expected


def test_crop_patch_keeps_size_and_content() -> None:
    image = np.arange(100 * 120, dtype=np.float32).reshape(100, 120)
    patch, r0, c0 = crop_patch(image, 98.0, 5.0, 32)
    assert patch.shape == (32, 32) and (r0, c0) == (68, 0)
    np.testing.assert_array_equal(patch, image[68:100, 0:32])
    small, r0, c0 = crop_patch(image[:10, :10], 5, 5, 16)
    assert small.shape == (16, 16) and (r0, c0) == (0, 0) and small[15, 15] == -1000


def test_resample_in_plane() -> None:
    image = np.zeros((512, 512), np.float32)
    same, factor = resample_in_plane(image, 0.7, None)
    assert same is image and factor == 1.0
    out, factor = resample_in_plane(image, 0.7, 1.4)
    assert factor == pytest.approx(0.5) and out.shape == (256, 256)
