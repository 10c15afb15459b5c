"""Helpers for the tests that run the workflow on a real (local) SLURM cluster.

Imported by tests/test_slurm*.py. The cluster itself is started by .ci/slurm/start.sh
(partitions `cpu` and `gpu`, one fake GPU); other clusters work through the environment
variables FRUGALMED_SLURM_CPU_PARTITION, FRUGALMED_SLURM_GPU_PARTITION and
FRUGALMED_SLURM_ACCOUNT.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
START_HINT = "start the one-node test cluster with `sudo .ci/slurm/start.sh`"


@dataclass(frozen=True)
class Cluster:
    """What the tests need to know about the SLURM cluster they submit to."""

    cpu_partition: str
    gpu_partition: str
    account: str | None
    node_cpus: int
    node_mem_mb: int
    has_sacct: bool


def _run(cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def require_cluster() -> Cluster:
    """The running cluster; skip without SLURM tools, fail when they find no usable cluster."""
    missing = [tool for tool in ("sinfo", "sbatch", "squeue", "scontrol", "scancel")
               if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"SLURM client tools not on PATH ({', '.join(missing)}); {START_HINT}")
    cpu = os.environ.get("FRUGALMED_SLURM_CPU_PARTITION", "cpu")
    gpu = os.environ.get("FRUGALMED_SLURM_GPU_PARTITION", "gpu")
    account = os.environ.get("FRUGALMED_SLURM_ACCOUNT", "frugalmed") or None
    try:
        proc = _run(["sinfo", "-h", "-N", "-o", "%P|%T|%c|%m|%G"], timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`sinfo` did not answer within 60 s; {START_HINT}")
    if proc.returncode != 0:
        pytest.fail(f"`sinfo` found no SLURM controller ({proc.stderr.strip()}); {START_HINT}")
    rows = [line.split("|") for line in proc.stdout.split()]
    partitions = {row[0].rstrip("*"): row for row in rows}
    for name in (cpu, gpu):
        if name not in partitions:
            pytest.fail(f"SLURM has no partition {name!r} (has {sorted(partitions)}); "
                        f"{START_HINT}")
        if not re.match(r"idle|mixed|allocated", partitions[name][1]):
            pytest.fail(f"partition {name!r} node is {partitions[name][1]!r}, not idle; "
                        f"{START_HINT}")
    if "gpu" not in partitions[gpu][4]:
        pytest.fail(f"partition {gpu!r} offers no gres `gpu` ({partitions[gpu][4]}); {START_HINT}")
    # sacct needs slurmdbd; without it (the test cluster) the plugin must poll squeue.
    has_sacct = shutil.which("sacct") is not None and _run(["sacct", "-n", "-X"]).returncode == 0
    return Cluster(cpu, gpu, account, int(partitions[gpu][2]), int(partitions[gpu][3]), has_sacct)


def derive_profile(cluster: Cluster, directory: Path) -> Path:
    """profiles/slurm with its placeholders filled in for `cluster`; everything else as shipped.

    Only what a user adapts per site changes: partitions, account, and requests that must fit
    the test node (CPUs per GPU, memory). Status polling starts after 2 s instead of 40 s and
    successful jobs keep their SLURM logs, so that the test can read them.
    """
    profile = yaml.safe_load(PROFILE.read_text())
    defaults = profile["default-resources"]
    defaults["slurm_partition"] = cluster.cpu_partition
    if cluster.account:
        defaults["slurm_account"] = cluster.account
    else:
        defaults.pop("slurm_account")
    defaults["mem_mb"] = min(int(defaults["mem_mb"]), cluster.node_mem_mb // 8)
    train = profile["set-resources"]["train"]
    train["slurm_partition"] = cluster.gpu_partition
    train["cpus_per_gpu"] = 1
    train["mem_mb"] = min(int(train["mem_mb"]), cluster.node_mem_mb // 8)
    if not cluster.has_sacct:
        profile["slurm-status-command"] = "squeue"
    profile["slurm-init-seconds-before-status-checks"] = 2
    profile["slurm-keep-successful-logs"] = True
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return directory


def snakemake_cmd(workdir: Path, profile_dir: Path, configfiles: list[Path],
                  *extra: str) -> list[str]:
    exe = Path(sys.executable).with_name("snakemake")
    cmd = [str(exe) if exe.exists() else "snakemake", "-s", str(REPO / "Snakefile"),
           "-d", str(workdir), "--workflow-profile", str(profile_dir), *extra]
    # Last: --configfile takes every following word, targets included.
    return cmd + ["--configfile", *map(str, configfiles)]


def scontrol_jobs(workdir: Path) -> list[dict[str, str]]:
    """Every job SLURM still knows (MinJobAge) that ran in `workdir`, oldest first."""
    proc = _run(["scontrol", "show", "job", "-o"])
    if proc.returncode != 0:
        raise RuntimeError(f"scontrol show job failed: {proc.stderr}")
    jobs = []
    for line in proc.stdout.splitlines():
        fields = dict(re.findall(r"(\S+?)=(\S*)", line))
        if fields.get("WorkDir") == str(workdir):
            jobs.append(fields)
    return sorted(jobs, key=lambda job: int(job["JobId"]))


def rule_of(job: dict[str, str]) -> str:
    """The rule a job ran, from the comment the plugin sets: rule_<name>[_wildcards_<values>]."""
    comment = job.get("Comment", "")
    return comment.removeprefix("rule_").split("_wildcards_")[0]


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def train_runtime(attempt: int) -> int:
    """Minutes of wall time profiles/slurm gives a training job at `attempt` (as Snakemake does)."""
    from snakemake.resources import Resource

    raw = yaml.safe_load(PROFILE.read_text())["set-resources"]["train"]["runtime"]
    return int(Resource.cli_evaluator("runtime", str(raw), wildcards={}, input=[],
                                      attempt=attempt, threads=1, async_run=None))


def slurm_time(minutes: int) -> str:
    """A time limit as scontrol prints it: [D-]HH:MM:SS."""
    days, rest = divmod(minutes, 24 * 60)
    text = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return f"{days}-{text}" if days else text
