"""GPU acceptance check of the training stage, in one command (issue #15):

    python benchmarks/gpu_check.py                 # on a CUDA machine: budget <= 8 min on one GPU
    python benchmarks/gpu_check.py --force-cpu     # the CPU mode below, even where CUDA exists

On CUDA it trains every setting (the paper's five and the act8 pair) for 2 epochs on a
demo-sized synthetic cohort (960 images, 256 px, batch 32) with DenseNet-121 and ViT-B/32+
(the paper's architectures, from scratch), through the same `train_run` the workflow uses,
and checks what only a GPU can show: fp16 weights for bnb8_half; a GradScaler whose scale
moves for the amp settings (growth_interval shortened to 5 steps so 2 epochs see it move);
8-bit optimizer state <= 0.35x Adam's; energy from NVML (`nvml` in energy_source) for the
job's GPU only; CUDA peak memory as the memory source, lower for amp and act8 than baseline;
tensor_memory_bytes within 25 % of torch.cuda.max_memory_allocated; no divergence. It writes
benchmarks/results/gpu.md (one table, the GPU named, with commit and versions).

Without CUDA it says so, then runs the same checks on the CPU paths that exist (bf16 instead
of fp16, no GradScaler, no NVML, peak RSS) on a smaller cohort and CPU-sized models
(tests/test_gpu_check.py runs it in CI), and writes no gpu.md. The exit
status is 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from frugalmed.atomic import write_text  # noqa: E402
from frugalmed.splits import assign_patient_splits  # noqa: E402
from frugalmed.train.run import Hooks, RunSpec, train_run  # noqa: E402
from frugalmed.train.settings import SETTING_NAMES  # noqa: E402

log = logging.getLogger("gpu_check")


@dataclass(frozen=True)
class Plan:
    """Sizes of one check run."""

    name: str
    n_images: int
    image_size: int
    batch_size: int
    epochs: int
    models: dict[str, tuple[str, dict[str, Any]]]
    num_workers: int
    threads: int


CUDA_PLAN = Plan("cuda", n_images=960, image_size=256, batch_size=32, epochs=2, num_workers=4, threads=4,
                 models={"densenet": ("densenet121", {}), "vit": ("vit_base_patch32_plus_256", {})})
CPU_PLAN = Plan("cpu", n_images=160, image_size=32, batch_size=32, epochs=2, num_workers=0, threads=1,
                models={"densenet": ("densenet121", {"growth_rate": 32, "block_config": [1, 1, 1]}),
                        "vit": ("test_vit", {})})


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class Results:
    plan: Plan
    device: str
    runs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0


def write_cohort(root: Path, plan: Plan, seed: int = 0) -> tuple[Path, Path]:
    """Two images per patient, patient-level 60/20/20 splits, a faint disc on positives."""
    rng = np.random.default_rng(seed)
    n, size = plan.n_images, plan.image_size
    patients = np.repeat(np.arange(n // 2), 2)[:n]
    labels = np.repeat(rng.random(n // 2 + 1) < 0.4, 2)[:n].astype(int)
    images = rng.integers(0, 160, size=(n, size, size), dtype=np.uint8)
    yy, xx = np.mgrid[:size, :size]
    radius = max(2, size // 10)
    for i in np.flatnonzero(labels):
        cy, cx = rng.integers(radius, size - radius, 2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        images[i][disc] = np.minimum(images[i][disc].astype(int) + 80, 255)
    split = assign_patient_splits(pd.Series(patients.astype(str)), pd.Series(labels),
                                  {"train": 0.6, "val": 0.2, "test": 0.2}, seed)
    root.mkdir(parents=True, exist_ok=True)
    manifest = root / "manifest.csv"
    pd.DataFrame({"sample_id": np.arange(n), "patient_id": patients.astype(str), "split": split.values,
                  "label": labels}).to_csv(manifest, index=False)
    array = root / "images_s1.npy"
    np.save(array, images)
    return manifest, array


def train_all(plan: Plan, cuda: bool, scratch: Path) -> Results:
    results = Results(plan, "cuda" if cuda else "cpu")
    manifest, images = write_cohort(scratch / "data", plan)
    start = time.perf_counter()
    for model, (arch, kwargs) in plan.models.items():
        for setting in SETTING_NAMES:
            out = scratch / model / setting
            spec = RunSpec(dataset="gpu_check", scale=1, model=model, setting=setting, seed=1, arch=arch,
                           model_kwargs=dict(kwargs), manifest=str(manifest), images=str(images),
                           metrics_path=str(out / "metrics.json"), epochs_path=str(out / "epochs.csv"),
                           checkpoint_path=str(out / "last.pt"), epochs=plan.epochs,
                           batch_size=plan.batch_size, lr=1e-4, patience=plan.epochs + 1,
                           threads=plan.threads, num_workers=plan.num_workers, use_gpu=cuda,
                           progress_every_s=0, repo_dir=str(REPO))
            t0 = time.perf_counter()
            metrics = train_run(spec, Hooks(grad_scaler={"growth_interval": 5}))
            log.info("%s/%s: %.1f s, test AUC %s", model, setting, time.perf_counter() - t0,
                     metrics["test_auc"])
            print(f"  {model:9s} {setting:10s} {time.perf_counter() - t0:6.1f} s", flush=True)
            results.runs[(model, setting)] = metrics
    results.seconds = time.perf_counter() - start
    return results


def _check(results: Results, name: str, test: Callable[[], tuple[bool, str]]) -> None:
    try:
        passed, detail = test()
    except Exception as err:  # noqa: BLE001 - a check that cannot be evaluated fails, saying why
        passed, detail = False, f"could not be evaluated: {err!r}"
    results.checks.append(Check(name, bool(passed), detail))


def run_checks(results: Results) -> None:
    runs, cuda = results.runs, results.device == "cuda"
    models = list(results.plan.models)

    def each(setting: str, read: Callable[[dict], Any]) -> dict[str, Any]:
        return {m: read(runs[(m, setting)]) for m in models}

    def lower_than_baseline(field: str) -> Callable[[], tuple[bool, str]]:
        """A check that `field` is lower for amp and act8 than for baseline, on every model."""
        def check() -> tuple[bool, str]:
            base = each("baseline", lambda m: m[field])
            rows, ok = [], True
            for setting in ("amp", "act8"):
                other = each(setting, lambda m: m[field])
                ok &= all(other[m] < base[m] for m in models)
                rows += [f"{m} {setting} {other[m] / base[m]:.2f}x" for m in models]
            return ok, ", ".join(rows)
        return check

    _check(results, "no run diverged", lambda: (
        not any(m["diverged"] for m in runs.values()),
        ", ".join(f"{k[0]}/{k[1]}" for k, m in runs.items() if m["diverged"]) or "none diverged"))
    half = "float16" if cuda else "bfloat16"
    _check(results, f"bnb8_half weights are {half}", lambda: (
        all(v == half for v in each("bnb8_half", lambda m: m["state_bytes"]["param_dtype"]).values()),
        str(each("bnb8_half", lambda m: m["state_bytes"]["param_dtype"]))))
    if cuda:
        def scaler() -> tuple[bool, str]:
            seen = {(m, s): (runs[(m, s)]["precision"]["grad_scale_initial"],
                             runs[(m, s)]["precision"]["grad_scale_final"])
                    for m in models for s in ("amp", "amp_bnb8")}
            ok = all(runs[k]["precision"]["grad_scaler"] and a is not None and b is not None and a != b
                     for k, (a, b) in seen.items())
            return ok, "; ".join(f"{m}/{s}: {a:g} -> {b:g}" for (m, s), (a, b) in seen.items())
        _check(results, "amp: GradScaler active, its scale moves", scaler)
    else:
        _check(results, "amp: bf16 autocast, no GradScaler (CPU path)", lambda: (
            all(runs[(m, "amp")]["precision"]["autocast_dtype"] == "bfloat16"
                and not runs[(m, "amp")]["precision"]["grad_scaler"] for m in models),
            str(each("amp", lambda m: m["precision"]["autocast_dtype"]))))

    def optimizer_ratio() -> tuple[bool, str]:
        ratios = {m: runs[(m, "bnb8")]["state_bytes"]["optimizer"] / runs[(m, "baseline")]["state_bytes"]["optimizer"]
                  for m in models}
        return all(r <= 0.35 for r in ratios.values()), ", ".join(f"{m} {r:.3f}x" for m, r in ratios.items())
    _check(results, "8-bit optimizer state <= 0.35x Adam's", optimizer_ratio)

    if cuda:
        _check(results, "energy from NVML (energy_source has nvml)", lambda: (
            all("nvml" in (m["energy_source"] or "") for m in runs.values()),
            str(sorted({m["energy_source"] for m in runs.values()}))))
        _check(results, "codecarbon tracks the job's GPU only", lambda: (
            all(m["energy_detail"].get("gpu_ids_tracked") == [m["environment"]["gpu"]["nvml_index"]]
                for m in runs.values()),
            str(sorted({str(m["energy_detail"].get("gpu_ids_tracked")) for m in runs.values()}))))
        _check(results, "memory_source is cuda_max_allocated", lambda: (
            all(m["memory_source"] == "cuda_max_allocated" for m in runs.values()),
            str(sorted({m["memory_source"] for m in runs.values()}))))
        _check(results, "CUDA peak lower for amp and act8 than baseline",
               lower_than_baseline("cuda_max_allocated_bytes"))

        def agreement() -> tuple[bool, str]:
            ratios = {k: m["tensor_memory_bytes"] / m["cuda_max_allocated_bytes"] for k, m in runs.items()}
            worst = max(ratios, key=lambda k: abs(ratios[k] - 1))
            return (all(0.75 <= r <= 1.25 for r in ratios.values()),
                    f"tensor / CUDA peak {min(ratios.values()):.2f}-{max(ratios.values()):.2f} "
                    f"(worst {worst[0]}/{worst[1]})")
        _check(results, "tensor_memory_bytes within 25 % of cuda_max_allocated", agreement)
    else:
        _check(results, "energy measured (codecarbon, CPU estimate)", lambda: (
            all(m["energy_kwh"] and m["energy_source"] != "unavailable" for m in runs.values()),
            str(sorted({m["energy_source"] for m in runs.values()}))))
        _check(results, "memory_source is cpu_max_rss", lambda: (
            all(m["memory_source"] == "cpu_max_rss" for m in runs.values()),
            str(sorted({m["memory_source"] for m in runs.values()}))))
        _check(results, "saved activations lower for amp and act8 than baseline (CPU stand-in "
                        "for the CUDA peak)", lower_than_baseline("saved_activation_bytes"))
        _check(results, "tensor_memory_bytes = params + grads + optimizer + saved activations", lambda: (
            all(m["tensor_memory_bytes"] == sum(m["state_bytes"][k] for k in ("params", "grads", "optimizer"))
                + m["saved_activation_bytes"] for m in runs.values()), "every run"))
    _check(results, "host load measured", lambda: (
        all(m["host_load"]["cpu_other_share"] is not None for m in runs.values()),
        f"max other-process CPU share {max(m['host_load']['cpu_other_share'] or 0 for m in runs.values()):.2f}"))


def _mb(value: float | None) -> str:
    return "–" if value is None else f"{value / 1e6:.1f}"


def markdown(results: Results) -> str:
    runs = results.runs
    first = next(iter(runs.values()))
    env = first["environment"]
    gpu = env.get("gpu") or {}
    commit = env.get("git_commit") or "unknown"
    lines = [
        "# GPU acceptance check (benchmarks/gpu_check.py)",
        "",
        f"GPU: **{gpu.get('name', 'none')}** ({gpu.get('memory_total_gb', 0):.0f} GB, driver "
        f"{gpu.get('driver_version')}, MIG {gpu.get('mig_mode')}, compute mode {gpu.get('compute_mode')}); "
        f"CPU {env.get('cpu_model')}; torch {env.get('torch')} (CUDA {env.get('torch_cuda_build')}), "
        f"bitsandbytes {env.get('bitsandbytes')}, codecarbon {env.get('codecarbon')}; commit {commit}; "
        f"{time.strftime('%Y-%m-%d')}; {results.seconds / 60:.1f} min for {len(runs)} runs.",
        "",
        f"Cohort: {results.plan.n_images} synthetic images of {results.plan.image_size} px (two per patient), "
        f"batch {results.plan.batch_size}, {results.plan.epochs} epochs, lr 1e-4, from scratch; "
        "GradScaler growth_interval 5.",
        "",
        "| model | setting | weights | autocast | loss scale start → end | optimizer MB | 8-bit share | "
        "saved act. MB | autocast copies MB | tensor memory MB | CUDA peak MB | tensor ÷ peak | energy source | "
        "energy Wh | train s | test AUC | diverged |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (model, setting), m in runs.items():
        p, sb = m["precision"], m["state_bytes"]
        scale = (f"{p['grad_scale_initial']:g} → {p['grad_scale_final']:g}" if p["grad_scaler"] else "–")
        peak = m.get("cuda_max_allocated_bytes")
        ratio = f"{m['tensor_memory_bytes'] / peak:.2f}" if peak else "–"
        energy = "–" if m["energy_kwh"] is None else f"{m['energy_kwh'] * 1000:.3f}"
        auc = "–" if m["test_auc"] is None else f"{m['test_auc']:.3f}"
        lines.append(
            f"| {model} ({m['arch']}) | {setting} | {p['weights_dtype']} | {p['autocast_dtype'] or '–'} | {scale} | "
            f"{_mb(sb['optimizer'])} | {sb['optimizer_8bit_fraction']:.2f} | {_mb(m['saved_activation_bytes'])} | "
            f"{_mb(m['autocast_weight_copy_bytes'])} | {_mb(m['tensor_memory_bytes'])} | {_mb(peak)} | {ratio} | "
            f"{m['energy_source']} | {energy} | {m['train_time_s']:.1f} | {auc} | {m['diverged']} |")
    lines += ["", "| check | result | detail |", "|---|---|---|"]
    for c in results.checks:
        lines.append(f"| {c.name} | {'pass' if c.passed else '**FAIL**'} | {c.detail} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "gpu.md",
                        help="where the GPU table goes (written only after a run on CUDA)")
    parser.add_argument("--scratch", type=Path, default=None, help="folder for the cohort and runs")
    parser.add_argument("--force-cpu", action="store_true", help="run the CPU mode even where CUDA exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("codecarbon").setLevel(logging.ERROR)

    cuda = torch.cuda.is_available() and not args.force_cpu
    if not cuda:
        print("gpu_check: this check needs a CUDA GPU to test the CUDA paths (fp16 + GradScaler, fp16 "
              "weights, NVML energy, CUDA peak memory); none is available"
              + (" (--force-cpu)" if args.force_cpu else "")
              + ", so it runs the same checks on the CPU paths that exist and writes no gpu.md.", flush=True)
    plan = CUDA_PLAN if cuda else CPU_PLAN
    print(f"gpu_check: {len(plan.models) * len(SETTING_NAMES)} runs, {plan.n_images} images of "
          f"{plan.image_size} px, {plan.epochs} epochs, on {'CUDA' if cuda else 'the CPU'}", flush=True)
    with tempfile.TemporaryDirectory(prefix="frugalmed-gpu-check-", dir=args.scratch) as tmp:
        results = train_all(plan, cuda, Path(tmp))
    run_checks(results)
    table = markdown(results)
    print(table)
    if cuda:
        write_text(args.out, table)
        print(f"gpu_check: wrote {args.out}")
    failed = [c.name for c in results.checks if not c.passed]
    print(f"gpu_check: {len(results.checks) - len(failed)}/{len(results.checks)} checks passed"
          + (f"; FAILED: {failed}" if failed else "") + f" ({results.seconds:.0f} s of training)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
