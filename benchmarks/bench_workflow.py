"""Workflow scale: how long `snakemake -n` takes to build the DAG of the paper's grid and of a
grid `factor` times larger (more seeds), measured interleaved in a scratch directory.

Why it matters: a DAG of thousands of training jobs must be planned in seconds, and the
planning time must grow about linearly with the number of jobs (no quadratic helper in the
rules), or a cluster user waits minutes before every submission.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench_timing import time_repeated

REPO = Path(__file__).resolve().parents[1]


def _snakemake_exe() -> str:
    exe = Path(sys.executable).with_name("snakemake")
    return str(exe) if exe.exists() else "snakemake"


def seeds_override(configfile: Path, factor: int) -> dict:
    """A config override giving every experiment `factor` times as many seeds."""
    config = yaml.safe_load(configfile.read_text())
    experiments = {}
    for name, grid in config["experiments"].items():
        if not grid:  # an experiment switched off (`name: null`) stays off
            continue
        n = len(grid["seeds"]) * factor
        experiments[name] = {**grid, "seeds": list(range(1, n + 1))}
    return {"experiments": experiments}


def dry_run(workdir: Path, configfiles: list[Path], target: str | None = None) -> tuple[float, int]:
    """Seconds of one `snakemake -n` and the number of jobs it planned."""
    cmd = [_snakemake_exe(), "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", *map(str, configfiles), "-n", "--cores", "2"]
    if target:
        cmd.append(target)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
        raise RuntimeError("snakemake -n failed: " + " | ".join(tail))
    match = re.search(r"^total\s+(\d+)", proc.stdout + proc.stderr, flags=re.MULTILINE)
    if not match:
        raise RuntimeError("snakemake -n printed no 'total N' job count")
    return elapsed, int(match.group(1))


def run(paper_config: Path, base_config: Path, factor: int, repeats: int, scratch: Path | None = None,
        label: str = "paper") -> dict:
    """Time the dry run of `paper_config` and of its `factor`-fold seeds grid, interleaved."""
    with tempfile.TemporaryDirectory(prefix="frugalmed-bench-wf-", dir=scratch) as tmp:
        tmp = Path(tmp)
        workdir = tmp / "wd"
        workdir.mkdir()
        big = tmp / "bigger.yaml"
        big.write_text(yaml.safe_dump(seeds_override(paper_config, factor)))
        configs = {label: [base_config, paper_config], f"{label} x{factor} seeds": [base_config, paper_config, big]}
        jobs: dict[str, int] = {}

        def job(name: str):
            def go() -> None:
                _, jobs[name] = dry_run(workdir, configs[name])
            return go

        paired = time_repeated({name: job(name) for name in configs}, repeats)
    small, large = configs
    return {
        "jobs": jobs,
        "seconds": {name: paired.median_s(name) for name in configs},
        "time_ratio": paired.ratio(large, small),
        "job_ratio": jobs[large] / jobs[small],
    }
