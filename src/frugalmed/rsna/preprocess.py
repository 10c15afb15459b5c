"""RSNA preprocessing: train.csv + DICOMs -> manifest.csv, images_s{scale}.npy, rejects, selection.

Images are decoded in a process pool and written, in manifest order, straight into
preallocated .npy files with positioned writes, so peak memory does not grow with the cohort (RSNA has
~54,000 images). Every input that cannot be used goes to rejects.csv with its reason; the run
fails only if more than max_reject_fraction of the inputs are rejected.
"""

from __future__ import annotations

import logging
import os
import tempfile
import traceback
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np
import pandas as pd

from frugalmed.atomic import write_csv, write_json
from frugalmed.errors import FrugalmedError
from frugalmed.rsna.decode import RejectedImage, decode_mammogram
from frugalmed.rsna.resize import standardise
from frugalmed.rsna.selection import read_train_csv, select_rows
from frugalmed.splits import assign_patient_splits

log = logging.getLogger(__name__)

MANIFEST_FIRST = ["sample_id", "patient_id", "split", "label", "image_id", "laterality", "view",
                  "age", "BIRADS", "cancer", "source_file"]
MANIFEST_EXTRA = ["site_id", "machine_id", "density", "implant", "biopsy", "invasive",
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


def run_ordered(paths: list[str], spec: ImageSpec, threads: int) -> Iterator[Outcome]:
    """Outcomes in input order; at most a few per worker in flight, so memory stays flat."""
    if threads <= 1:
        for path in paths:
            yield process_image(path, spec)
        return
    with ProcessPoolExecutor(max_workers=threads) as pool:
        pending: deque = deque()
        jobs = iter(paths)
        for path in jobs:
            pending.append(pool.submit(process_image, path, spec))
            if len(pending) >= 4 * threads:
                break
        while pending:
            yield pending.popleft().result()
            nxt = next(jobs, None)
            if nxt is not None:
                pending.append(pool.submit(process_image, nxt, spec))


class NpyRows:
    """A (n, h, w) uint8 .npy written row by row with positioned writes, renamed when complete.

    Plain pwrite()s, not a memory map: written pages are page cache the kernel can flush and
    drop, never part of this process's RSS, so memory stays flat however many rows there are
    (a memmap keeps every dirty page mapped, which counts against SLURM memory limits).
    """

    copy_rows = 1024  # rows per chunk when trimming: memory stays flat

    def __init__(self, path: str | os.PathLike[str], n_rows: int, side: int) -> None:
        self.final = Path(path)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.side = side
        self.row_bytes = side * side
        self.tmp, self._fd, self._offset = self._create(max(n_rows, 1))

    def _create(self, n_rows: int) -> tuple[Path, int, int]:
        """A temp .npy of n_rows rows (header written, data sized); its path, fd, data offset."""
        fd, tmp = tempfile.mkstemp(prefix=f".{self.final.name}.", suffix=".partial", dir=self.final.parent)
        try:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
                      "shape": (n_rows, self.side, self.side)}
            with os.fdopen(os.dup(fd), "wb") as fh:
                np.lib.format.write_array_header_1_0(fh, header)
                offset = fh.tell()
            os.ftruncate(fd, offset + n_rows * self.row_bytes)  # unwritten rows read as zeros
        except BaseException:
            os.close(fd)
            Path(tmp).unlink(missing_ok=True)
            raise
        return Path(tmp), fd, offset

    def write(self, index: int, row: np.ndarray) -> None:
        data = np.ascontiguousarray(row, dtype=np.uint8)
        if data.shape != (self.side, self.side):
            raise ValueError(f"row {index} has shape {data.shape}, expected {(self.side, self.side)}")
        _pwrite_all(self._fd, memoryview(data).cast("B"), self._offset + index * self.row_bytes)

    def finish(self, n_rows: int) -> None:
        """Keep the first n_rows (rows of rejected images were never filled) and publish."""
        capacity = (os.fstat(self._fd).st_size - self._offset) // self.row_bytes
        if n_rows != capacity:
            tmp, fd, offset = self._create(n_rows)
            try:
                chunk = self.copy_rows * self.row_bytes
                for start in range(0, n_rows * self.row_bytes, chunk):
                    size = min(chunk, n_rows * self.row_bytes - start)
                    _pwrite_all(fd, os.pread(self._fd, size, self._offset + start), offset + start)
            except BaseException:
                os.close(fd)
                tmp.unlink(missing_ok=True)
                raise
            self.discard()
            self.tmp, self._fd, self._offset = tmp, fd, offset
        os.close(self._fd)
        self._fd = -1
        os.chmod(self.tmp, 0o644)  # mkstemp creates 0600
        os.replace(self.tmp, self.final)

    def discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.tmp.unlink(missing_ok=True)


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """os.pwrite until every byte is written (it may write fewer than asked)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


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


def check_rejects(rejects: pd.DataFrame, n_inputs: int, max_fraction: float) -> None:
    """Fail, naming the commonest reasons, if too large a share of the inputs was rejected."""
    if n_inputs == 0:
        raise FrugalmedError("no RSNA images left to preprocess (see selection.json)")
    fraction = len(rejects) / n_inputs
    if fraction > max_fraction:
        top = Counter(rejects["reason"]).most_common(3)
        reasons = "; ".join(
            f"{reason} ({count}x, e.g. {rejects.loc[rejects['reason'] == reason, 'source_file'].iloc[0]})"
            for reason, count in top
        )
        raise FrugalmedError(
            f"{len(rejects)} of {n_inputs} RSNA inputs ({fraction:.1%}) were rejected, more than "
            f"datasets.rsna.max_reject_fraction = {max_fraction:g}. Commonest reasons: {reasons}. "
            "Fix the inputs, or raise max_reject_fraction to accept the loss."
        )


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
) -> pd.DataFrame:
    """Write manifest, images_s{s}.npy, rejects.csv and selection.json; returns the manifest."""
    raw = Path(raw_dir)
    table = read_train_csv(raw / "train.csv")
    selected, counts = select_rows(table, max_age, label)
    log.info("selection: %s", counts)

    on_disk = find_images(raw)
    listed = {image_path(raw, p, i) for p, i in zip(table["patient_id"], table["image_id"])}
    reject_rows = [(str(p), "no row in train.csv", "") for p in sorted(on_disk - listed)]
    paths = [image_path(raw, p, i) for p, i in zip(selected["patient_id"], selected["image_id"])]
    has_file = np.array([p in on_disk for p in paths], dtype=bool)
    reject_rows += [(str(p), "listed in train.csv but file missing", "")
                    for p, ok in zip(paths, has_file) if not ok]
    todo = selected[has_file].reset_index(drop=True)
    todo_paths = [str(p) for p, ok in zip(paths, has_file) if ok]
    n_inputs = len(selected) + len(on_disk - listed)
    log.info("%d selected rows, %d with a file; %d files without a row", len(selected),
             len(todo), len(on_disk - listed))

    for s in spec.scales:  # temp files of a killed earlier run
        final = Path(outputs[f"images_s{s}"])
        for stale in final.parent.glob(f".{final.name}.*.partial"):
            stale.unlink(missing_ok=True)
    writers = {s: NpyRows(outputs[f"images_s{s}"], len(todo), spec.image_size // s) for s in spec.scales}
    kept: list[int] = []
    extra: list[dict] = []
    try:
        for i, outcome in enumerate(run_ordered(todo_paths, spec, threads)):
            if outcome.images is None:
                reject_rows.append((todo_paths[i], outcome.reason, outcome.detail))
                continue
            for s, writer in writers.items():
                writer.write(len(kept), outcome.images[s])
            kept.append(i)
            extra.append({"photometric": outcome.photometric,
                          "transfer_syntax": outcome.transfer_syntax,
                          "reduced_decode": outcome.reduced_decode})
            if (i + 1) % 1000 == 0:
                log.info("processed %d / %d images", i + 1, len(todo_paths))
        rejects = pd.DataFrame(reject_rows, columns=["source_file", "reason", "detail"])
        check_rejects(rejects, n_inputs, max_reject_fraction)
        for writer in writers.values():
            writer.finish(len(kept))
    except BaseException:
        for writer in writers.values():
            writer.discard()
        raise

    manifest = _manifest(todo.iloc[kept].reset_index(drop=True), pd.DataFrame(extra),
                         [todo_paths[i] for i in kept], splits)
    write_csv(outputs["rejects"], rejects)
    counts.update({
        "files_without_csv_row": int((rejects["reason"] == "no row in train.csv").sum()),
        "csv_rows_without_file": int((~has_file).sum()),
        "rejected": int(len(rejects)),
        "rejected_by_reason": dict(Counter(rejects["reason"])),
        "kept": int(len(manifest)),
        "kept_positives": int(manifest["label"].sum()),
        "reduced_resolution_decodes": int(manifest["reduced_decode"].sum()),
        "splits": {s: int(n) for s, n in manifest["split"].value_counts().sort_index().items()},
        "image_size": spec.image_size,
        "scales": list(spec.scales),
    })
    write_json(outputs["selection"], counts)
    write_csv(outputs["manifest"], manifest)
    log.info("kept %d images (%d positive); rejected %d: %s", len(manifest),
             counts["kept_positives"], len(rejects), counts["rejected_by_reason"])
    return manifest


def _manifest(rows: pd.DataFrame, extra: pd.DataFrame, sources: list[str],
              splits: Mapping[str, float]) -> pd.DataFrame:
    """The manifest in array order: contract columns first, then the other RSNA fields."""
    rows = rows.assign(
        sample_id=[f"{p}_{i}" for p, i in zip(rows["patient_id"], rows["image_id"])],
        source_file=sources,
    )
    for column in extra.columns:
        rows[column] = extra[column].to_numpy()
    fractions = {k: float(splits[k]) for k in ("train", "val", "test")}
    rows["split"] = assign_patient_splits(rows["patient_id"], rows["label"], fractions,
                                          int(splits.get("seed", 0)),
                                          groups=rows.get("site_id")).to_numpy()  # label x site
    columns = MANIFEST_FIRST + [c for c in MANIFEST_EXTRA if c in rows.columns]
    return rows[columns]


def spec_from_config(rsna: Mapping) -> ImageSpec:
    return ImageSpec(
        image_size=int(rsna["image_size"]),
        scales=tuple(int(s) for s in rsna["scales"]),
        crop_breast=bool(rsna.get("crop_breast", True)),
        flip_left=bool(rsna.get("flip_left", True)),
        j2k_reduce=bool(rsna.get("j2k_reduce", True)),
    )

