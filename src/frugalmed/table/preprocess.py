"""`kind: table`: labels.csv + image files -> manifest.csv, images_s{scale}.npy, rejects, selection.

Every row of the labels file is one sample. Rows that cannot be used (no file, a repeated file,
a label that is neither value, an unreadable or pixel-less file, a multi-frame file under
`frame: reject`) go to rejects.csv with the reason; the run fails only if more than
`max_reject_fraction` of the rows are rejected. Files are decoded in a process pool and written
in labels-file order by the dataset writer, so memory stays flat whatever the table's size.

Standardisation, in this order (each optional step off unless configured):
`crop_foreground` (the largest bright component, as for mammograms), `flip_left` (the denser
half to the left), to a square (`square: pad` with black, centred; `crop`, the centre square;
`stretch`, no change of the content, the aspect ratio changes), area resize to `image_size`,
then an s x s average pool for every scale s.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from frugalmed.dataset.parallel import ordered_map
from frugalmed.dataset.writer import DatasetWriter
from frugalmed.rsna.decode import RejectedImage
from frugalmed.rsna.resize import average_pool, chest_wall_on_left, crop_to_breast, resize_area, to_uint8
from frugalmed.table.images import read_image
from frugalmed.table.labels import check_labels, plan_rows, read_labels

log = logging.getLogger(__name__)

SQUARE_RULES = ("pad", "crop", "stretch")
#: Manifest columns after the shared first five (frugalmed.dataset.outputs.MANIFEST_FIRST):
#: the labels file's `file` and original label, then its other columns (in its order), then
#: how each file was read.
INFO_COLUMNS = ["image_format", "photometric", "transfer_syntax", "reduced_decode", "frames", "frame"]


@dataclass(frozen=True)
class TableSpec:
    """How every image of a table dataset is read and standardised (datasets.{name} keys)."""

    image_size: int
    scales: tuple[int, ...] = (1,)
    crop_foreground: bool = False
    flip_left: bool = False
    square: str = "pad"
    frame: str = "reject"
    intensity_16bit: str = "stretch"
    j2k_reduce: bool = True


@dataclass
class Outcome:
    """One file's arrays per scale and how it was read, or why it was rejected."""

    images: dict[int, np.ndarray] | None = None
    reason: str = ""
    detail: str = ""
    info: dict[str, Any] | None = None


def to_square(image: np.ndarray, rule: str) -> np.ndarray:
    """pad: black borders, image centred; crop: the centred square; stretch: unchanged."""
    rows, cols = image.shape
    if rule == "stretch" or rows == cols:
        return image
    if rule == "crop":
        side = min(rows, cols)
        top, left = (rows - side) // 2, (cols - side) // 2
        return image[top : top + side, left : left + side]
    side = max(rows, cols)
    out = np.zeros((side, side), dtype=np.float32)
    top, left = (side - rows) // 2, (side - cols) // 2
    out[top : top + rows, left : left + cols] = image
    return out


def standardise_table(image: np.ndarray, spec: TableSpec) -> dict[int, np.ndarray]:
    """uint8 square images {scale: (image_size / scale)^2} of one [0, 1] grey image."""
    if spec.crop_foreground:
        image = crop_to_breast(image)
    if spec.flip_left:
        image = chest_wall_on_left(image)
    base = to_uint8(resize_area(to_square(image, spec.square), spec.image_size))
    return {scale: average_pool(base, scale) for scale in spec.scales}


def process_file(path: str, spec: TableSpec) -> Outcome:
    """Read and standardise one file; never raises (a failure is an Outcome with a reason)."""
    try:
        grey = read_image(path, min_size=spec.image_size, frame=spec.frame,
                          intensity_16bit=spec.intensity_16bit, j2k_reduce=spec.j2k_reduce)
        images = standardise_table(grey.image, spec)
        return Outcome(images, info={
            "image_format": grey.image_format, "photometric": grey.photometric,
            "transfer_syntax": grey.transfer_syntax, "reduced_decode": grey.reduced_decode,
            "frames": grey.frames, "frame": grey.frame,
        })  # fmt: skip
    except RejectedImage as err:
        return Outcome(reason=err.reason, detail=err.detail)
    except Exception as err:  # noqa: BLE001 - one bad file must not stop the others
        log.error("%s: unexpected error\n%s", path, traceback.format_exc())
        return Outcome(reason="processing failed", detail=f"{type(err).__name__}: {err}")


def preprocess_table(
    raw_dir: str | os.PathLike[str],
    labels: str | os.PathLike[str],
    outputs: Mapping[str, str],
    *,
    spec: TableSpec,
    splits: Mapping[str, Any],
    max_reject_fraction: float,
    positive: Any = 1,
    negative: Any = None,
    threads: int = 1,
    dataset: str = "table",
) -> pd.DataFrame:
    """Write manifest, images_s{s}.npy, rejects.csv and selection.json; returns the manifest."""
    table = read_labels(labels, dataset)
    negative = check_labels(table, positive, negative, dataset, labels)
    plan = plan_rows(table, raw_dir, positive, negative, Path(labels).name)
    given = "split" in table.columns
    log.info("%s: %d rows, %d to decode, %d rejected before decoding; splits %s", labels,
             len(table), len(plan.paths), len(plan.rejects), "as given" if given else "assigned")
    extra = [c for c in table.columns if c not in ("file", "patient_id", "label", "split")]
    columns = ["file", "label_value", *extra, *INFO_COLUMNS]
    fields = {c: plan.rows[c].tolist() for c in ["patient_id", "label", "file", "label_value",
                                                 *extra, *(["split"] if given else [])]}
    sample_ids = plan.rows["_file"].tolist()
    sides = {s: spec.image_size // s for s in spec.scales}
    formats: Counter = Counter()
    with DatasetWriter(outputs, sides, dataset=dataset) as writer:
        for source, reason, detail in plan.rejects:
            writer.reject(source, reason, detail)
        outcomes = ordered_map(partial(process_file, spec=spec), plan.paths, threads)
        for i, outcome in enumerate(outcomes):
            if outcome.images is None:
                writer.reject(plan.paths[i], outcome.reason, outcome.detail)
            else:
                record = {c: values[i] for c, values in fields.items()}
                writer.add({**record, "sample_id": sample_ids[i],
                            "source_file": plan.paths[i], **outcome.info}, outcome.images)
                formats[outcome.info["image_format"]] += 1
            if (i + 1) % 1000 == 0:
                log.info("processed %d / %d files", i + 1, len(plan.paths))
        writer.check_reject_fraction(len(writer.rejects), len(table), max_reject_fraction,
                                     unit="rows of the labels file")
        selection = {
            "dataset": dataset,
            "kind": "table",
            "labels": str(labels),
            "raw_dir": str(raw_dir),
            "rows_in_labels": int(len(table)),
            "positive": positive,
            "negative": negative,
            "splits_source": "given" if given else "assigned by patient",
            "formats": dict(formats),
            "image_size": spec.image_size,
            "scales": list(spec.scales),
        }
        return writer.finish(columns=columns, splits=splits, selection=selection,
                             given_splits=given)
