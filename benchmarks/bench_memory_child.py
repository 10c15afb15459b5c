"""Child process of bench_memory / bench_lidc: preprocess one cohort, print what was done as one
JSON line.

    bench_memory_child.py RAW_DIR OUT_DIR IMAGE_SIZE SCALES [WORKERS]   # RSNA (bench_memory)
    bench_memory_child.py lidc RAW_DIR OUT_DIR PATCH_SIZE [PATIENTS]    # LIDC (bench_lidc)

Run as its own process so that its peak RSS is that of this preprocessing alone.

With worker processes the parent's resident set says nothing about the workers, and the
resident sets of forked processes cannot be added up (pages shared after fork count in each).
`TreeSampler` therefore adds up the proportional set size (Pss, /proc/PID/smaps_rollup: each
shared page split among the processes that map it) of this process and all its descendants.
Before the pool starts the tree is this process alone, so its Pss after imports is the floor,
and the peak of the tree's Pss minus that floor is the memory the preprocessing added: the
growth above the import floor.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent / "src"))


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def vm_hwm_mb() -> float:
    """Peak resident set of this process since its exec (Linux /proc/self/status VmHWM).

    Not ru_maxrss: Linux carries the parent's high-water mark into a (v)forked child across
    exec, so a child started by a big parent reports the parent's peak there.
    """
    return _status_mb("VmHWM")


class AnonSampler:
    """Peak anonymous resident memory (RssAnon), sampled every `period` seconds.

    VmHWM also counts file-backed pages (memory-mapped files such as the loaded libraries),
    which the kernel can drop at any time; RssAnon is the memory the process really holds.
    """

    def __init__(self, period: float = 0.01) -> None:
        self.period, self.peak = period, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _status_mb("RssAnon"))
            self._stop.wait(self.period)

    def __enter__(self) -> "AnonSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_mb("RssAnon"))


def pss_mb(pid: int) -> float | None:
    """Proportional set size of process `pid` in MB (None once it has gone)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return None  # an exiting process has an empty smaps_rollup


def descendants(pid: int) -> list[int]:
    """Process ids below `pid`, from /proc/PID/task/TID/children (cheap: psutil's children()
    scans every process of the machine), else through psutil."""
    try:
        found = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found += [int(child), *descendants(int(child))]
        return found
    except (FileNotFoundError, ProcessLookupError):  # gone, or a kernel without CONFIG_PROC_CHILDREN
        try:
            return [c.pid for c in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return []


class TreeSampler:
    """Peak over time of the summed Pss of this process and its descendants, sampled every
    `period` seconds; also the peak anonymous RSS of this process alone.

    A sample can miss a peak shorter than `period`; the floor is taken at construction.
    """

    def __init__(self, period: float = 0.01) -> None:
        self.period = period
        self.me = psutil.Process()
        self.floor = pss_mb(self.me.pid) or 0.0
        self.peak = self.floor
        self.anon_peak = 0.0
        self.pids_seen: set[int] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        children = descendants(self.me.pid)
        self.pids_seen.update(children)
        total = sum(v for v in (pss_mb(p) for p in [self.me.pid, *children]) if v is not None)
        self.peak = max(self.peak, total)
        self.anon_peak = max(self.anon_peak, _status_mb("RssAnon"))
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.period)

    def __enter__(self) -> "TreeSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def main(raw_dir: str, out_dir: str, image_size: str, scales: str, workers: str = "1") -> None:
    import bench_frugalmed_rsna
    import frugalmed.rsna.preprocess  # noqa: F401 - imports counted in the floor below

    hwm_after_imports = vm_hwm_mb()
    anon_after_imports = _status_mb("RssAnon")
    start = time.perf_counter()
    with TreeSampler() as tree:
        kept = bench_frugalmed_rsna.preprocess_cohort(
            Path(raw_dir), Path(out_dir), int(image_size), [int(s) for s in scales.split(",")],
            threads=int(workers))
    print(json.dumps({
        "kept": kept, "seconds": time.perf_counter() - start, "workers": int(workers),
        "worker_processes_seen": len(tree.pids_seen), "samples": tree.samples,
        # the whole process tree (Pss): what the preprocessing added above the import floor
        "floor_pss_mb": tree.floor, "peak_tree_pss_mb": tree.peak, "growth_mb": tree.peak - tree.floor,
        # this (writing) process alone: exact high-water mark, and sampled anonymous memory
        "peak_rss_mb": vm_hwm_mb(), "rss_after_imports_mb": hwm_after_imports,
        "growth_rss_mb": vm_hwm_mb() - hwm_after_imports,
        "peak_anon_mb": tree.anon_peak, "anon_after_imports_mb": anon_after_imports,
        "worker_children_max_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


def main_lidc(raw_dir: str, out_dir: str, patch_size: str, patients: str = "") -> None:
    """preprocess_lidc (the workflow's function, one worker) of raw_dir, restricted to patients."""
    from frugalmed.lidc.extract import ExtractParams
    from frugalmed.lidc.preprocess import preprocess_lidc

    out = Path(out_dir)
    outputs = {"manifest": str(out / "manifest.csv"), "rejects": str(out / "rejects.csv"),
               "selection": str(out / "selection.json"), "images_s1": str(out / "images_s1.npy")}
    after_imports = vm_hwm_mb()
    anon_after_imports = _status_mb("RssAnon")
    start = time.perf_counter()
    with AnonSampler() as anon:
        summary = preprocess_lidc(raw_dir, outputs, ExtractParams(patch_size=int(patch_size)),
                                  {"train": 0.6, "val": 0.2, "test": 0.2, "seed": 0}, 1.0,
                                  restrict=[p for p in patients.split(",") if p], workers=1)
    print(json.dumps({"patches": summary["patches"], "scans": summary["scans"],
                      "seconds": time.perf_counter() - start, "peak_rss_mb": vm_hwm_mb(),
                      "rss_after_imports_mb": after_imports, "peak_anon_mb": anon.peak,
                      "anon_after_imports_mb": anon_after_imports}))


if __name__ == "__main__":
    if sys.argv[1] == "lidc":
        main_lidc(*sys.argv[2:])
    else:
        main(*sys.argv[1:])
