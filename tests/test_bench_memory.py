"""The memory benchmark's process-tree sampler (benchmarks/bench_memory_child.py).

The RSNA memory benchmark runs the preprocessing with worker processes; its growth figure is
only honest if the sampler adds up the workers' memory. These tests catch a sampler that looks
at the parent alone (a worker's allocation would be invisible) or that does not notice a
process that has gone.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

if not Path("/proc/self/smaps_rollup").exists():
    pytest.skip("needs Linux /proc/PID/smaps_rollup", allow_module_level=True)

from bench_memory_child import TreeSampler, descendants, pss_mb  # noqa: E402

ALLOCATE = "import time; b = bytearray(60 * 2**20); b[::4096] = b'x' * len(b[::4096]); print(1, flush=True); time.sleep(30)"


def test_tree_sampler_counts_a_child_process_memory() -> None:
    sampler = TreeSampler()
    child = subprocess.Popen([sys.executable, "-c", ALLOCATE], stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline().strip() == b"1"  # the 60 MB are touched
        assert child.pid in descendants(sampler.me.pid)
        sampler.sample()
        assert child.pid in sampler.pids_seen
        assert sampler.peak - sampler.floor >= 55  # the child's private 60 MB, counted once
    finally:
        child.kill()
        child.wait()


def test_pss_of_a_gone_process_is_none() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    time.sleep(0.05)
    assert pss_mb(child.pid) is None
    assert pss_mb(1 << 30) is None  # no such pid
