"""Memory scale: growth above the import floor of frugalmed's RSNA preprocessing, with its
worker processes, for a small and a 10x larger cohort of full-size mammograms.

The preprocessing writes each image into its output .npy files as it goes (positioned writes,
not memory maps), and the pool keeps at most a few images per worker in flight, so the memory
it adds should not grow with the number of images. Each size runs in a fresh child process
(bench_memory_child.py) that runs the preprocessing with `workers` processes, as the workflow
does, and reports:
- the growth above the import floor: the peak, sampled every 10 ms, of the summed proportional
  set size (Pss) of the child and its workers, minus the child's Pss after its imports (the
  tree is the child alone then). Pss splits pages shared after fork among the processes, so
  the sum counts each page once (resident sets cannot be added up);
- the writing process's own peak resident set (VmHWM from /proc/self/status; ru_maxrss from
  os.wait4 is not used because Linux carries the parent's high-water mark into a vforked child
  across exec) and its VmHWM after imports, and its peak anonymous resident memory (RssAnon,
  which leaves out file-backed pages such as those of a memory-mapped output).

Why growth above the floor and not peak RSS: the floor (Python, numpy, pydicom, decoders) is
most of the peak and the same at every size, so a ratio of peaks hides growth; the growth is
what the cohort size could drive.
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


def measure(raw_dir: Path, out_dir: Path, image_size: int, scales: list[int], workers: int) -> dict[str, Any]:
    """Run the preprocessing in a child process; return what it reported (MB, seconds)."""
    cmd = [sys.executable, str(HERE / "bench_memory_child.py"), str(raw_dir), str(out_dir),
           str(image_size), ",".join(map(str, scales)), str(workers)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=HERE)
        proc.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"preprocessing child failed ({proc.returncode}): {stderr.strip()[-400:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    if workers > 1 and result["worker_processes_seen"] < 1:
        raise RuntimeError(f"asked for {workers} workers but the sampler saw no worker process")
    return result


def _ratio(a: float, b: float) -> float | None:
    return a / b if a > 0 and b > 0 else None


def run(sizes: tuple[int, int], rows: int, cols: int, image_size: int, scales: list[int],
        scratch: Path | None = None, workers: int = 2) -> dict[str, Any]:
    """Memory at each cohort size (images in total, half per transfer syntax)."""
    results = {}
    for n in sizes:
        root = Path(scratch or tempfile.gettempdir()) / f"frugalmed-bench-mem-{n}-{rows}x{cols}"
        build_cohort(root, CohortSpec(n_images=n // 2, rows=rows, cols=cols, n_unique=8))
        with tempfile.TemporaryDirectory(prefix="frugalmed-bench-memout-", dir=scratch) as out:
            results[n] = measure(root, Path(out), image_size, scales, workers)
        if results[n]["kept"] != n:
            raise RuntimeError(f"kept {results[n]['kept']} of {n} images")
    small, large = sizes
    return {"sizes": list(sizes), "rows": rows, "cols": cols, "workers": workers, "by_size": results,
            "growth_ratio": _ratio(results[large]["growth_mb"], results[small]["growth_mb"]),
            "growth_difference_mb": results[large]["growth_mb"] - results[small]["growth_mb"],
            "ratio": results[large]["peak_rss_mb"] / results[small]["peak_rss_mb"],
            "anon_ratio": results[large]["peak_anon_mb"] / results[small]["peak_anon_mb"]}
