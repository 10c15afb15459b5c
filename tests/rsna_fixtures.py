"""Shared RSNA fixtures: one tiny synthetic RSNA-like cohort per test session.

Imported by tests/test_rsna*.py and tests/test_synthetic_rsna*.py (`from rsna_fixtures import *`).
The cohort is read-only for tests: copy it (copy_cohort) before modifying it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

N_PATIENTS, ROWS, COLS, SEED = 16, 128, 104, 3
SPLITS = {"train": 0.6, "val": 0.2, "test": 0.2, "seed": 0}
_built: dict[str, Path] = {}  # one cohort per session, shared by every importing module


@pytest.fixture(scope="session")
def rsna_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """raw_dir of the tiny synthetic cohort (Kaggle layout + marker)."""
    from frugalmed.synthetic.rsna import synthesize_rsna

    if "raw" not in _built:
        raw = tmp_path_factory.mktemp("rsna") / "raw"
        synthesize_rsna(raw, raw / ".frugalmed_raw_complete", N_PATIENTS, ROWS, COLS, SEED, threads=1)
        _built["raw"] = raw
    return _built["raw"]


def copy_cohort(raw: Path, dest: Path) -> Path:
    shutil.copytree(raw, dest)
    return dest


def outputs_in(folder: Path, scales=(1, 2, 4)) -> dict[str, str]:
    """The preprocessing's output paths (as data_outputs('rsna') names them) under `folder`."""
    return {
        "manifest": str(folder / "manifest.csv"),
        "rejects": str(folder / "rejects.csv"),
        "selection": str(folder / "selection.json"),
        **{f"images_s{s}": str(folder / f"images_s{s}.npy") for s in scales},
    }
