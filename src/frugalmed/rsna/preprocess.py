"""RSNA preprocessing: train.csv + DICOMs -> manifest.csv, images_s{scale}.npy, rejects, selection.

Images are decoded in a process pool and handed, in manifest order, to the dataset writer
(frugalmed.dataset.writer), which appends each to the .npy files at once, so peak memory does
not grow with the cohort (RSNA has ~54,000 images). Every input that cannot be used goes to
rejects.csv with its reason; the run fails only if more than max_reject_fraction of the inputs
are rejected.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from frugalmed.dataset.parallel import ordered_map
from frugalmed.dataset.writer import DatasetWriter
from frugalmed.errors import FrugalmedError
from frugalmed.rsna.decode import RejectedImage, decode_mammogram
from frugalmed.rsna.resize import standardise
from frugalmed.rsna.selection import read_train_csv, select_rows

log = logging.getLogger(__name__)

#: After the columns every manifest starts with (frugalmed.dataset.outputs.MANIFEST_FIRST):
#: the RSNA fields, then the other train.csv columns and how each file was decoded.
MANIFEST_COLUMNS = ["image_id", "laterality", "view", "age", "BIRADS", "cancer", "site_id",
                    "machine_id", "density", "implant", "biopsy", "invasive",
                    "difficult_negative_case", "photometric", "transfer_syntax", "reduced_decode"]


@dataclass(frozen=True)
class ImageSpec:
    """How every image is standardised (the same for the whole cohort)."""

    image_size: int
    scales: tuple[int, ...]
    crop_breast: bool = True
    flip_left: bool = True
    j2k_reduce: bool = True


@dataclass
class Outcome:
    """One image's result: arrays per scale, or the reason it was rejected."""

    images: dict[int, np.ndarray] | None = None
    reason: str = ""
    detail: str = ""
    photometric: str = ""
    transfer_syntax: str = ""
    reduced_decode: bool = False


def process_image(path: str, spec: ImageSpec) -> Outcome:
    """Decode and standardise one file; never raises (a failure is an Outcome with a reason)."""
    try:
        decoded = decode_mammogram(path, spec.image_size, reduce=spec.j2k_reduce)
        images = standardise(decoded.image, spec.image_size, list(spec.scales),
                             crop=spec.crop_breast, flip=spec.flip_left)
        return Outcome(images, photometric=decoded.photometric,
                       transfer_syntax=decoded.transfer_syntax,
                       reduced_decode=decoded.reduced_decode)
    except RejectedImage as err:
        return Outcome(reason=err.reason, detail=err.detail)
    except Exception as err:  # noqa: BLE001 - one bad file must not stop 54,000 others
        log.error("%s: unexpected error\n%s", path, traceback.format_exc())
        return Outcome(reason="processing failed", detail=f"{type(err).__name__}: {err}")


def image_path(raw_dir: Path, patient_id: str, image_id: str) -> Path:
    return raw_dir / "train_images" / str(patient_id) / f"{image_id}.dcm"


def find_images(raw_dir: Path) -> set[Path]:
    """Every .dcm under train_images/ (one directory listing per patient)."""
    root = raw_dir / "train_images"
    if not root.is_dir():
        raise FrugalmedError(f"{root} does not exist: RSNA raw_dir must hold train_images/")
    found: set[Path] = set()
    for patient in os.scandir(root):
        if patient.is_dir():
            found.update(Path(e.path) for e in os.scandir(patient.path) if e.name.endswith(".dcm"))
    return found


def preprocess_rsna(
    raw_dir: str | os.PathLike[str],
    outputs: Mapping[str, str],
    *,
    max_age: float,
    label: str,
    spec: ImageSpec,
    splits: Mapping[str, float],
    max_reject_fraction: float,
    threads: int = 1,
    dataset: str = "rsna",
) -> pd.DataFrame:
    """Write manifest, images_s{s}.npy, rejects.csv and selection.json; returns the manifest."""
    raw = Path(raw_dir)
    table = read_train_csv(raw / "train.csv")
    selected, counts = select_rows(table, max_age, label)
    log.info("selection: %s", counts)

    on_disk = find_images(raw)
    listed = {image_path(raw, p, i) for p, i in zip(table["patient_id"], table["image_id"])}
    orphans = sorted(on_disk - listed)
    paths = [image_path(raw, p, i) for p, i in zip(selected["patient_id"], selected["image_id"])]
    has_file = np.array([p in on_disk for p in paths], dtype=bool)
    todo = selected[has_file].reset_index(drop=True)
    todo_paths = [str(p) for p, ok in zip(paths, has_file) if ok]
    n_inputs = len(selected) + len(orphans)
    log.info("%d selected rows, %d with a file; %d files without a row", len(selected),
             len(todo), len(orphans))

    fields = {c: todo[c].tolist()  # plain Python values, one list per column
              for c in ["patient_id", "label"] + [c for c in MANIFEST_COLUMNS if c in todo.columns]}
    sides = {s: spec.image_size // s for s in spec.scales}
    with DatasetWriter(outputs, sides, dataset=dataset) as writer:
        for path in orphans:
            writer.reject(path, "no row in train.csv")
        for path, ok in zip(paths, has_file):
            if not ok:
                writer.reject(path, "listed in train.csv but file missing")
        reduced = 0
        outcomes = ordered_map(partial(process_image, spec=spec), todo_paths, threads)
        for i, outcome in enumerate(outcomes):
            if outcome.images is None:
                writer.reject(todo_paths[i], outcome.reason, outcome.detail)
            else:
                record = {c: values[i] for c, values in fields.items()}
                writer.add({**record, "sample_id": f"{record['patient_id']}_{record['image_id']}",
                            "source_file": todo_paths[i], "photometric": outcome.photometric,
                            "transfer_syntax": outcome.transfer_syntax,
                            "reduced_decode": outcome.reduced_decode}, outcome.images)
                reduced += outcome.reduced_decode
            if (i + 1) % 1000 == 0:
                log.info("processed %d / %d images", i + 1, len(todo_paths))
        writer.check_reject_fraction(len(writer.rejects), n_inputs, max_reject_fraction,
                                     unit="RSNA inputs")

        def summary(manifest: pd.DataFrame) -> dict:
            reasons = Counter(reason for _, reason, _ in writer.rejects)
            return {
                **counts,
                "files_without_csv_row": len(orphans),
                "csv_rows_without_file": int((~has_file).sum()),
                "rejected": len(writer.rejects),
                "rejected_by_reason": dict(reasons),
                "kept": int(len(manifest)),
                "kept_positives": int(manifest["label"].sum()),
                "reduced_resolution_decodes": reduced,
                "splits": {s: int(n) for s, n in manifest["split"].value_counts().sort_index().items()},
                "image_size": spec.image_size,
                "scales": list(spec.scales),
            }

        return writer.finish(columns=MANIFEST_COLUMNS, splits=splits, selection=summary)


def spec_from_config(rsna: Mapping) -> ImageSpec:
    return ImageSpec(
        image_size=int(rsna["image_size"]),
        scales=tuple(int(s) for s in rsna["scales"]),
        crop_breast=bool(rsna.get("crop_breast", True)),
        flip_left=bool(rsna.get("flip_left", True)),
        j2k_reduce=bool(rsna.get("j2k_reduce", True)),
    )

