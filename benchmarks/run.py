"""frugalmed's benchmark suite: every ratio in one run, written to results/latest.json and .md.

    .venv/bin/python benchmarks/run.py            # full (about 20-30 min on 2 cores)
    .venv/bin/python benchmarks/run.py --smoke    # seconds; what CI runs (tests/test_benchmarks_smoke.py)

Every comparison is a ratio of methods run interleaved on the same items in this one run
(see bench_timing.py); absolute times are printed for orientation only.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(REPO / "src"))

from bench_report import Report, commit, machine  # noqa: E402

log = logging.getLogger("benchmarks")


@dataclass(frozen=True)
class Mode:
    """Sizes of one benchmark run."""

    name: str
    n_cohort: int  # images per transfer syntax in the (cached) cohort
    rows: int
    cols: int
    n_pipeline: int  # images per transfer syntax for the preprocessing comparison
    n_decoders: int  # images per transfer syntax for the decoder comparison
    n_unique: int
    image_size: int
    scales: list[int]
    scaling_images: int
    scaling_repeats: int
    memory_sizes: tuple[int, int]
    memory_rows: int
    memory_cols: int
    memory_workers: int = 2  # worker processes of the memory benchmark, as the workflow runs it
    lidc_memory: tuple[int, int] = (200, 2000)  # LIDC patches (estimated from the annotations)
    lidc_patch: int = 128
    train: dict = field(default_factory=dict)
    train_repeats: int = 3
    workflow_config: str = "config/paper.yaml"
    workflow_factor: int = 10
    workflow_repeats: int = 3
    results_config: str = "config/paper.yaml"
    results_override: dict = field(default_factory=lambda: {"experiments": {"act8": None}})
    results_test_images: int = 1000


FULL = Mode(
    name="full", n_cohort=100, rows=3000, cols=2400, n_pipeline=60, n_decoders=12, n_unique=6, image_size=256,
    scales=[1, 2, 4, 8], scaling_images=100, scaling_repeats=3, memory_sizes=(100, 1000),
    memory_rows=3000, memory_cols=2400, train=dict(n_images=1280, epochs=6), train_repeats=5,
    lidc_memory=(200, 2000), lidc_patch=128,
)
SMOKE = Mode(
    name="smoke", n_cohort=4, rows=512, cols=416, n_pipeline=4, n_decoders=3, n_unique=2, image_size=64,
    scales=[1, 2, 4], scaling_images=6, scaling_repeats=1, memory_sizes=(20, 200),
    memory_rows=96, memory_cols=80, train=dict(n_images=80, epochs=1), train_repeats=1,
    workflow_config="config/config.yaml", workflow_factor=10, workflow_repeats=1,
    results_config="config/config.yaml", results_test_images=100,
    results_override={
        "study": {"bootstrap": 200},
        "experiments": {
            "main": {"datasets": ["rsna", "lidc"], "models": ["mlp"], "settings": ["baseline", "amp"],
                     "seeds": [1, 2, 3], "scales": [1]},
            "downsampling": {"datasets": ["rsna"], "models": ["mlp"], "settings": ["baseline", "amp"],
                             "seeds": [1, 2, 3], "scales": [1, 2]},
            "act8": None,
        },
    },
    lidc_memory=(20, 60), lidc_patch=32,
)

SECTIONS = ("rsna", "train", "workflow", "memory", "results")


def rsna_section(report: Report, mode: Mode, scratch: Path) -> None:
    import bench_rsna
    from bench_cohort import CohortSpec, build_cohort

    cohort_dir = scratch / f"frugalmed-bench-cohort-{mode.rows}x{mode.cols}-{mode.n_cohort}"
    files = build_cohort(cohort_dir, CohortSpec(n_images=mode.n_cohort, rows=mode.rows, cols=mode.cols,
                                                n_unique=mode.n_unique))
    report.details["cohort"] = {"dir": str(cohort_dir), "rows": mode.rows, "cols": mode.cols,
                                "bits_stored": 12, "images_per_syntax": mode.n_cohort,
                                "timed_per_syntax": mode.n_pipeline,
                                "distinct_encoded_images_per_syntax": mode.n_unique,
                                "mean_file_mb": {s: sum(f.stat().st_size for f in fs) / len(fs) / 1e6
                                                 for s, fs in files.items()}}
    titles = {"j2k": "JPEG 2000 lossless (1.2.840.10008.1.2.4.90)", "jpegls1": "JPEG lossless SV1 (1.2.840.10008.1.2.4.70)"}
    report.details["decoders"] = {}
    report.details["pipeline"] = {}
    for syntax, paths in files.items():
        label = "J2K" if syntax == "j2k" else "JPEG-LL SV1"
        table, missing = bench_rsna.compare_decoders(paths[: mode.n_decoders], syntax, mode.image_size)
        report.details["decoders"][titles[syntax]] = table
        report.details.setdefault("decoders_missing", {})[syntax] = missing
        full = [d for d in table if not d["reduce"] and d["check"] == "exact"]
        if full:
            report.add("rsna", f"{label}: fastest full decoder", full[0]["images_per_s"], "images/s",
                       note=f"{full[0]['decoder']}; all: " + ", ".join(f"{d['decoder']} {d['check']}" for d in table)
                       + (f"; not installed: {', '.join(missing)}" if missing else ""))
        res = _guarded(report, "rsna", f"{label}: preprocessing",
                       lambda: bench_rsna.compare_pipeline(paths[: mode.n_pipeline], syntax, mode.image_size,
                                                           mode.scales, scratch, table))
        if res is None:
            continue
        report.details["pipeline"][syntax] = res
        note = f"{res['n_images']} images {mode.rows}x{mode.cols}, target {mode.image_size} px, scales {mode.scales}"
        for method, per_s in res["images_per_s"].items():
            report.add("rsna", f"{label}: {method}", per_s, "images/s", note=note if method == "frugalmed" else "")
        report.add("rsna", f"{label}: frugalmed time / fastest decode path", res["frugalmed_vs_fastest_path"],
                   goal="≤ 1.25", met=_le(res["frugalmed_vs_fastest_path"], 1.25),
                   note=f"fastest path: {res['fastest_path_decoder']} (decoding alone); frugalmed decodes with "
                   f"{res['decoder_frugalmed']}")
        report.add("rsna", f"{label}: frugalmed time / fastest full-resolution decode", res["frugalmed_vs_decode"],
                   note=f"{res['decoder_fastest']}")
        if res["frugalmed_vs_same_decoder"] is not None:
            report.add("rsna", f"{label}: frugalmed time / decode with its own decoder", res["frugalmed_vs_same_decoder"],
                       note=f"decoder: {res['decoder_frugalmed']}")
        if res["frugalmed_vs_reduced"] is not None and res["fastest_path"] != "reduced decode (fastest)":
            report.add("rsna", f"{label}: frugalmed time / reduced-resolution decode", res["frugalmed_vs_reduced"],
                       note=f"{res['reduced_decoder']}: the limit at a {mode.image_size} px target "
                       f"(resolution level 2^-{res['reduce_level']})")
        report.add("rsna", f"{label}: speed-up over naive baseline", res["naive_vs_frugalmed"],
                   goal="≥ 10 (J2K)" if syntax == "j2k" else "", met=_ge(res["naive_vs_frugalmed"], 10) if syntax == "j2k" else None,
                   note="naive = pydicom pixel_array + skimage resize(anti_aliasing=True), one process")
    scaling = _guarded(report, "rsna", "workers 2 vs 1",
                       lambda: bench_rsna.worker_scaling(files["j2k"][: mode.scaling_images // 2]
                                                         + files["jpegls1"][: mode.scaling_images // 2], mode.image_size,
                                                         mode.scales, scratch, mode.scaling_repeats))
    if scaling is not None:
        report.details["worker_scaling"] = scaling
        report.add("rsna", "speed-up, 2 workers vs 1", scaling["speedup_2_vs_1"], goal="≈ 2 (≥ 1.8)",
                   met=_ge(scaling["speedup_2_vs_1"], 1.8),
                   note=f"{scaling['n_images']} images (half J2K, half SV1) x {scaling['repeats']} repeats, "
                   "whole preprocess_rsna(threads=1|2) incl. its serial parts and pool start; "
                   "wall clock, on 2 cores shared with other processes")
        report.add("rsna", "CPU seconds per image, 2 workers ÷ 1", scaling["cpu_per_image_2_vs_1"], goal="≈ 1 (≤ 1.1)",
                   met=_le(scaling["cpu_per_image_2_vs_1"], 1.1),
                   note="work per image does not grow with workers, so on idle cores the speed-up is "
                   "≈ 2 / this (load-independent)")


def train_section(report: Report, mode: Mode, scratch: Path) -> None:
    import bench_train

    res = _guarded(report, "train", "training loop",
                   lambda: bench_train.run(bench_train.TrainSpec(**mode.train), mode.train_repeats, scratch))
    if res is None:
        return
    report.details["train"] = res
    what = (f"demo DenseNet, {mode.train.get('image_size', 64)} px, {res['steps']} steps; codecarbon "
            f"({res['energy_source']}), peak memory ({res['memory_source']}), checkpoint per epoch, validation, "
            "test, metrics vs a bare loop on in-memory tensors measuring nothing")
    lo, hi = res["whole_run_ratio_range"]
    report.add("train", "steps/s, frugalmed run ÷ bare PyTorch (whole run, wall clock)", res["whole_run_ratio"],
               goal="≥ 0.95", met=_ge(res["whole_run_ratio"], 0.95),
               note=f"{what}; per-pair range {lo:.2f}-{hi:.2f} ({mode.train_repeats} pairs)")
    lo, hi = res["cpu_ratio_range"]
    report.add("train", "steps per CPU-second, frugalmed run ÷ bare (whole run)", res["cpu_ratio"],
               goal="≥ 0.95", met=_ge(res["cpu_ratio"], 0.95),
               note=f"process CPU time (all threads, codecarbon's too): steadier than wall time on shared cores, "
               f"blind to waits (fsync of checkpoints); per-pair range {lo:.2f}-{hi:.2f}")
    report.add("train", "steps/s, frugalmed ÷ bare (training passes only)", res["train_pass_ratio"],
               goal="≥ 0.95", met=_ge(res["train_pass_ratio"], 0.95),
               note="per-step overhead without the fixed per-run costs: loss summed on the device, "
               "NaN check every 50 steps, progress clock; the bare loop reads loss.item() every step")
    cc = res["codecarbon_fresh_process"]
    fg, bg = cc["foreground"], cc["background"]
    report.add("train", "codecarbon import + start in a fresh process", fg["import_s"] + fg["start_s"], "s",
               note="paid once by every training job (one process each); the whole-run ratio above "
               f"pays it in its warm-up only. Median run: frugalmed {res['run_s']['frugalmed']:.1f} s, "
               f"bare {res['run_s']['bare']:.1f} s")
    report.add("train", "job start-up to first epoch, codecarbon in background ÷ in foreground",
               bg["to_first_epoch_s"] / fg["to_first_epoch_s"], goal="< 1", met=_le(
                   bg["to_first_epoch_s"] / fg["to_first_epoch_s"], 1.0),
               note=f"fresh processes building the demo DenseNet meanwhile: {fg['to_first_epoch_s']:.2f} s -> "
               f"{bg['to_first_epoch_s']:.2f} s; codecarbon set-up left on the path {bg['wait_s']:.2f} s "
               "(medians of 3 alternating runs)")
    report.add("train", "share of training-step time waiting for data", 100 * res["data_wait_share"], "%",
               goal="≤ 5 %", met=_le(res["data_wait_share"], 0.05), note="DataLoader next() inside the real train_run")


def workflow_section(report: Report, mode: Mode, scratch: Path) -> None:
    import bench_workflow

    cfg = Path(mode.workflow_config).stem
    res = _guarded(report, "workflow", "snakemake -n",
                   lambda: bench_workflow.run(REPO / mode.workflow_config, REPO / "config/config.yaml",
                                              mode.workflow_factor, mode.workflow_repeats, scratch, label=cfg))
    if res is None:
        return
    report.details["workflow"] = res
    small, large = list(res["jobs"])
    for name in (small, large):
        report.add("workflow", f"snakemake -n, {name} ({res['jobs'][name]} jobs)", res["seconds"][name], "s",
                   goal="seconds (< 60 s)", met=res["seconds"][name] < 60, note=f"--configfile {mode.workflow_config}")
    growth = res["time_ratio"] / res["job_ratio"]
    report.add("workflow", f"time growth ÷ job growth ({large} vs {small})", growth, goal="≤ 1.1 (linear or better)",
               met=_le(growth, 1.1), note=f"jobs x{res['job_ratio']:.2f}, time x{res['time_ratio']:.2f}")


def memory_section(report: Report, mode: Mode, scratch: Path) -> None:
    rsna_memory(report, mode, scratch)
    lidc_memory(report, mode, scratch)


def lidc_memory(report: Report, mode: Mode, scratch: Path) -> None:
    import bench_lidc

    res = _guarded(report, "memory", "LIDC peak RSS",
                   lambda: bench_lidc.run(mode.lidc_memory, mode.lidc_patch, scratch))
    if res is None:
        return
    report.details["memory_lidc"] = res
    for (key, r), target in zip(res["by_size"].items(), mode.lidc_memory):
        report.add("memory", f"peak RSS, LIDC preprocessing ≈{target} patches", r["peak_rss_mb"], "MB",
                   note=f"{r['patches']} patches of {r['scans']} scans, {mode.lidc_patch} px; one process "
                   f"(workers=1), VmHWM; after imports {r['rss_after_imports_mb']:.0f} MB; {r['seconds']:.1f} s")
        report.add("memory", f"peak anonymous RSS, LIDC preprocessing ≈{target} patches", r["peak_anon_mb"],
                   "MB", note=f"RssAnon sampled every 10 ms; after imports {r['anon_after_imports_mb']:.0f} MB")
    small, large = mode.lidc_memory
    report.add("memory", f"LIDC peak RSS ratio, ≈{large} ÷ ≈{small} patches", res["ratio"], goal="≤ 1.1 (flat)",
               met=_le(res["ratio"], 1.1),
               note="synthetic LIDC-IDRI scans (annotated slices only); the small run is the same cohort "
               "restricted to a few scans including its largest, so both hold the same largest scan")
    report.add("memory", f"LIDC peak anonymous RSS ratio, ≈{large} ÷ ≈{small} patches", res["anon_ratio"],
               goal="≤ 1.1 (flat)", met=_le(res["anon_ratio"], 1.1), note="memory the process itself holds")


def rsna_memory(report: Report, mode: Mode, scratch: Path) -> None:
    import bench_memory

    res = _guarded(report, "memory", "RSNA memory growth",
                   lambda: bench_memory.run(mode.memory_sizes, mode.memory_rows, mode.memory_cols,
                                            mode.image_size, mode.scales, scratch, mode.memory_workers))
    if res is None:
        return
    report.details["memory"] = res
    w = mode.memory_workers
    for n, r in res["by_size"].items():
        report.add("memory", f"memory growth above the import floor, {n} images, {w} workers", r["growth_mb"], "MB",
                   note=f"{mode.memory_rows}x{mode.memory_cols} px -> {mode.image_size} px, scales {mode.scales}; "
                   f"peak summed Pss of the preprocessing process and its {r['worker_processes_seen']} workers "
                   f"{r['peak_tree_pss_mb']:.0f} MB minus its Pss after imports, before the pool "
                   f"{r['floor_pss_mb']:.0f} MB; {r['samples']} samples (at most one per 10 ms) in {r['seconds']:.1f} s")
        report.add("memory", f"peak RSS of the writing process, {n} images", r["peak_rss_mb"], "MB",
                   note=f"VmHWM (exact peak resident set, workers not included); after imports "
                   f"{r['rss_after_imports_mb']:.0f} MB, growth {r['growth_rss_mb']:.1f} MB; peak anonymous RSS "
                   f"{r['peak_anon_mb']:.0f} MB (after imports {r['anon_after_imports_mb']:.0f} MB)")
    small, large = mode.memory_sizes
    out_mb = large * sum((mode.image_size // s) ** 2 for s in mode.scales) / 2**20
    report.add("memory", f"growth above the import floor, {large} ÷ {small} images", res["growth_ratio"],
               goal="≤ 1.1 (flat)", met=_le(res["growth_ratio"], 1.1),
               note=f"difference {res['growth_difference_mb']:+.1f} MB; {w} workers; the outputs of {large} images "
               f"are {out_mb:.0f} MB, written with pwrite (not mapped)")
    report.add("memory", f"peak RSS ratio of the writing process, {large} ÷ {small} images", res["ratio"],
               note="includes the import floor, so it understates growth; the row above is the measure")


def results_section(report: Report, mode: Mode, scratch: Path) -> None:
    import bench_results

    res = _guarded(report, "results", "results stage",
                   lambda: bench_results.run_stage(REPO / mode.results_config, mode.results_override,
                                                   mode.results_test_images, scratch))
    if res is not None:
        report.details["results"] = res
        report.add("results", f"results stage, {res['runs']} runs x {res['test_images']} test images",
                   res["seconds"], "s", goal="< 120 s" if mode.name == "full" else "",
                   met=res["seconds"] < 120 if mode.name == "full" else None,
                   note=f"snakemake --cores 2, results rules only ({res['jobs']} jobs; {res['cpu_seconds']:.0f} CPU s "
                   "in all, so about half that on 2 idle cores): summary, tables, "
                   f"paired comparisons ({res['bootstrap']} resamples), recommendations, radar, "
                   f"downsampling, Pareto and curve figures; synthetic runs of {mode.results_config}")
    auc = _guarded(report, "results", "bootstrap AUC",
                   lambda: bench_results.auc_speedup(mode.results_test_images, 2000 if mode.name == "full" else 200))
    if auc is not None:
        report.details["results_auc"] = auc
        report.add("results", "bootstrap AUC per resample, scikit-learn loop ÷ vectorised", auc["speedup"],
                   note=f"{mode.results_test_images} test images, {auc['resamples']} patient resamples; "
                   "roc_auc_score(sample_weight=...) once per resample vs frugalmed.stats.weighted_auc "
                   "(one pass over the sorted scores for all resamples); interleaved, median ratio")


def _le(value: float | None, limit: float) -> bool | None:
    return None if value is None or not math.isfinite(value) else value <= limit


def _ge(value: float | None, limit: float) -> bool | None:
    return None if value is None or not math.isfinite(value) else value >= limit


def _guarded(report: Report, section: str, name: str, work: Callable[[], dict]) -> dict | None:
    """Run one benchmark; a failure becomes a 'not measured' row saying why, not a crash."""
    try:
        return work()
    except Exception as err:  # noqa: BLE001 - reported, with its traceback in the JSON
        log.error("%s / %s failed: %s", section, name, err)
        report.add(section, name, None, note=f"not measured: {type(err).__name__}: {err}"[:300])
        report.details.setdefault("errors", []).append(
            {"section": section, "name": name, "traceback": traceback.format_exc()})
        return None


RUNNERS = {"rsna": rsna_section, "train": train_section, "workflow": workflow_section, "memory": memory_section,
           "results": results_section}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a correctness run of every benchmark")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="where latest.json/.md go")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()),
                        help="where cohorts and scratch workflow directories go (cohorts are cached there)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)
    os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    mode = SMOKE if args.smoke else FULL
    report = Report(mode.name)
    report.details["commit"] = commit()  # before anything runs: what was measured
    report.details["machine_at_start"] = machine()
    started = time.perf_counter()
    for section in args.only:
        log.info("section %s", section)
        RUNNERS[section](report, mode, args.scratch)
    report.details["wall_s"] = time.perf_counter() - started
    report.details["machine_at_end"] = machine()

    from frugalmed.atomic import write_json, write_text

    write_json(args.out / "latest.json", report.to_json())
    write_text(args.out / "latest.md", report.to_markdown())
    print(report.to_markdown())
    if "rsna" in args.only and "pipeline" in report.details and len(report.details["pipeline"]) == 2:
        import rsna_estimate

        # the committed docs show the estimate of the committed full run only
        docs = REPO / "docs" / "benchmarks.md" if mode is FULL and args.out.resolve() == (HERE / "results") else None
        rsna_estimate.main(["--latest", str(args.out / "latest.json")] + (["--docs", str(docs)] if docs else []))
    return 0


if __name__ == "__main__":
    sys.exit(main())
