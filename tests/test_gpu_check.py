"""benchmarks/gpu_check.py in its CPU mode (what CI can run): it says it needs a GPU, runs the
same checks on the CPU paths, passes them, and writes no gpu.md (that table is for GPU runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_cpu_mode(tmp_path):
    out = tmp_path / "gpu.md"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--force-cpu",
                           "--out", str(out), "--scratch", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "needs a CUDA GPU" in proc.stdout
    assert "14 runs" in proc.stdout and "checks passed" in proc.stdout and "FAIL" not in proc.stdout
    assert not out.exists()
