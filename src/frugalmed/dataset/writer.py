"""One writer for every dataset kind: row-aligned uint8 arrays, manifest, rejects, selection.

Rows arrive one at a time, in manifest order, from whatever decodes them (RSNA's process pool,
LIDC's scans, a user's table). Each image is appended to its scale's ``.npy`` at once, so
memory holds one row, not the cohort, and nothing needs the row count in advance (LIDC only
knows it at the end). Nothing appears under a final name until every output is complete: the
arrays grow in hidden ``.partial`` files beside their targets and are renamed at the end, the
CSV and JSON files are written atomically (frugalmed.atomic).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from frugalmed.atomic import write_csv, write_json
from frugalmed.dataset.outputs import MANIFEST_FIRST, REJECT_COLUMNS, image_outputs
from frugalmed.dataset.splits import split_column
from frugalmed.errors import FrugalmedError

log = logging.getLogger(__name__)


def npy_header(n_rows: int, side: int) -> bytes:
    """The .npy (format 1.0) header of a C-ordered (n_rows, side, side) uint8 array."""
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {
        "descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
        "fortran_order": False,
        "shape": (n_rows, side, side),
    })  # fmt: skip
    return buffer.getvalue()


class NpyAppender:
    """A (n, side, side) uint8 .npy grown one row at a time; published under its name by finish().

    Plain file writes, not a memory map: written pages are page cache the kernel can flush and
    drop, never part of this process's resident memory (a memmap keeps every dirty page mapped,
    which counts against SLURM memory limits). numpy pads the header so that the row count can
    grow to 20 digits without changing its length; finish() rewrites it in place.
    """

    copy_rows = 1024  # rows per chunk if the header ever had to grow (memory stays flat)

    def __init__(self, path: str | os.PathLike[str], side: int) -> None:
        self.final = Path(path)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        for stale in self.final.parent.glob(f".{self.final.name}.*.partial"):
            stale.unlink(missing_ok=True)  # left by a killed earlier run
        self.side = side
        self.row_bytes = side * side
        self.n_rows = 0
        fd, name = tempfile.mkstemp(prefix=f".{self.final.name}.", suffix=".partial",
                                    dir=self.final.parent)
        self.tmp, self._fd = Path(name), fd
        header = npy_header(0, side)
        _write_all(self._fd, header, 0)
        self._offset = len(header)

    def append(self, row: np.ndarray) -> None:
        data = np.ascontiguousarray(row, dtype=np.uint8)
        if data.shape != (self.side, self.side):
            raise ValueError(f"{self.final.name}: row {self.n_rows} has shape {data.shape}, "
                             f"expected {(self.side, self.side)}")
        _write_all(self._fd, memoryview(data).cast("B"), self._offset + self.n_rows * self.row_bytes)
        self.n_rows += 1

    def finish(self) -> Path:
        """Write the final header, flush to disk and rename onto the final path."""
        header = npy_header(self.n_rows, self.side)
        if len(header) != self._offset:  # not with numpy's growth padding; kept for safety
            self._rewrite_with(header)
        else:
            _write_all(self._fd, header, 0)
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        os.chmod(self.tmp, 0o666 & ~_umask())  # mkstemp creates 0600; outputs are shared results
        os.replace(self.tmp, self.final)
        return self.final

    def _rewrite_with(self, header: bytes) -> None:
        fd, name = tempfile.mkstemp(prefix=f".{self.final.name}.", suffix=".partial",
                                    dir=self.final.parent)
        try:
            _write_all(fd, header, 0)
            total, chunk = self.n_rows * self.row_bytes, self.copy_rows * self.row_bytes
            for start in range(0, total, chunk):
                size = min(chunk, total - start)
                _write_all(fd, os.pread(self._fd, size, self._offset + start), len(header) + start)
        except BaseException:
            os.close(fd)
            Path(name).unlink(missing_ok=True)
            raise
        self.discard()
        self.tmp, self._fd, self._offset = Path(name), fd, len(header)

    def discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.tmp.unlink(missing_ok=True)


def _write_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """os.pwrite until every byte is written (it may write fewer than asked)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class DatasetWriter:
    """The outputs of one dataset, filled row by row; nothing is published unless finish() runs.

    Use as a context manager: an exception inside the block discards the partial arrays.

        with DatasetWriter(outputs, sides, dataset="mycohort") as writer:
            writer.add({"sample_id": ..., "patient_id": ..., "label": 1, "source_file": ...},
                       {1: image_s1, 2: image_s2})
            writer.reject(path, "unreadable DICOM file", "InvalidDicomError: ...")
            writer.check_reject_fraction(len(writer.rejects), n_inputs, limit)
            manifest = writer.finish(columns=[...], splits=config["splits"], selection={...})
    """

    def __init__(self, outputs: Mapping[str, str], sides: Mapping[int, int], *, dataset: str) -> None:
        self.outputs = dict(outputs)
        self.dataset = dataset
        paths = image_outputs(self.outputs)
        if set(paths) != set(sides):
            raise ValueError(f"images_s* outputs {sorted(paths)} do not match scales {sorted(sides)}")
        self.arrays = {scale: NpyAppender(paths[scale], sides[scale]) for scale in sorted(sides)}
        # manifest fields column by column (one list per field, not a dict per row: a third of
        # the memory for RSNA's 54,000 rows); a field a row lacks is None there
        self.columns: dict[str, list[Any]] = {}
        self.n_rows = 0
        self.rejects: list[tuple[str, str, str]] = []

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is not None:
            self.discard()

    def add(self, row: Mapping[str, Any], images: Mapping[int, np.ndarray]) -> None:
        """Append one sample: its manifest fields and its image at every scale (row i = image i)."""
        for scale, array in self.arrays.items():
            array.append(images[scale])
        for key, value in row.items():
            self.columns.setdefault(key, [None] * self.n_rows).append(value)
        self.n_rows += 1
        for column in self.columns.values():
            if len(column) < self.n_rows:  # a field this row lacks
                column.append(None)

    def reject(self, source_file: str | os.PathLike[str], reason: str, detail: str = "", *,
               quiet: bool = False) -> None:
        """Record an input that was not used (rejects.csv): what, a short reason, the specifics.

        Logged as a warning unless `quiet` (when the worker that found it has logged it).
        """
        self.rejects.append((str(source_file), reason, str(detail)))
        if not quiet:
            log.warning("rejected %s: %s%s", source_file, reason, f" ({detail})" if detail else "")

    def rejects_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rejects, columns=list(REJECT_COLUMNS))

    def check_reject_fraction(self, rejected: int, inputs: int, limit: float, *,
                              unit: str = "inputs", hint: str = "") -> None:
        """Fail, naming the commonest reasons, if more than `limit` of the inputs were rejected."""
        key = f"datasets.{self.dataset}.max_reject_fraction"
        if inputs == 0:
            raise FrugalmedError(f"dataset {self.dataset}: no {unit} to preprocess (see selection.json)")
        fraction = rejected / inputs
        if fraction <= limit:
            return
        frame = self.rejects_frame()
        reasons = "; ".join(
            f"{reason} ({count}x, e.g. {frame.loc[frame['reason'] == reason, 'source_file'].iloc[0]})"
            for reason, count in Counter(frame["reason"]).most_common(3)
        )
        raise FrugalmedError(
            f"{rejected} of {inputs} {unit} of dataset {self.dataset} ({fraction:.1%}) were "
            f"rejected, more than {key} = {limit:g}. Commonest reasons: {reasons}. "
            + (hint or "Fix the inputs, or raise max_reject_fraction to accept the loss.")
        )

    def finish(self, *, columns: Sequence[str], splits: Mapping[str, Any],
               selection: Mapping[str, Any] | Callable[[pd.DataFrame], Mapping[str, Any]],
               given_splits: bool = False) -> pd.DataFrame:
        """Publish everything; return the manifest.

        The manifest's columns are MANIFEST_FIRST, then `columns` (the kind's own, in order),
        each present row field once. `split` is assigned by patient unless `given_splits`
        (then the rows' own `split`, checked). selection.json gets the kind's `selection` (or
        what it returns for the finished manifest, when it is a function) plus the counts every
        kind shares: kept, kept_positives, rejected, rejected_by_reason, split_counts.
        """
        if not self.n_rows:
            raise FrugalmedError(f"dataset {self.dataset}: no usable sample; see "
                                 f"{self.outputs['rejects']} for why each input was rejected")
        manifest = self._manifest(columns, splits, given_splits)
        rejects = self.rejects_frame()
        summary = selection(manifest) if callable(selection) else selection
        summary = {**summary, **self._counts(manifest, rejects)}
        for array in self.arrays.values():  # everything is computed: publish
            array.finish()
        write_csv(self.outputs["rejects"], rejects)
        write_json(self.outputs["selection"], summary)
        write_csv(self.outputs["manifest"], manifest)
        log.info("dataset %s: kept %d samples (%d positive); rejected %d: %s", self.dataset,
                 len(manifest), int(manifest["label"].sum()), len(rejects),
                 dict(Counter(rejects["reason"])))
        return manifest

    def discard(self) -> None:
        for array in self.arrays.values():
            array.discard()

    def _manifest(self, columns: Sequence[str], splits: Mapping[str, Any],
                  given_splits: bool) -> pd.DataFrame:
        rows = pd.DataFrame(self.columns)
        missing = [c for c in MANIFEST_FIRST if c not in rows.columns and c != "split"]
        if missing:
            raise ValueError(f"manifest rows lack {missing}")
        rows["split"] = split_column(rows, splits, given=given_splits,
                                     where=f"dataset {self.dataset}").to_numpy()
        order = list(MANIFEST_FIRST) + [c for c in columns if c not in MANIFEST_FIRST]
        order += [c for c in rows.columns if c not in order]
        return rows[[c for c in order if c in rows.columns]]

    @staticmethod
    def _counts(manifest: pd.DataFrame, rejects: pd.DataFrame) -> dict[str, Any]:
        return {
            "kept": int(len(manifest)),
            "kept_positives": int(manifest["label"].sum()),
            "rejected": int(len(rejects)),
            "rejected_by_reason": dict(Counter(rejects["reason"])),
            "split_counts": {
                split: {"samples": int(len(part)), "patients": int(part["patient_id"].nunique()),
                        "positives": int(part["label"].sum())}
                for split, part in manifest.groupby("split", sort=True)
            },
        }
