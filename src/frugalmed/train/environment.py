"""The software and hardware a run used, recorded with its metrics so numbers can be compared."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = ("torch", "timm", "bitsandbytes", "codecarbon", "numpy", "scikit-learn")


def environment(device: torch.device, threads: int, repo_dir: str | Path | None = None,
                gpu: dict | None = None, slurm: dict | None = None) -> dict:
    """Versions, device and CPU names, the git commit of the workflow (if it is a git checkout).

    `gpu`: the job's GPU (name, memory, driver, NVML index, MIG/compute mode; see
    frugalmed.train.measure.gpu), null on the CPU. `slurm`: the SLURM job the run ran in.
    """
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": platform.python_version(),
        **versions,
        "torch_cuda_build": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "cpu_model": cpu_model(),
        "cpu_count": _cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "threads": threads,
        "platform": platform.platform(),
        "git_commit": git_commit(repo_dir),
        "gpu": gpu,
        "slurm": slurm,
    }


def slurm_job() -> dict | None:
    """The SLURM job this process runs in, and whether it has its node to itself; None outside SLURM.

    `oversubscribe` is scontrol's OverSubscribe field: NO for an exclusive allocation
    (sbatch --exclusive), OK/YES/USER/MCS when other jobs may share the node.
    """
    import os

    job_id = os.environ.get("SLURM_JOB_ID")
    if not job_id:
        return None
    info: dict = {"job_id": job_id, "node": os.environ.get("SLURMD_NODENAME"),
                  "cpus_on_node": os.environ.get("SLURM_CPUS_ON_NODE"), "oversubscribe": None}
    try:
        out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return info
    for field in out.split():
        if field.startswith("OverSubscribe="):
            info["oversubscribe"] = field.split("=", 1)[1]
    return info


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_count() -> int | None:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def git_commit(repo_dir: str | Path | None) -> str | None:
    """HEAD of the workflow's checkout, with '-dirty' when tracked files differ; None if no git."""
    if repo_dir is None:
        return None
    try:
        head = subprocess.run(["git", "-C", str(repo_dir), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo_dir), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if dirty else head
