"""Counts the docs quote about the demo and the paper grid, produced by the workflow itself.

Everything here follows deterministically from the committed config files (seeded synthetic
cohorts, seeded splits), so the counts are facts about a commit, not measurements of a machine:
- the data stage of the demo (`config/config.yaml`): images kept and patches made, by label and
  split, and the confound report's group-only AUCs, from `selection.json` and
  `confounds.json` built by Snakemake in a scratch directory (only the raw-data and
  preprocessing rules run; nothing is trained);
- the job counts of `snakemake -n` for the demo and for `config/paper.yaml` (training jobs and
  all jobs);
- the parameter count of each demo model, and the share of its parameters in tensors of at
  least 4096 elements (bitsandbytes' `min_8bit_size`: the share whose Adam state is 8-bit).

    python benchmarks/demo_counts.py                        # writes docs/data/demo_counts.json
    python benchmarks/demo_counts.py --workdir /tmp/x --json out.json

The JSON records the git commit (and whether the working tree differed) and the machine.
A few minutes of CPU at most, most of it generating and preprocessing the synthetic cohorts.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from bench_report import commit, machine  # noqa: E402

DATA_TARGETS = ["results/data/rsna/selection.json", "results/data/rsna/confounds.json",
                "results/data/lidc/selection.json"]


def _snakemake(workdir: Path, configfiles: list[Path], *args: str) -> str:
    exe = Path(sys.executable).with_name("snakemake")
    cmd = [str(exe) if exe.exists() else "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
           str(workdir), "--configfile", *map(str, configfiles), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return proc.stdout + proc.stderr


def job_counts(workdir: Path, configfiles: list[Path]) -> dict[str, int]:
    """Jobs per rule of the default target's dry run (Snakemake's 'Job stats' table)."""
    out = _snakemake(workdir, configfiles, "-n", "--cores", "2")
    stats = out[out.index("Job stats:"):]
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", stats, re.M)}
    if "total" not in counts:
        raise RuntimeError("snakemake -n printed no 'total N' job count")
    return counts


def model_params(config: dict) -> dict[str, dict]:
    """Parameters of each configured demo model, and the share in tensors >= 4096 elements."""
    sys.path.insert(0, str(REPO / "src"))
    from frugalmed.train.models import build_model

    size = config["datasets"]["rsna"]["image_size"]
    out = {}
    for name, spec in config["models"].items():
        model = build_model(spec["arch"], spec.get("kwargs"), image_size=size)
        sizes = [p.numel() for p in model.parameters()]
        out[name] = {"arch": spec["arch"], "image_size": size, "params": sum(sizes),
                     "share_in_tensors_ge_4096": round(sum(n for n in sizes if n >= 4096) / sum(sizes), 4)}
    return out


def data_counts(workdir: Path, configfiles: list[Path]) -> dict:
    started = time.process_time(), time.perf_counter()
    _snakemake(workdir, configfiles, "--cores", "2", "--", *DATA_TARGETS)
    out = {"snakemake_seconds_wall": round(time.perf_counter() - started[1], 1)}
    for dataset in ("rsna", "lidc"):
        selection = json.loads((workdir / f"results/data/{dataset}/selection.json").read_text())
        out[dataset] = {"selection": selection}
    confounds = json.loads((workdir / "results/data/rsna/confounds.json").read_text())
    out["rsna"]["confounds"] = {"group_only_auc": {c: r["group_only_auc"] for c, r in confounds["columns"].items()},
                                "flagged": confounds["flagged"], "threshold": confounds["threshold"]}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="scratch directory (default: a temporary one)")
    parser.add_argument("--json", default=str(REPO / "docs/data/demo_counts.json"))
    args = parser.parse_args(argv)
    measured = commit()
    demo = [REPO / "config/config.yaml"]
    paper = [REPO / "config/paper.yaml"]
    with tempfile.TemporaryDirectory(prefix="frugalmed-demo-counts-") as tmp:
        workdir = Path(args.workdir or tmp)
        report = {
            "source": "python benchmarks/demo_counts.py (Snakemake in a scratch directory)",
            "commit": measured, "machine": machine(),
            "configfiles": {"demo": "config/config.yaml", "paper": "config/paper.yaml"},
            "jobs": {"demo": job_counts(workdir / "dry_demo", demo),
                     "paper": job_counts(workdir / "dry_paper", paper)},
            "models": model_params(yaml.safe_load(demo[0].read_text())),
            "data": data_counts(workdir / "data", demo),
        }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"jobs": {k: {"train": v.get("train"), "total": v["total"]} for k, v in report["jobs"].items()},
                      "models": report["models"],
                      "rsna_kept": report["data"]["rsna"]["selection"].get("kept"),
                      "lidc_patches": report["data"]["lidc"]["selection"].get("patches")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
