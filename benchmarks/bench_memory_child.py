"""Child process of bench_memory / bench_lidc: preprocess one cohort, print what was done as one
JSON line.

    bench_memory_child.py RAW_DIR OUT_DIR IMAGE_SIZE SCALES             # RSNA (bench_memory)
    bench_memory_child.py lidc RAW_DIR OUT_DIR PATCH_SIZE [PATIENTS]   # LIDC (bench_lidc)

Run as its own process so that its peak RSS is that of this preprocessing alone.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from pathlib import Path

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


def main(raw_dir: str, out_dir: str, image_size: str, scales: str) -> None:
    import bench_frugalmed_rsna
    import frugalmed.rsna.preprocess  # noqa: F401 - imports counted in the floor below

    after_imports = vm_hwm_mb()
    anon_after_imports = _status_mb("RssAnon")
    start = time.perf_counter()
    with AnonSampler() as anon:
        kept = bench_frugalmed_rsna.preprocess_cohort(
            Path(raw_dir), Path(out_dir), int(image_size), [int(s) for s in scales.split(",")], threads=1)
    print(json.dumps({"kept": kept, "seconds": time.perf_counter() - start,
                      "peak_rss_mb": vm_hwm_mb(), "rss_after_imports_mb": after_imports,
                      "peak_anon_mb": anon.peak, "anon_after_imports_mb": anon_after_imports,
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
