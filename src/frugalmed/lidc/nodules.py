"""Per-slice rater agreement of one nodule, from pylidc's own masks.

A nodule is a group of annotations (one per radiologist) as returned by
``Scan.cluster_annotations``. For every axial slice where at least one of them has a
non-empty ``boolean_mask`` we count how many do (n_raters) and where their union lies.
Nothing here reads images, so the same code gives the patch list of a real run and the
expected counts computed from the annotation database alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class NoduleSlice:
    """One axial slice of one nodule."""

    k: int  # slice index into the scan's volume (pylidc's slice_zvals order)
    n_raters: int  # annotations of the nodule whose mask is non-empty on slice k
    centroid_row: float  # centroid of the union of those masks (image row, i)
    centroid_col: float  # (image column, j)
    area_px: int  # pixels in the union


def annotation_masks(annotations: Sequence[Any]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(bbox_matrix, boolean_mask) of each annotation: the mask and where it sits in the volume."""
    return [(np.asarray(ann.bbox_matrix()), np.asarray(ann.boolean_mask())) for ann in annotations]


def stack_masks(masks: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Place every mask in the nodule's common bounding box.

    Returns (origin (i, j, k) of the box, bool array (n_annotations, I, J, K)).
    """
    lo = np.min([bb[:, 0] for bb, _ in masks], axis=0)
    hi = np.max([bb[:, 1] for bb, _ in masks], axis=0)
    stack = np.zeros((len(masks), *(hi - lo + 1)), dtype=bool)
    for a, (bb, mask) in enumerate(masks):
        i0, j0, k0 = bb[:, 0] - lo
        ni, nj, nk = mask.shape
        stack[a, i0 : i0 + ni, j0 : j0 + nj, k0 : k0 + nk] = mask
    return lo, stack


def nodule_slices(masks: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[NoduleSlice]:
    """Every slice of a nodule with at least one non-empty rater mask, in increasing k."""
    if not masks:
        return []
    origin, stack = stack_masks(masks)
    result = []
    for dk in range(stack.shape[3]):
        per_rater = stack[:, :, :, dk]
        n_raters = int(per_rater.any(axis=(1, 2)).sum())
        if n_raters == 0:
            continue
        rows, cols = np.nonzero(per_rater.any(axis=0))
        result.append(
            NoduleSlice(
                k=int(origin[2] + dk),
                n_raters=n_raters,
                centroid_row=float(origin[0] + rows.mean()),
                centroid_col=float(origin[1] + cols.mean()),
                area_px=int(rows.size),
            )
        )
    return result
