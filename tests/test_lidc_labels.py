"""LIDC rater counting (frugalmed.lidc.nodules) against an independent count in scan coordinates.

The label of a patch is n_raters >= min_raters (lidc/extract.py; the rule itself is checked end
to end by test_lidc_preprocess.py and tools/acceptance.py's `rater_rule`). These tests pin the
count it rests on: for every axial slice, how many of a nodule's annotations have a non-empty
mask there, and where the union of those masks lies. The reference paints every mask into one
whole-volume array per rater, so it shares no code or offsets with the bounding-box stacking
under test.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from frugalmed.lidc.nodules import NoduleSlice, annotation_masks, nodule_slices, stack_masks

VOLUME = (40, 36, 24)  # (rows i, cols j, slices k) of the fake scan


def _random_annotation(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A pylidc-like (bbox_matrix, boolean_mask): inclusive [lo, hi] per axis, mask of that size,
    with some empty slices (a rater who drew only contour points there)."""
    lo = np.array([rng.integers(0, n - 8) for n in VOLUME])
    size = np.array([rng.integers(1, 8) for _ in VOLUME])
    bbox = np.stack([lo, lo + size - 1], axis=1)
    mask = rng.random(tuple(size)) < 0.5
    for k in range(size[2]):
        if rng.random() < 0.25:
            mask[:, :, k] = False
    return bbox, mask


def _reference(masks) -> list[NoduleSlice]:
    """Per-slice rater count and union, painted in whole-volume coordinates."""
    painted = np.zeros((len(masks), *VOLUME), bool)
    for a, (bbox, mask) in enumerate(masks):
        (i0, _), (j0, _), (k0, _) = bbox
        ni, nj, nk = mask.shape
        painted[a, i0:i0 + ni, j0:j0 + nj, k0:k0 + nk] = mask
    out = []
    for k in range(VOLUME[2]):
        raters = [a for a in range(len(masks)) if painted[a, :, :, k].any()]
        if not raters:
            continue
        union = painted[raters, :, :, k].any(axis=0)
        rows, cols = np.nonzero(union)
        out.append(NoduleSlice(k, len(raters), float(rows.mean()), float(cols.mean()), int(rows.size)))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_rater_counts_and_union_equal_an_independent_count_in_scan_coordinates(seed: int) -> None:
    """Catches an off-by-one in the common box, a mask placed at the wrong offset or axis, a
    slice counted from the wrong rater axis, an empty slice kept or a non-empty one dropped, a
    centroid or area taken from one rater instead of the union, or the slices out of order."""
    rng = np.random.default_rng(seed)
    masks = [_random_annotation(rng) for _ in range(int(rng.integers(1, 5)))]
    got = nodule_slices(masks)
    want = _reference(masks)
    assert [(s.k, s.n_raters, s.area_px) for s in got] == [(s.k, s.n_raters, s.area_px) for s in want]
    for g, w in zip(got, want):
        assert g.centroid_row == pytest.approx(w.centroid_row)
        assert g.centroid_col == pytest.approx(w.centroid_col)
    assert [s.k for s in got] == sorted(s.k for s in got)


def test_four_raters_on_one_slice_count_four_and_a_gap_slice_is_skipped() -> None:
    """A slice where every rater's mask is empty yields no patch (no label-0 slice is invented
    inside a nodule), and raters are counted per slice, not per nodule."""
    bbox = np.array([[5, 6], [5, 6], [2, 4]])
    full = np.ones((2, 2, 3), bool)
    gap = full.copy()
    gap[:, :, 1] = False
    masks = [(bbox, full)] * 2 + [(bbox, gap)] * 2
    assert [(s.k, s.n_raters) for s in nodule_slices(masks)] == [(2, 4), (3, 2), (4, 4)]
    all_gap = [(bbox, gap)] * 3
    assert [(s.k, s.n_raters) for s in nodule_slices(all_gap)] == [(2, 3), (4, 3)]


def test_stack_masks_origin_is_the_common_box_corner_and_keeps_every_voxel() -> None:
    """The common box starts at the smallest corner and spans to the largest (inclusive ends):
    no voxel of any rater falls off it."""
    rng = np.random.default_rng(1)
    masks = [_random_annotation(rng) for _ in range(3)]
    origin, stack = stack_masks(masks)
    lo = np.min([bb[:, 0] for bb, _ in masks], axis=0)
    hi = np.max([bb[:, 1] for bb, _ in masks], axis=0)
    assert list(origin) == list(lo)
    assert stack.shape == (3, *(hi - lo + 1))
    for a, (_, mask) in enumerate(masks):
        assert stack[a].sum() == mask.sum()


def test_annotation_masks_reads_each_annotations_box_and_mask() -> None:
    """One (bbox, mask) per annotation, in order, from pylidc's bbox_matrix() and boolean_mask()."""
    anns = [SimpleNamespace(bbox_matrix=lambda i=i: [[i, i + 1], [0, 1], [0, 0]],
                            boolean_mask=lambda i=i: [[[i % 2 == 0]] * 2] * 2)
            for i in range(3)]
    got = annotation_masks(anns)
    assert len(got) == 3
    for i, (bbox, mask) in enumerate(got):
        assert isinstance(bbox, np.ndarray) and isinstance(mask, np.ndarray)
        assert bbox.tolist() == [[i, i + 1], [0, 1], [0, 0]]
        assert mask.shape == (2, 2, 1) and bool(mask.all()) == (i % 2 == 0)


def test_no_annotation_no_slice() -> None:
    assert nodule_slices([]) == []
