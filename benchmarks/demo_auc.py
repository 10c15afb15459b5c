"""Does the demo discriminate? Test AUC of the demo's baseline runs per dataset and model.

The demo is only useful if its models learn something and the settings can differ: a test
AUC near 1.0 leaves no room for a setting to lose anything, near 0.5 nothing was learnt. This
script builds (through Snakemake, in a scratch directory, so nothing of the checkout is
touched) the baseline runs of the demo config -- or of the models/seeds given -- and reports
the mean and range of test AUC over seeds, against the band the demo is tuned for
(0.75-0.95, issue #14). It also reports the confound report of each dataset when built.

    python benchmarks/demo_auc.py                       # the demo's main experiment, baseline
    python benchmarks/demo_auc.py --models densenet vit --seeds 1 10 --workdir /tmp/demo_auc
    python benchmarks/demo_auc.py --configfile my_override.yaml --json out.json

Training runs are resumable Snakemake outputs: a rerun with the same workdir reuses them.
Timing numbers it prints are for orientation only (shared machine); see demo_timing.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BAND = (0.75, 0.95)


def _snakemake_exe() -> str:
    exe = Path(sys.executable).with_name("snakemake")
    return str(exe) if exe.exists() else "snakemake"


def demo_grid(configfiles: list[Path]) -> dict:
    """The main experiment of the merged config files (later files win, dict by dict)."""
    merged: dict = {}
    for path in configfiles:
        _merge(merged, yaml.safe_load(path.read_text()) or {})
    return merged["experiments"]["main"]


def _merge(base: dict, extra: dict) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/frugalmed_demo_auc")
    parser.add_argument("--configfile", nargs="*", default=[], help="overrides after config/config.yaml")
    parser.add_argument("--datasets", nargs="*")
    parser.add_argument("--models", nargs="*")
    parser.add_argument("--seeds", nargs="*", type=int)
    parser.add_argument("--setting", default="baseline")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--json", help="also write the table as JSON here")
    args = parser.parse_args(argv)

    configfiles = [REPO / "config/config.yaml", *map(Path, args.configfile)]
    grid = demo_grid(configfiles)
    datasets = args.datasets or grid["datasets"]
    models = args.models or grid["models"]
    seeds = args.seeds or grid["seeds"]
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    runs = [(d, m, s) for d in datasets for m in models for s in seeds]
    targets = [f"results/runs/{d}/s1/{m}/{args.setting}/seed{s}/metrics.json" for d, m, s in runs]
    targets += [f"results/data/{d}/confounds.json" for d in datasets if d == "rsna"]
    cmd = [_snakemake_exe(), "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--cores", str(args.cores), "--resources", "gpu=1",
           "--configfile", *map(str, configfiles), "--", *targets]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        print((proc.stdout + proc.stderr)[-4000:], file=sys.stderr)
        return proc.returncode

    table = []
    for dataset in datasets:
        for model in models:
            records = [json.loads((workdir / f"results/runs/{dataset}/s1/{model}/{args.setting}"
                                   f"/seed{s}/metrics.json").read_text()) for s in seeds]
            aucs = [r["test_auc"] for r in records if r["test_auc"] is not None]
            mean = statistics.fmean(aucs) if aucs else None
            table.append({
                "dataset": dataset, "model": model, "setting": args.setting, "seeds": seeds,
                "test_auc": aucs, "mean_test_auc": mean,
                "in_band": mean is not None and BAND[0] <= mean <= BAND[1],
                "best_val_auc": [r["best_val_auc"] for r in records],
                "epochs_run": [r["epochs_run"] for r in records],
                "train_time_s": [round(r["train_time_s"], 1) for r in records],
                "git_commit": sorted({str(r.get("environment", {}).get("git_commit")) for r in records}),
            })  # fmt: skip
    confounds = {}
    for dataset in datasets:
        path = workdir / f"results/data/{dataset}/confounds.json"
        if path.exists():
            report = json.loads(path.read_text())
            confounds[dataset] = {c: r["group_only_auc"] for c, r in report["columns"].items()}
            confounds[dataset]["flagged"] = report["flagged"]

    print(f"{'dataset':8} {'model':13} {'mean AUC':>8}  band  per seed (epochs run)")
    for row in table:
        mean = "-" if row["mean_test_auc"] is None else f"{row['mean_test_auc']:.3f}"
        per_seed = ", ".join(f"{a:.3f} ({e})" for a, e in zip(row["test_auc"], row["epochs_run"]))
        print(f"{row['dataset']:8} {row['model']:13} {mean:>8}  {'yes ' if row['in_band'] else 'NO  '}  {per_seed}")
    for dataset, groups in confounds.items():
        print(f"confounds {dataset}: {groups}")
    print(f"snakemake wall time {elapsed:.0f} s (shared machine: orientation only)")
    if args.json:
        sys.path.insert(0, str(REPO / "benchmarks"))
        from bench_report import commit, machine

        Path(args.json).write_text(json.dumps({
            "band": BAND, "runs": table, "confounds": confounds,
            "configfiles": [str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p)
                            for p in configfiles],
            "commit": commit(), "machine": machine(),
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
