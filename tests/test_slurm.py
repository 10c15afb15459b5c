"""The workflow on a real SLURM cluster, through profiles/slurm.

Needs a running cluster: CI starts a one-node cluster on localhost with .ci/slurm/start.sh
(partitions `cpu` and `gpu`, one fake GPU, no slurmdbd). Skipped when the SLURM client tools
are not installed; fails when they are but no cluster answers.

1. A trimmed demo (synthetic RSNA cohort, mlp under two settings, plus one densenet run that
   the preemption test reuses) runs to the end through the profile; every output exists, and
   SLURM's own records (scontrol) show what the profile asked for: training jobs in the GPU
   partition with one GPU and the profile's wall time, everything else in the CPU partition,
   all jobs requeueable, downloads and `all` never submitted.
2. Preemption: the densenet run is trained again, its SLURM job is cancelled (scancel) right
   after its first epoch checkpoint, Snakemake resubmits it (profile `retries`, attempt 2 with
   twice the wall time), the job resumes from the checkpoint and ends with exactly the metrics
   of the uninterrupted run of step 1.

On the CPU-only test machine the jobs get a GPU from SLURM but no CUDA device, so training
falls back to the CPU (metrics.json says device "cpu"), as designed.
"""

from __future__ import annotations

import copy
import json
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from conftest_slurm import (
    REPO,
    derive_profile,
    require_cluster,
    rule_of,
    scontrol_jobs,
    slurm_time,
    snakemake_cmd,
    train_runtime,
    wait_for,
)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

EPOCHS = 30  # tiny data: ~0.2 s per densenet epoch, a window of seconds to cancel the job in
MLP_SETTINGS = ["baseline", "amp"]
PREEMPT_RUN = "results/runs/rsna/s1/densenet/baseline/seed1"
PREEMPT_CKPT = "results/checkpoints/rsna/s1/densenet/baseline/seed1/last.pt"
TRIMMED = {
    "datasets": {
        "rsna": {
            "image_size": 32,
            "scales": [1],
            "synthetic": {"n_patients": 30, "image_rows": 96, "image_cols": 64},
        },
    },
    "experiments": {
        "main": {"datasets": ["rsna"], "models": ["mlp"], "settings": MLP_SETTINGS,
                 "seeds": [1], "scales": [1]},
        "downsampling": {"datasets": ["rsna"], "models": ["mlp"], "settings": ["baseline"],
                         "seeds": [1], "scales": [1]},
        # Slow enough per epoch to be cancelled between two checkpoints.
        "preemption": {"datasets": ["rsna"], "models": ["densenet"], "settings": ["baseline"],
                       "seeds": [1], "scales": [1]},
    },
    # patience = epochs: no early stop, so the resumed run has epochs left to train.
    "train": {"epochs": EPOCHS, "patience": EPOCHS, "threads": 1, "mem_mb": 1000, "runtime": 10},
}
METRIC_KEYS = {
    "dataset", "scale", "model", "setting", "seed", "device", "test_auc", "test_accuracy",
    "best_val_auc", "best_epoch", "epochs_run", "diverged", "train_time_s", "energy_kwh",
    "energy_source", "peak_memory_gb", "memory_source", "state_bytes", "environment",
}
SNAKEMAKE_TIMEOUT = 900


def _trimmed_config() -> dict:
    """TRIMMED, with every other experiment of config/config.yaml narrowed to the main grid.

    --configfile merges into the default config, so an experiment added there would otherwise
    join the demo; a duplicate of `main` adds no run (the workflow runs the union).
    """
    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    trimmed = copy.deepcopy(TRIMMED)
    for name in default.get("experiments") or {}:
        trimmed["experiments"].setdefault(name, copy.deepcopy(trimmed["experiments"]["main"]))
    return trimmed


