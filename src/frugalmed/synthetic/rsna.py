"""A synthetic RSNA-like screening-mammography cohort, written in Kaggle's exact layout.

raw_dir/train.csv (the 14 RSNA columns) + raw_dir/train_images/{patient_id}/{image_id}.dcm,
then the raw-complete marker last. The files vary the way RSNA's do (JPEG 2000 and JPEG
Lossless SV1, MONOCHROME1/2, 12-16 stored bits, LINEAR/SIGMOID windows, some with several) so
the preprocessing meets the real readers' cases. Each image is a breast-shaped phantom with
texture; a small dense mass appears far more often when BIRADS == 0 (and with cancer), so a
classifier can learn the demo's label even at 16 px. Everything is deterministic in the seed.

A deliberate site confound of moderate strength, as in the real data (where some machines
record almost only BIRADS 0): the share of BIRADS-0 breasts depends on the machine
(`MACHINE_BIRADS0`), and every machine leaves its own mark on the pixels (detector contrast and
noise, `MACHINE_DETECTOR`). A scanner-only predictor therefore beats chance, and the confound
report (results/data/rsna/confounds.json) has something real to find; see docs/data.md.
"""

from __future__ import annotations

import logging
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydicom.uid import JPEG2000Lossless, JPEGLosslessSV1, generate_uid
from scipy.ndimage import gaussian_filter

from frugalmed.atomic import write_csv, write_text
from frugalmed.errors import FrugalmedError
from frugalmed.synthetic.dicom_mammo import MammoHeader, build_dataset, write_mammogram

log = logging.getLogger(__name__)

RSNA_COLUMNS = [
    "site_id", "patient_id", "image_id", "laterality", "view", "age", "cancer", "biopsy",
    "invasive", "BIRADS", "implant", "density", "machine_id", "difficult_negative_case",
]
# machine_id -> (site_id, transfer syntax): RSNA's two sites store different syntaxes.
MACHINES = {
    21: (1, JPEG2000Lossless), 29: (1, JPEGLosslessSV1), 48: (1, JPEG2000Lossless),
    49: (1, JPEG2000Lossless), 93: (2, JPEGLosslessSV1), 170: (2, JPEG2000Lossless),
    190: (2, JPEGLosslessSV1), 216: (2, JPEG2000Lossless),
}
P_MASS = {"birads0": 0.8, "cancer": 0.95, "birads12": 0.07, "missing": 0.15}
# The site confound. machine_id -> P(BIRADS == 0) of a breast (the rest: BIRADS 1 : 2 = 8 : 5,
# as in the cohort-wide 0.35 / 0.40 / 0.25). Site 1's machines lean to follow-up, site 2's
# less; the patient-weighted mean stays 0.35.
MACHINE_BIRADS0 = {21: 0.75, 29: 0.65, 48: 0.5, 49: 0.25, 93: 0.3, 170: 0.2, 190: 0.15, 216: 0.2}
# machine_id -> (tissue contrast, detector noise sd): what a scanner does to the pixels.
MACHINE_DETECTOR = {
    21: (1.12, 0.020), 29: (1.08, 0.012), 48: (1.0, 0.016), 49: (0.95, 0.010),
    93: (1.04, 0.008), 170: (0.92, 0.014), 190: (0.97, 0.018), 216: (1.0, 0.006),
}  # fmt: skip


def cohort_table(n_patients: int, seed: int) -> pd.DataFrame:
    """train.csv of the synthetic cohort, plus the hidden `_has_mass` column (not written)."""
    rng = np.random.default_rng([seed, 1])
    # ids drawn from integer ranges (Floyd's algorithm), never materialising the range
    patient_ids = np.sort(10_000 + rng.choice(90_000, n_patients, replace=False))
    image_ids = 10**6 + rng.choice(2**31 - 10**6, 4 * n_patients, replace=False)
    rows: list[dict] = []
    for p, patient in enumerate(patient_ids):
        machine = int(rng.choice(list(MACHINES)))
        age: float = float(np.clip(round(rng.normal(51, 12)), 26, 89))
        if rng.random() < 0.03:
            age = np.nan
        density = rng.choice(["A", "B", "C", "D"], p=[0.1, 0.4, 0.4, 0.1])
        if rng.random() < 0.1:
            density = np.nan
        implant = int(rng.random() < 0.02)
        views = [(lat, view) for lat in ("L", "R") for view in ("CC", "MLO")]
        n_images = int(rng.integers(2, 5))
        keep = np.sort(rng.choice(4, n_images, replace=False))
        breast = {}
        p0 = MACHINE_BIRADS0[machine]
        for lat in ("L", "R"):
            birads = float(rng.choice([0, 1, 2], p=[p0, (1 - p0) * 8 / 13, (1 - p0) * 5 / 13]))
            if rng.random() < 0.05:
                birads = np.nan
            cancer = int(rng.random() < (0.3 if birads == 0 else 0.01))
            if cancer:
                p_mass = P_MASS["cancer"]
            elif np.isnan(birads):
                p_mass = P_MASS["missing"]
            else:
                p_mass = P_MASS["birads0"] if birads == 0 else P_MASS["birads12"]
            biopsy = int(cancer or (birads == 0 and rng.random() < 0.3))
            breast[lat] = {
                "BIRADS": birads,
                "cancer": cancer,
                "biopsy": biopsy,
                "invasive": int(cancer and rng.random() < 0.7),
                "difficult_negative_case": bool(biopsy and not cancer),
                "_has_mass": bool(rng.random() < p_mass),
            }
        for k in keep:
            lat, view = views[k]
            rows.append(
                {
                    "site_id": MACHINES[machine][0],
                    "patient_id": int(patient),
                    "image_id": int(image_ids[4 * p + k]),
                    "laterality": lat,
                    "view": view,
                    "age": age,
                    "implant": implant,
                    "density": density,
                    "machine_id": machine,
                    **breast[lat],
                }
            )
    table = pd.DataFrame(rows)
    return table[RSNA_COLUMNS + ["_has_mass"]]


