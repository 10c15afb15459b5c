"""The results stage at the paper's size: summary, tables, paired comparisons (hierarchical
bootstrap), recommendations and every results figure, run by Snakemake exactly as the workflow
runs them, on synthetic runs of the paper grid.

Why it matters: the comparisons resample seeds and test patients 2000 times for every run of
every dataset; done naively (one scikit-learn AUC per resample) that is ~3 s per run and over
ten minutes for the grid. The goal is the whole stage in under 2 minutes on 2 cores.

The runs are synthetic (metrics.json, predictions.csv, epochs.csv and a manifest per dataset,
in the contract's layout); only the results rules are allowed to run (--allowed-rules), so no
data or model is needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from bench_timing import time_interleaved

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from frugalmed.grid import expand_runs  # noqa: E402

RESULT_RULES = ["confounds", "summarize", "tables", "comparisons", "recommendations",
                "radar", "downsampling", "pareto", "curves"]
SETTING_EFFECT = {"baseline": 0.0, "amp": -0.005, "bnb8": -0.01, "bnb8_half": -0.03,
                  "amp_bnb8": -0.012, "act8": -0.02, "act8_bnb8": -0.025}


def _snakemake_exe() -> str:
    exe = Path(sys.executable).with_name("snakemake")
    return str(exe) if exe.exists() else "snakemake"


def experiments(configfile: Path, override: dict) -> dict:
    config = yaml.safe_load(configfile.read_text())
    merged = {**config["experiments"], **override.get("experiments", {})}
    return {k: v for k, v in merged.items() if v}


def write_manifest(path: Path, n_test: int, rng: np.random.Generator) -> pd.DataFrame:
    """A manifest with n_test test images from n_test/2 patients (and as many train/val rows)."""
    n = 3 * n_test
    patients = np.repeat(np.arange(n // 2), 2)[:n]
    split = np.where(patients < n_test // 2, "test", np.where(patients % 3 == 0, "val", "train"))
    frame = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)],
                          "patient_id": [f"P{p:05d}" for p in patients], "split": split,
                          "label": (rng.random(n) < 0.3).astype(int),
                          "source_file": [f"f{i}.dcm" for i in range(n)]})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    test = frame[frame["split"] == "test"]
    return pd.DataFrame({"row": test.index, "patient_id": test["patient_id"], "label": test["label"]})


def write_grid(root: Path, exps: dict, n_test: int, seed: int = 0) -> int:
    """metrics.json, predictions.csv and epochs.csv of every run of `exps`; returns the count."""
    rng = np.random.default_rng(seed)
    runs = expand_runs(exps)
    tests = {d: write_manifest(root / f"results/data/{d}/manifest.csv", n_test, rng)
             for d in sorted({r.dataset for r in runs})}
    for run in runs:
        test = tests[run.dataset]
        folder = root / run.directory
        folder.mkdir(parents=True, exist_ok=True)
        separation = 1.6 + 4 * SETTING_EFFECT.get(run.setting, 0.0) - 0.2 * np.log2(run.scale)
        logits = separation * (test["label"].to_numpy() - 0.5) + rng.normal(0, 1, len(test))
        probs = np.round(1 / (1 + np.exp(-logits)), 6)
        test.assign(prob=probs).to_csv(folder / "predictions.csv", index=False)
        n_epochs = int(rng.integers(8, 30))
        epochs = np.arange(1, n_epochs + 1)
        pd.DataFrame({"epoch": epochs, "train_loss": 0.7 / np.sqrt(epochs),
                      "val_loss": 0.7 / epochs ** 0.3, "val_auc": 0.9 - 0.3 / epochs,
                      "is_best": epochs == n_epochs - 5}).to_csv(folder / "epochs.csv", index=False)
        cost = 1.0 if run.setting == "baseline" else 0.6
        record = {
            "dataset": run.dataset, "scale": run.scale, "model": run.model, "setting": run.setting,
            "seed": run.seed, "device": "cuda", "test_auc": None, "test_accuracy": 0.8,
            "best_val_auc": 0.85, "best_epoch": n_epochs - 5, "epochs_run": n_epochs,
            "diverged": False, "train_time_s": 3600 * cost * rng.uniform(0.9, 1.1),
            "energy_kwh": 0.5 * cost * rng.uniform(0.9, 1.1), "energy_source": "nvml+rapl",
            "peak_memory_gb": 8 * cost, "memory_source": "cuda_max_allocated",
            "tensor_memory_bytes": int(7.5e9 * cost),
            "state_bytes": {"params": 3e7, "grads": 3e7, "optimizer": 6e7},
            "host_load": {"cpu_other_share": 0.02, "gpu_other_util": 0.0, "cpu_count": 16,
                          "method": "synthetic"},
            "precision": {"weights_dtype": "float16" if run.setting == "bnb8_half" else "float32",
                          "autocast_dtype": "float16" if "amp" in run.setting else None,
                          "grad_scaler": "amp" in run.setting,
                          "setting": {"weights_dtype": "half" if run.setting == "bnb8_half" else "fp32",
                                      "autocast": "amp" in run.setting,
                                      "quantize_activations": run.setting.startswith("act8")}},
            "environment": {"torch": "synthetic"},
        }
        from sklearn.metrics import roc_auc_score

        record["test_auc"] = float(roc_auc_score(test["label"], probs))
        (folder / "metrics.json").write_text(json.dumps(record))
    return len(runs)


def targets(exps: dict) -> list[str]:
    runs = expand_runs(exps)
    datasets = sorted({r.dataset for r in runs})
    scale_one = sorted({r.model for r in runs if r.scale == 1})
    downsampled = sorted({r.model for r in runs if r.scale != 1})
    out = ["results/summary.csv", "results/recommendations.md"]
    out += [f"results/tables/{d}.csv" for d in datasets]
    out += [f"figures/pareto_{d}.pdf" for d in datasets]
    out += [f"figures/radar_{m}.pdf" for m in scale_one] + [f"figures/curves_{m}.pdf" for m in scale_one]
    out += [f"figures/downsampling_{m}.pdf" for m in downsampled]
    return out


def run_stage(configfile: Path, override: dict, n_test: int, scratch: Path) -> dict:
    """Build the grid in a scratch directory and time Snakemake running the results stage."""
    workdir = Path(scratch) / f"frugalmed-bench-results-{configfile.stem}-{n_test}"
    if workdir.exists():
        subprocess.run(["rm", "-rf", str(workdir)], check=True)
    workdir.mkdir(parents=True)
    (workdir / "override.yaml").write_text(yaml.safe_dump(override))
    exps = experiments(configfile, override)
    n_runs = write_grid(workdir, exps, n_test)
    wanted = targets(exps)
    cmd = [_snakemake_exe(), "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(configfile), str(workdir / "override.yaml"), "--cores", "2",
           "--allowed-rules", *RESULT_RULES, "--", *wanted]
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError("results stage failed: " + " | ".join(proc.stderr.strip().splitlines()[-8:]))
    missing = [t for t in wanted if not (workdir / t).exists()]
    if missing:
        raise RuntimeError(f"results stage did not write {missing}")
    jobs = proc.stderr.count("localrule ") + proc.stderr.count("\nrule ")
    bootstrap = int(override.get("study", {}).get("bootstrap", 2000))
    return {"seconds": elapsed, "cpu_seconds": cpu, "runs": n_runs, "test_images": n_test, "jobs": jobs,
            "bootstrap": bootstrap, "workdir": str(workdir)}


def auc_speedup(n_test: int, n_boot: int, items: int = 4) -> dict:
    """Per-resample time of scikit-learn's roc_auc_score (one call per resample) ÷ frugalmed's
    vectorised patient-weighted AUC, on the same predictions, interleaved."""
    from sklearn.metrics import roc_auc_score

    from frugalmed.stats.resample import patient_counts
    from frugalmed.stats.weighted_auc import patient_weighted_aucs

    rng = np.random.default_rng(1)
    patients = np.arange(n_test) // 2
    counts = patient_counts(n_test // 2, n_boot, seed=0)
    n_sklearn = max(n_boot // 20, 5)
    data = []
    for _ in range(items + 1):
        labels = (rng.random(n_test) < 0.3).astype(int)
        data.append((labels, rng.normal(labels, 1.0)))
    paired = time_interleaved(data, {
        "vectorised": lambda d: patient_weighted_aucs(d[0], d[1], patients, counts),
        "sklearn": lambda d: [roc_auc_score(d[0], d[1], sample_weight=counts[b, patients])
                              for b in range(n_sklearn)],
    })
    per_resample = {"vectorised": paired.median_s("vectorised") / n_boot,
                    "sklearn": paired.median_s("sklearn") / n_sklearn}
    return {"speedup": paired.ratio("sklearn", "vectorised") * n_boot / n_sklearn,
            "per_resample_s": per_resample, "resamples": n_boot, "sklearn_resamples_timed": n_sklearn}
