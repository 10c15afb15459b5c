"""Shared pytest fixtures: paths of the repository and its configs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# One thread per test process for torch/OpenMP and the BLAS libraries, set before anything
# imports them. Tests check results, not speed, and on a shared or busy machine (CI's 2 cores,
# pytest-xdist workers side by side) OpenMP's waiting threads make the small tensor ops of
# tests 10-20x slower (measured: one act8 EfficientNet step 0.11 s at 1 thread, 2.3 s at 2
# threads with the other core busy). Override by setting the variables before running pytest.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def snakemake_exe() -> str:
    """The snakemake of the interpreter running the tests (the project's venv)."""
    exe = Path(sys.executable).with_name("snakemake")
    return str(exe) if exe.exists() else "snakemake"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that runs Snakemake is `slow` (a dry run alone costs seconds): any test that
    uses the snakemake_exe fixture, directly or through another fixture, is marked here, so
    none can slip into the inner loop `pytest -m "not slow"` (docs/testing.md)."""
    for item in items:
        if "snakemake_exe" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _no_network_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep libraries offline in every test (hub downloads fail fast instead of hanging)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CODECARBON_LOG_LEVEL", os.environ.get("CODECARBON_LOG_LEVEL", "error"))


def usable_cpus() -> int:
    """CPUs this process may really use: its affinity, capped by a cgroup v2 CPU quota.

    pytest-xdist's `-n auto` counts the host's cores through psutil, which in a container is
    the whole host's (CI: 48 cores for a job given 2), so 48 workers would share 2 CPUs.
    """
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = None
    try:  # cgroup v2
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if text[0] != "max":
            quota = int(text[0]) / int(text[1])
    except (OSError, ValueError, IndexError):
        try:  # cgroup v1
            q = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
            p = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
            quota = q / p if q > 0 and p > 0 else None
        except (OSError, ValueError):
            pass
    if quota is not None:
        count = min(count, max(1, int(quota)))
    return max(1, count)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker per usable CPU (see usable_cpus); PYTEST_XDIST_AUTO_NUM_WORKERS wins."""
    env = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")
    return int(env) if env and env.isdigit() else usable_cpus()
