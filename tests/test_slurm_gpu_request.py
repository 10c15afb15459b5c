"""What the SLURM executor plugin would submit for a training job, through stand-in SLURM tools.

Why: on SLURM, `--set-resources train:slurm_partition=x` on the command line replaces the
profile's whole set-resources entry for `train`, `gpu: 1` included, and Snakemake plans on the
login node, which has no GPU. Training jobs were then submitted without `--gpus` and trained on
a GPU node's CPU, silently. The train rule must ask for one GPU whenever a cluster executor runs
it (unless train.gpu is 0).

No cluster is needed: a fake `sbatch` on PATH records the command line the plugin builds and
refuses the job (so Snakemake stops right there); `sinfo`, `sacctmgr`, `squeue` and `sacct`
answer what the plugin asks before submitting. The real cluster tests are in test_slurm.py.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from frugalmed.host import has_nvidia_gpu

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"
TARGET = "results/runs/rsna/s1/mlp/baseline/seed1/metrics.json"
FAKE_TOOL = f"""#!{sys.executable}
import os, sys
from pathlib import Path
name = Path(sys.argv[0]).name
with open(os.environ["FAKE_SLURM_LOG"], "a") as log:
    log.write(name + " " + " ".join(sys.argv[1:]) + "\\n")
if name == "sinfo":
    print("PARTITION\\ncpu*\\ngpu")
elif name in ("sacctmgr", "sshare"):
    print("<account>")  # the shipped profile's placeholder, accepted as the user's account
elif name == "sbatch":
    print("sbatch: error: fake sbatch (test): submission recorded, job refused", file=sys.stderr)
    sys.exit(1)
"""


@pytest.fixture
def fake_slurm(tmp_path: Path) -> dict[str, str]:
    """PATH and environment with the stand-in SLURM tools; their calls go to slurm_calls.txt."""
    if has_nvidia_gpu():
        pytest.skip("this host has an NVIDIA device: train.gpu auto asks for it anyway, so the "
                    "test could not tell a cluster request from a host-detected one")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sbatch", "sinfo", "sacctmgr", "sshare", "squeue", "sacct", "scontrol"):
        exe = bin_dir / tool
        exe.write_text(FAKE_TOOL)
        exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["FAKE_SLURM_LOG"] = str(tmp_path / "slurm_calls.txt")
    return env


def _submit_train(tmp_path: Path, env: dict[str, str], snakemake_exe: str, *options: str,
                  train: dict | None = None) -> str:
    """Let Snakemake submit one training job through profiles/slurm; return the sbatch call."""
    work = tmp_path / "work"
    data = work / "results" / "data" / "rsna"
    data.mkdir(parents=True)
    for name in ("manifest.csv", "images_s1.npy"):  # inputs present: train is the only job
        (data / name).write_text("")
    override = tmp_path / "override.yaml"
    override.write_text(yaml.safe_dump({"train": train or {}}))
    proc = subprocess.run(
        [snakemake_exe, "-s", str(REPO / "Snakefile"), "-d", str(work),
         "--configfile", str(REPO / "config" / "config.yaml"), str(override),
         "--workflow-profile", str(PROFILE), "--allowed-rules", "train",
         "--retries", "0", "--slurm-status-command", "squeue",
         "--slurm-init-seconds-before-status-checks", "1", *options, "--", TARGET],
        capture_output=True, text=True, timeout=300, env=env,
    )
    calls = Path(env["FAKE_SLURM_LOG"])
    sbatch = [line for line in (calls.read_text().splitlines() if calls.exists() else [])
              if line.startswith("sbatch ")]
    assert len(sbatch) == 1, f"expected one sbatch call, got {sbatch}\n{proc.stderr[-3000:]}"
    return sbatch[0]


def test_profile_as_shipped_requests_a_gpu(tmp_path, fake_slurm, snakemake_exe):
    call = _submit_train(tmp_path, fake_slurm, snakemake_exe)
    assert "--gpus=1" in call and "-p <gpu-partition>" in call, call


def test_overriding_the_partition_keeps_the_gpu(tmp_path, fake_slurm, snakemake_exe):
    """The case of issue 17: the command line replaces set-resources for train."""
    call = _submit_train(tmp_path, fake_slurm, snakemake_exe,
                         "--set-resources", "train:slurm_partition=gpu")
    assert "--gpus=1" in call, f"training job submitted without a GPU: {call}"
    assert "-p gpu" in call, call


def test_train_gpu_zero_is_respected(tmp_path, fake_slurm, snakemake_exe):
    """train.gpu: 0 (CPU-only training on purpose) submits no GPU request."""
    call = _submit_train(tmp_path, fake_slurm, snakemake_exe,
                         "--set-resources", "train:slurm_partition=cpu", train={"gpu": 0})
    assert "--gpus" not in call and "gres" not in call, call
