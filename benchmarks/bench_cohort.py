"""A synthetic mammography cohort for the benchmarks, in the Kaggle RSNA layout.

Why not the workflow's own synthetic cohort (frugalmed.synthetic.rsna): the benchmarks need
control over what drives decoding cost -- image size, bit depth, transfer syntax and how
compressible the pixels are. The files are written with the workflow's own DICOM writer
(frugalmed.synthetic.dicom_mammo), so their headers are those the RSNA stage reads.

Encoding a 3000 x 2400 image losslessly takes about as long as decoding it, so a cohort of a few
hundred images reuses a handful of distinct encoded images (`n_unique`) under distinct patient,
image and SOP instance identifiers. Each file is decoded in full every time, so the decode work
measured is real; only the pixel content repeats.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import JPEG2000Lossless, JPEGLosslessSV1, generate_uid

#: The two transfer syntaxes of the Kaggle RSNA data (one per screening site).
SYNTAXES = {"j2k": JPEG2000Lossless, "jpegls1": JPEGLosslessSV1}
#: Kaggle machine ids that store each syntax (as in frugalmed.synthetic.rsna).
MACHINE_IDS = {"j2k": 49, "jpegls1": 29}


@dataclass(frozen=True)
class CohortSpec:
    """What the cohort looks like: `n_images` files per transfer syntax."""

    n_images: int
    rows: int = 3000
    cols: int = 2400
    bits_stored: int = 12
    n_unique: int = 4
    seed: int = 0


def mammogram_like(rows: int, cols: int, bits: int, laterality: str, rng: np.random.Generator) -> np.ndarray:
    """A breast-shaped bright region on a dark background, with smooth tissue texture and noise.

    The mix of flat background, smooth texture and a few bits of noise gives lossless codecs a
    compression ratio of the order real mammograms have (about 2-4x), which is what decode time
    depends on; pure noise or a flat image would make every decoder look wrong.
    """
    top = 2**bits - 1
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    cx = 0.0 if laterality == "L" else cols - 1.0  # chest wall on the image side of the laterality
    cy = rows * rng.uniform(0.45, 0.55)
    r = np.sqrt(((xx - cx) / (cols * rng.uniform(0.7, 0.85))) ** 2 + ((yy - cy) / (rows * 0.48)) ** 2)
    breast = r < 1.0
    coarse = rng.normal(size=(rows // 64 + 2, cols // 64 + 2)).astype(np.float32)
    texture = np.kron(coarse, np.ones((64, 64), np.float32))[:rows, :cols]
    density = np.clip(1.0 - r, 0.0, 1.0) ** 0.5
    img = np.where(breast, top * (0.35 + 0.35 * density + 0.05 * texture), top * 0.02)
    img += rng.normal(0.0, top * 0.004, size=img.shape).astype(np.float32)
    return np.clip(img, 0, top).astype(np.uint16)


def encode(pixels: np.ndarray, bits: int, syntax: str, dst: Path, image_id: str = "0", laterality: str = "L") -> None:
    """Write `pixels` as one MG For Presentation file in `syntax` ('j2k' | 'jpegls1').

    Uses the workflow's own DICOM writer (frugalmed.synthetic.dicom_mammo), so the headers are
    exactly those the RSNA stage is built to read.
    """
    from frugalmed.synthetic.dicom_mammo import MammoHeader, build_dataset, write_mammogram

    if syntax not in SYNTAXES:
        raise ValueError(f"unknown syntax {syntax!r}; expected one of {sorted(SYNTAXES)}")
    top = 2**bits - 1
    header = MammoHeader(
        patient_id="0", image_id=image_id, study_uid=generate_uid(), laterality=laterality, view="CC",
        age=50.0, bits_stored=bits, photometric="MONOCHROME2",
        windows=[(top * 0.55, top * 0.8)], voi_function="LINEAR",
    )
    write_mammogram(dst, build_dataset(header, pixels, seed=0), SYNTAXES[syntax])


def build_cohort(root: Path, spec: CohortSpec, syntaxes: tuple[str, ...] = ("j2k", "jpegls1")) -> dict[str, list[Path]]:
    """Write the cohort under `root` (Kaggle layout + train.csv); return the files per syntax.

    Reuses `root` when it already holds the same spec (a marker file records it), so a rerun of
    the benchmarks does not pay for encoding again.
    """
    marker = root / ".bench_cohort_spec"
    key = f"{spec}|{syntaxes}"
    files: dict[str, list[Path]] = {s: [] for s in syntaxes}
    rows: list[dict[str, object]] = []
    for syntax in syntaxes:
        k = list(SYNTAXES).index(syntax)
        for i in range(spec.n_images):
            patient, image = 10_000 + 50_000 * k + i // 2, 10**6 * (k + 1) + i
            files[syntax].append(root / "train_images" / str(patient) / f"{image}.dcm")
            rows.append({
                "site_id": 1 + k, "patient_id": patient, "image_id": image,
                "laterality": _laterality(i, spec), "view": "CC", "age": 40 + i % 30,
                "cancer": int(i % 17 == 0), "biopsy": int(i % 17 == 0), "invasive": 0,
                "BIRADS": [0, 1, 2][i % 3], "implant": 0, "density": "B",
                "machine_id": MACHINE_IDS[syntax], "difficult_negative_case": False,
            })
    if marker.exists() and marker.read_text() == key:
        return files
    marker.unlink(missing_ok=True)
    rng = np.random.default_rng(spec.seed)
    scratch = root / ".encode"
    scratch.mkdir(parents=True, exist_ok=True)
    for syntax in syntaxes:
        templates = []
        for u in range(min(spec.n_unique, spec.n_images)):
            pixels = mammogram_like(spec.rows, spec.cols, spec.bits_stored, "LR"[u % 2], rng)
            path = scratch / f"{syntax}{u}.dcm"
            encode(pixels, spec.bits_stored, syntax, path, image_id=f"{syntax}{u}", laterality="LR"[u % 2])
            templates.append(pydicom.dcmread(path))
        for i, dst in enumerate(files[syntax]):
            ds = templates[i % len(templates)]
            ds.PatientID = dst.parent.name
            ds.PatientName = f"BENCH^{dst.parent.name}"
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            dst.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(dst, enforce_file_format=True)
    with open(root / "train.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    marker.write_text(key)
    return files


def _laterality(i: int, spec: CohortSpec) -> str:
    """File i reuses template i % n_unique, whose breast is on side 'LR'[template % 2]."""
    return "LR"[(i % min(spec.n_unique, spec.n_images)) % 2]

