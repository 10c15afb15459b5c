"""RSNA preprocessing speed: frugalmed's per-image preprocessing against decoding alone (the
limit), reduced-resolution JPEG 2000 decoding (the limit at a small target size), and the
naive baseline of the original study (pydicom pixel_array + skimage resize, one process).

Every method runs on every image back to back, in rotating order (bench_timing), so each
reported ratio compares runs made seconds apart on the same file.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import bench_decoders
import bench_frugalmed_rsna
from bench_timing import Paired, time_interleaved, time_repeated


def naive_baseline(image_size: int) -> Callable[[Path], np.ndarray]:
    """The original study's way: full decode with pydicom, then one anti-aliased skimage resize
    of the whole image to the base size, in one process. (Only scale 1, no crop, no LUT: less
    work than frugalmed does, which makes the speed-up reported against it conservative.)"""
    import pydicom
    from skimage.transform import resize

    def run(path: Path) -> np.ndarray:
        pixels = pydicom.dcmread(path).pixel_array
        small = resize(pixels, (image_size, image_size), anti_aliasing=True)
        lo, hi = float(small.min()), float(small.max())
        return ((small - lo) / max(hi - lo, 1e-9) * 255).astype(np.uint8)

    return run


def compare_decoders(files: list[Path], syntax: str, target: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Every available decoder candidate of `syntax` on `files`, interleaved, checked for pixels."""
    import pydicom

    reference = pydicom.dcmread(files[0]).pixel_array
    level = bench_decoders.reduce_level(*reference.shape, target)
    found, missing = bench_decoders.candidates(syntax, level)
    checks = {c.name: bench_decoders.check(c, files[0], reference) for c in found}
    reduced = [c for c in found if c.reduce and checks[c.name].startswith("ok")]
    if len(reduced) > 1:  # reduced decodes have no exact reference; compare them with each other
        first = np.asarray(reduced[0].decode(files[0]))
        for c in reduced[1:]:
            same = np.array_equal(first, np.asarray(c.decode(files[0])))
            checks[c.name] += f"; {'identical to' if same else 'DIFFERS from'} {reduced[0].name}"
    usable = [c for c in found if not checks[c.name].startswith("FAILED")]
    paired = time_interleaved(files, {c.name: c.decode for c in usable})
    full = [c.name for c in usable if not c.reduce]
    # Ranked by the median per-file ratio to one reference decoder, not by median seconds: on a
    # loaded machine the paired ratio is the steadier of the two.
    fastest = min(full, key=lambda name: paired.ratio(name, full[0]))
    table = [
        {"decoder": c.name, "reduce": c.reduce, "s_per_image": paired.median_s(c.name),
         "images_per_s": paired.per_s(c.name), "vs_fastest": paired.ratio(c.name, fastest),
         "check": checks[c.name]}
        for c in usable
    ]
    table += [{"decoder": c.name, "reduce": c.reduce, "s_per_image": float("nan"), "images_per_s": float("nan"),
               "vs_fastest": float("nan"), "check": checks[c.name]} for c in found if c not in usable]
    table.sort(key=lambda d: (d["reduce"], d["vs_fastest"]))
    return table, missing


