"""Memory scale: peak RSS of frugalmed's RSNA preprocessing of a small and a 10x larger cohort.

The preprocessing writes each image into its output .npy files as it goes (positioned writes,
not memory maps), so its peak memory should not grow with the number of images. Each size runs in a fresh child process
(one preprocessing process, threads=1) that reports its own peak resident set (VmHWM from
/proc/self/status); ru_maxrss from os.wait4 is not used because Linux carries the parent's
high-water mark into a vforked child across exec. The child also samples its anonymous
resident memory (RssAnon), which leaves out file-backed pages: those of a memory-mapped
output would count in the resident set while mapped (as they did before NpyRows switched
to pwrite; the dataset writer's NpyAppender appends with pwrite too), though they are page cache
the kernel can write back and drop.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_cohort import CohortSpec, build_cohort

HERE = Path(__file__).resolve().parent


def peak_rss_mb(raw_dir: Path, out_dir: Path, image_size: int, scales: list[int]) -> dict[str, Any]:
    """Run the preprocessing in a child process; return its peak RSS (MB) and what it reported."""
    cmd = [sys.executable, str(HERE / "bench_memory_child.py"), str(raw_dir), str(out_dir),
           str(image_size), ",".join(map(str, scales))]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=HERE)
        proc.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"preprocessing child failed ({proc.returncode}): {stderr.strip()[-400:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def run(sizes: tuple[int, int], rows: int, cols: int, image_size: int, scales: list[int],
        scratch: Path | None = None) -> dict[str, Any]:
    """Peak RSS at each cohort size (images in total, half per transfer syntax)."""
    results = {}
    for n in sizes:
        root = Path(scratch or tempfile.gettempdir()) / f"frugalmed-bench-mem-{n}-{rows}x{cols}"
        build_cohort(root, CohortSpec(n_images=n // 2, rows=rows, cols=cols, n_unique=8))
        with tempfile.TemporaryDirectory(prefix="frugalmed-bench-memout-", dir=scratch) as out:
            results[n] = peak_rss_mb(root, Path(out), image_size, scales)
    small, large = sizes
    return {"sizes": list(sizes), "by_size": results,
            "ratio": results[large]["peak_rss_mb"] / results[small]["peak_rss_mb"],
            "anon_ratio": results[large]["peak_anon_mb"] / results[small]["peak_anon_mb"]}
