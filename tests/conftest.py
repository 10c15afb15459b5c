"""Shared pytest fixtures: paths of the repository and its configs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def snakemake_exe() -> str:
    """The snakemake of the interpreter running the tests (the project's venv)."""
    exe = Path(sys.executable).with_name("snakemake")
    return str(exe) if exe.exists() else "snakemake"


@pytest.fixture(autouse=True)
def _no_network_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep libraries offline in every test (hub downloads fail fast instead of hanging)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CODECARBON_LOG_LEVEL", os.environ.get("CODECARBON_LOG_LEVEL", "error"))