def compare_pipeline(files: list[Path], syntax: str, image_size: int, scales: list[int],
                     scratch: Path, decoder_table: list[dict[str, Any]]) -> dict[str, Any]:
    """frugalmed's per-image preprocessing vs decode-only, reduced decode and the naive baseline."""
    pipeline = bench_frugalmed_rsna.per_image(files, image_size, scales, scratch)
    import pydicom

    shape = pydicom.dcmread(files[0], stop_before_pixels=True)
    level = bench_decoders.reduce_level(int(shape.Rows), int(shape.Columns), image_size)
    found, _ = bench_decoders.candidates(syntax, level)
    by_name = {c.name: c for c in found}
    ok_full = [d for d in decoder_table if not d["reduce"] and d["check"] == "exact"]
    ok_reduced = [d for d in decoder_table if d["reduce"] and d["check"].startswith("ok")]
    methods: dict[str, Callable[[Path], object]] = {"frugalmed": pipeline.run, "naive": naive_baseline(image_size)}
    fastest_full = ok_full[0]["decoder"] if ok_full else None
    same = pipeline.decoder_name
    if fastest_full:
        methods["decode (fastest)"] = by_name[fastest_full].decode
    fastest_reduced = ok_reduced[0]["decoder"] if ok_reduced else None
    if same and same in by_name and same not in (fastest_full, fastest_reduced):
        methods["decode (frugalmed's decoder)"] = by_name[same].decode
    if ok_reduced:
        methods["reduced decode (fastest)"] = by_name[fastest_reduced].decode
    try:
        paired = time_interleaved(files, methods)
    finally:
        pipeline.close()
    paths = [m for m in ("decode (fastest)", "reduced decode (fastest)") if m in methods]
    fastest_path = min(paths, key=paired.median_s) if paths else None
    result: dict[str, Any] = {
        "fastest_path": fastest_path,
        "fastest_path_decoder": {"decode (fastest)": fastest_full,
                                 "reduced decode (fastest)": ok_reduced[0]["decoder"] if ok_reduced else None}.get(fastest_path),
        "frugalmed_vs_fastest_path": paired.ratio("frugalmed", fastest_path) if fastest_path else None,
        "n_images": len(files) - 1,
        "decoder_fastest": fastest_full,
        "decoder_frugalmed": same or "unknown",
        "reduced_decoder": ok_reduced[0]["decoder"] if ok_reduced else None,
        "reduce_level": level,
        "s_per_image": {m: paired.median_s(m) for m in methods},
        "images_per_s": {m: paired.per_s(m) for m in methods},
        "frugalmed_vs_decode": paired.ratio("frugalmed", "decode (fastest)") if fastest_full else None,
        "frugalmed_vs_same_decoder": (
            paired.ratio("frugalmed", "decode (frugalmed's decoder)")
            if "decode (frugalmed's decoder)" in methods else
            paired.ratio("frugalmed", "decode (fastest)") if fastest_full and same == fastest_full else
            paired.ratio("frugalmed", "reduced decode (fastest)") if fastest_reduced and same == fastest_reduced else None
        ),
        "frugalmed_vs_reduced": paired.ratio("frugalmed", "reduced decode (fastest)") if ok_reduced else None,
        "naive_vs_frugalmed": paired.ratio("naive", "frugalmed"),
        "pipeline_note": pipeline.note,
    }
    return result


def worker_scaling(files: list[Path], image_size: int, scales: list[int], scratch: Path, repeats: int) -> dict[str, Any]:
    """Throughput of frugalmed's preprocessing of `files` with 1 and with 2 worker processes.

    Also the CPU seconds per image of each (this process + its waited-for workers): on idle
    cores the speed-up is linear when the work per image does not grow with the workers, so
    'CPU per image, 2 workers / 1 worker' says what the wall-clock speed-up would be without the
    other processes that share the cores here.
    """
    cpu: dict[str, list[float]] = {"1 workers": [], "2 workers": []}

    def with_cpu(name: str, job: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            before = _cpu_seconds()
            job()
            cpu[name].append(_cpu_seconds() - before)
        return run

    jobs = {f"{w} workers": with_cpu(f"{w} workers", bench_frugalmed_rsna.cohort_job(
        files, image_size, scales, scratch / f"frugalmed-bench-scaling-w{w}", workers=w)) for w in (1, 2)}
    paired: Paired = time_repeated(jobs, repeats)
    cpu_ratio = statistics.median(b / a for a, b in zip(cpu["1 workers"][1:], cpu["2 workers"][1:]))
    return {"speedup_2_vs_1": paired.ratio("1 workers", "2 workers"),
            "cpu_per_image_2_vs_1": cpu_ratio,
            "s_per_image": {k: statistics.median(v) / len(files) for k, v in paired.seconds.items()},
            "n_images": len(files), "repeats": repeats}


def _cpu_seconds() -> float:
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total