@dataclass(frozen=True)
class ImageJob:
    """Everything one worker needs to render and write one DICOM file."""

    path: str
    row: dict
    rows: int
    cols: int
    seed: int
    index: int


def render_breast(
    rng: np.random.Generator, rows: int, cols: int, laterality: str, view: str,
    density: str | float, mass: bool, detector: tuple[float, float] = (1.0, 0.0),
) -> np.ndarray:
    """Tissue signal in [0, 1] (bright = dense), chest wall on the image side of the laterality.

    `detector` = (contrast, noise sd) of the machine: tissue contrast around its mean, and
    pixel noise inside the breast (MACHINE_DETECTOR).
    """
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    cy = rows * (0.5 + rng.uniform(-0.04, 0.04))
    ay = rows * rng.uniform(0.38, 0.45)
    ax = cols * rng.uniform(0.62, 0.8)
    rho = np.sqrt(((y - cy) / ay) ** 2 + (x / ax) ** 2)  # chest wall at x = 0
    inside = rho < 1.0
    base = {"A": 0.35, "B": 0.42, "C": 0.5, "D": 0.58}.get(density, 0.45)  # NaN -> mid
    texture = gaussian_filter(rng.standard_normal((rows, cols)).astype(np.float32), sigma=3.0)
    texture += 0.5 * gaussian_filter(rng.standard_normal((rows, cols)).astype(np.float32), sigma=8.0)
    texture /= texture.std() + 1e-6
    skin = np.clip((1.0 - rho) / 0.12, 0.0, 1.0) ** 0.5
    tissue = (base + 0.08 * texture) * (0.35 + 0.65 * skin)
    if view == "MLO":  # pectoral muscle: a bright triangle at the top of the chest wall
        pect = (x / (cols * rng.uniform(0.25, 0.35)) + y / (rows * rng.uniform(0.35, 0.5))) < 1.0
        tissue = np.where(pect & inside, tissue + 0.2, tissue)
    if mass:
        radius = rows * rng.uniform(0.09, 0.12)
        for _ in range(50):  # a centre well inside the breast
            my, mx = rng.uniform(cy - 0.6 * ay, cy + 0.6 * ay), rng.uniform(0.15 * ax, 0.65 * ax)
            if np.hypot((my - cy) / ay, mx / ax) < 0.65:
                break
        d = np.hypot(y - my, x - mx) / radius
        tissue = tissue + 0.6 * np.clip(1.0 - d**2, 0.0, 1.0) ** 0.5
    contrast, noise = detector
    tissue = 0.45 + contrast * (tissue - 0.45) + rng.normal(0.0, noise, tissue.shape)
    image = np.where(inside, np.clip(tissue, 0.05, 1.0), 0.0)
    image = image + np.abs(rng.normal(0.0, 0.01, image.shape))  # detector noise in the air
    # a burned-in marker in the far top corner: foreground, but not the breast
    image[int(rows * 0.03) : int(rows * 0.03) + max(3, rows // 24),
          cols - max(6, cols // 10) - 3 : cols - 3] = 0.95
    if laterality == "R":
        image = image[:, ::-1]
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _file_variant(rng: np.random.Generator) -> tuple[int, str, str]:
    """(bits_stored, photometric interpretation, window mode) of one file."""
    bits = int(rng.choice([12, 14, 15, 16]))
    photometric = "MONOCHROME1" if rng.random() < 0.3 else "MONOCHROME2"
    mode = str(rng.choice(["none", "linear", "sigmoid", "linear_multi", "sigmoid_multi"],
                          p=[0.15, 0.4, 0.25, 0.1, 0.1]))
    return bits, photometric, mode


def _stored_values(image: np.ndarray, bits: int, photometric: str, mode: str, rng):
    """Stored uint16 values and the (center, width) windows that display `image` well."""
    maxv = 2**bits - 1
    lo, hi = 0.02 * maxv, 0.92 * maxv  # the detector's used range
    signal = lo + image * (hi - lo)
    t_lo, t_hi = 0.12, 1.0  # the tissue range the main window should span
    c = lo + (t_lo + t_hi) / 2 * (hi - lo)
    w = (t_hi - t_lo) * (hi - lo)
    windows = [] if mode == "none" else [(c, w)]
    if mode.endswith("_multi"):
        windows += [(c + 0.1 * w, 0.6 * w), (c - 0.05 * w, 1.3 * w)][: int(rng.integers(1, 3))]
    stored = np.rint(signal).astype(np.uint16)
    if photometric == "MONOCHROME1":
        stored = (maxv - stored).astype(np.uint16)
        windows = [(maxv - cc, ww) for cc, ww in windows]
    return stored, windows


def write_image(job: ImageJob) -> str:
    """Render and write one file; returns its transfer syntax (for the log)."""
    row = job.row
    rng = np.random.default_rng([job.seed, 2, job.index])
    image = render_breast(rng, job.rows, job.cols, row["laterality"], row["view"],
                          row["density"], row["_has_mass"], MACHINE_DETECTOR[int(row["machine_id"])])
    bits, photometric, mode = _file_variant(rng)
    stored, windows = _stored_values(image, bits, photometric, mode, rng)
    age = None if pd.isna(row["age"]) else float(row["age"])
    header = MammoHeader(
        patient_id=str(row["patient_id"]),
        image_id=str(row["image_id"]),
        study_uid=generate_uid(entropy_srcs=["study", str(job.seed), str(row["patient_id"])]),
        laterality=row["laterality"],
        view=row["view"],
        age=age,
        bits_stored=bits,
        photometric=photometric,
        windows=windows,
        voi_function=None if mode == "none" else ("SIGMOID" if mode.startswith("sigmoid") else "LINEAR"),
        rescale=bool(rng.random() < 0.3),
        machine_id=str(row["machine_id"]),
    )
    syntax = MACHINES[int(row["machine_id"])][1]
    write_mammogram(job.path, build_dataset(header, stored, job.seed), syntax)
    return str(syntax)


SYNTHETIC_STAMP = ".frugalmed_synthetic"


def _claim_raw_dir(raw: Path) -> None:
    """Empty raw_dir of an earlier synthetic cohort; refuse to touch data we did not write."""
    images = raw / "train_images"
    if (images.exists() or (raw / "train.csv").exists()) and not (raw / SYNTHETIC_STAMP).exists():
        raise FrugalmedError(
            f"{raw} already holds train.csv/train_images that the synthesizer did not write; "
            "refusing to overwrite them. Point datasets.rsna.raw_dir elsewhere for the synthetic "
            "cohort, or set datasets.rsna.source: local to use the data there."
        )
    raw.mkdir(parents=True, exist_ok=True)
    write_text(raw / SYNTHETIC_STAMP, "written by frugalmed.synthetic.rsna\n")
    if images.exists():
        shutil.rmtree(images)


def synthesize_rsna(
    raw_dir: str | os.PathLike[str], marker: str | os.PathLike[str], n_patients: int,
    rows: int, cols: int, seed: int, threads: int = 1,
) -> pd.DataFrame:
    """Write the cohort into raw_dir (Kaggle layout), the marker last; returns train.csv's table."""
    raw = Path(raw_dir)
    Path(marker).unlink(missing_ok=True)  # incomplete until the very end
    _claim_raw_dir(raw)
    table = cohort_table(n_patients, seed)
    jobs = [
        ImageJob(
            path=str(raw / "train_images" / str(r["patient_id"]) / f"{r['image_id']}.dcm"),
            row=r, rows=rows, cols=cols, seed=seed, index=i,
        )
        for i, r in enumerate(table.to_dict("records"))
    ]
    if threads > 1:
        with ProcessPoolExecutor(max_workers=threads) as pool:
            syntaxes = list(pool.map(write_image, jobs, chunksize=8))
    else:
        syntaxes = [write_image(job) for job in jobs]
    write_csv(raw / "train.csv", table[RSNA_COLUMNS])
    log.info(
        "wrote %d images of %d patients into %s; transfer syntaxes: %s; label balance: "
        "BIRADS==0 %d, BIRADS 1/2 %d, BIRADS missing %d, cancer %d",
        len(jobs), n_patients, raw, pd.Series(syntaxes).value_counts().to_dict(),
        int((table["BIRADS"] == 0).sum()), int(table["BIRADS"].isin([1, 2]).sum()),
        int(table["BIRADS"].isna().sum()), int(table["cancer"].sum()),
    )
    write_text(marker, f"synthetic RSNA-like cohort: {len(jobs)} images, seed {seed}\n")
    return table[RSNA_COLUMNS]