def _runs() -> list[str]:
    return [f"results/runs/rsna/s1/mlp/{s}/seed1" for s in MLP_SETTINGS] + [PREEMPT_RUN]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The trimmed demo, run once through the SLURM profile."""
    cluster = require_cluster()
    root = tmp_path_factory.mktemp("slurm")
    workdir = root / "wd"
    workdir.mkdir()
    profile = derive_profile(cluster, root / "profile")
    trimmed = root / "trimmed.yaml"
    trimmed.write_text(yaml.safe_dump(_trimmed_config()))
    configfiles = [REPO / "config" / "config.yaml", trimmed]
    start = time.monotonic()
    proc = subprocess.run(snakemake_cmd(workdir, profile, configfiles), capture_output=True,
                          text=True, timeout=SNAKEMAKE_TIMEOUT)
    seconds = time.monotonic() - start
    log = proc.stdout + proc.stderr
    (root / "snakemake.log").write_text(log)
    assert proc.returncode == 0, f"snakemake on SLURM failed ({seconds:.0f}s):\n{log[-6000:]}"
    # SLURM's records of the demo's jobs, before the preemption test adds its own.
    jobs = scontrol_jobs(workdir)
    return {"cluster": cluster, "workdir": workdir, "profile": profile, "jobs": jobs,
            "configfiles": configfiles, "log": log, "seconds": seconds}


# The tests run in file order: the last one retrains the densenet run of the demo.


def test_demo_outputs_complete(demo: dict) -> None:
    workdir = demo["workdir"]
    for run in _runs():
        metrics = json.loads((workdir / run / "metrics.json").read_text())
        assert METRIC_KEYS <= metrics.keys(), f"{run}: missing {METRIC_KEYS - metrics.keys()}"
        assert metrics["epochs_run"] == EPOCHS
        expected_device = "cuda" if torch.cuda.is_available() else "cpu"
        assert metrics["device"].startswith(expected_device), metrics["device"]
        assert (workdir / run / "epochs.csv").exists()
        checkpoint = workdir / run.replace("results/runs", "results/checkpoints") / "last.pt"
        assert not checkpoint.exists(), f"{checkpoint}: a finished run must retire its checkpoint"
    summary = pd.read_csv(workdir / "results" / "summary.csv")
    assert len(summary) == len(_runs())
    for ext in ("csv", "md", "tex"):
        assert (workdir / "results" / "tables" / f"rsna.{ext}").stat().st_size > 0
    for model in ("mlp", "densenet"):
        assert (workdir / "figures" / f"radar_{model}.pdf").stat().st_size > 0
    # Nothing left to do: every target of `all` exists and is newer than its inputs. (mtime
    # only: the params/code triggers would also fire on edits made to the workflow meanwhile.)
    dry = subprocess.run(
        snakemake_cmd(workdir, demo["profile"], demo["configfiles"], "-n",
                      "--rerun-triggers", "mtime"),
        capture_output=True, text=True, timeout=300,
    )
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout + dry.stderr


def test_jobs_submitted_as_the_profile_says(demo: dict) -> None:
    cluster, workdir, jobs = demo["cluster"], demo["workdir"], demo["jobs"]
    assert jobs, "SLURM knows no job of this run (MinJobAge too short?)"
    rules = [rule_of(job) for job in jobs]
    assert rules.count("train") == len(_runs()), rules
    assert "all" not in rules and not any(r.startswith("download") for r in rules), rules
    for job, rule in zip(jobs, rules):
        where = f"SLURM job {job['JobId']} (rule {rule})"
        assert job["JobState"] == "COMPLETED", f"{where}: {job['JobState']}"
        assert job["Requeue"] == "1", f"{where}: not requeueable (slurm-requeue)"
        if cluster.account:
            assert job["Account"] == cluster.account, where
        if rule == "train":
            assert job["Partition"] == cluster.gpu_partition, where
            gpus = job.get("TresPerJob")
            assert gpus == "gres:gpu:1", f"{where}: GPU request {gpus}"
            limit = slurm_time(train_runtime(attempt=1))
            assert job["TimeLimit"] == limit, f"{where}: time limit {job['TimeLimit']} != {limit}"
            log = Path(job["StdOut"])
            assert log.is_relative_to(workdir / "logs" / "slurm" / "rule_train"), log
            text = log.read_text()
            assert "gpu=1" in text and "slurm_partition=" + cluster.gpu_partition in text, log
        else:
            assert job["Partition"] == cluster.cpu_partition, where
            assert "gpu" not in job.get("TresPerJob", "") + job.get("TresPerNode", ""), where


def test_cancelled_training_resumes_from_its_checkpoint(demo: dict) -> None:
    workdir = demo["workdir"]
    metrics_path = workdir / PREEMPT_RUN / "metrics.json"
    reference = json.loads(metrics_path.read_text())
    reference_epochs = pd.read_csv(workdir / PREEMPT_RUN / "epochs.csv")
    checkpoint = workdir / PREEMPT_CKPT
    assert not checkpoint.exists(), "a finished run must not leave a resumable checkpoint"
    jobs_before = {job["JobId"] for job in scontrol_jobs(workdir)}

    cmd = snakemake_cmd(workdir, demo["profile"], demo["configfiles"],
                        "--force", f"{PREEMPT_RUN}/metrics.json")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def first_train_job():
            new = [j for j in scontrol_jobs(workdir)
                   if j["JobId"] not in jobs_before and rule_of(j) == "train"]
            return new[0] if new else None

        job = wait_for(first_train_job, timeout=120, what="the training job's submission")
        wait_for(checkpoint.exists, timeout=300, interval=0.05, what="the first epoch checkpoint")
        subprocess.run(["scancel", job["JobId"]], check=True, timeout=30)
        out, _ = proc.communicate(timeout=SNAKEMAKE_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out[-6000:]

    attempts = [j for j in scontrol_jobs(workdir)
                if j["JobId"] not in jobs_before and rule_of(j) == "train"]
    assert [j["JobState"] for j in attempts] == ["CANCELLED", "COMPLETED"], attempts
    limits = [slurm_time(train_runtime(attempt)) for attempt in (1, 2)]
    assert [j["TimeLimit"] for j in attempts] == limits, "the wall time must grow per attempt"
    train_log = (workdir / "logs" / "train" / "rsna" / "s1" / "densenet" / "baseline" / "seed1.log")
    assert "resumed from" in train_log.read_text(), train_log.read_text()[-3000:]

    resumed = json.loads(metrics_path.read_text())
    for key in ("test_auc", "test_accuracy", "best_val_auc", "best_epoch", "epochs_run"):
        assert resumed[key] == reference[key], (
            f"{key}: {resumed[key]} after resuming, {reference[key]} uninterrupted")
    epochs = pd.read_csv(workdir / PREEMPT_RUN / "epochs.csv")
    # Epochs 1..k trained by the cancelled job (session 1), k+1..EPOCHS by the resubmitted one.
    cancelled_after = int((epochs["session"] == 1).sum())
    assert 1 <= cancelled_after < EPOCHS, f"the cancelled job trained {cancelled_after} epochs"
    assert epochs["session"].tolist() == [1] * cancelled_after + [2] * (EPOCHS - cancelled_after)
    # Same batches, same weights: every epoch's losses equal the uninterrupted run's.
    for column in ("train_loss", "val_loss", "val_auc"):
        expected = pytest.approx(reference_epochs[column].tolist(), rel=1e-9, nan_ok=True)
        assert epochs[column].tolist() == expected, column
