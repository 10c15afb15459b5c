"""Rule `train` run by Snakemake in a scratch directory on a tiny fake dataset (CPU, no network)."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime

import pandas as pd
import pytest
import yaml

from conftest_train import make_fake_dataset

OVERRIDE = {
    "models": {"mlp": {"arch": "mlp", "kwargs": {"hidden_sizes": [32]}}},
    "train": {"epochs": 2, "batch_size": 16, "threads": 1},
}
RUN = "results/runs/rsna/s1/mlp/bnb8/seed1"
TARGET = f"{RUN}/metrics.json"


def _snakemake(snakemake_exe, repo, workdir, override, targets, *options):
    (workdir / "override.yaml").write_text(yaml.safe_dump(override))
    cmd = [snakemake_exe, "-s", str(repo / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(repo / "config/config.yaml"), str(workdir / "override.yaml"),
           *options, "--allowed-rules", "train", "--", *targets]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_train_rule_writes_metrics_epochs_predictions_benchmark_and_log(tmp_path, repo, snakemake_exe):
    make_fake_dataset(tmp_path / "results/data/rsna")
    proc = _snakemake(snakemake_exe, repo, tmp_path, OVERRIDE, [TARGET], "--cores", "1",
                      "--resources", "gpu=0")
    assert proc.returncode == 0, proc.stderr[-4000:]
    metrics = json.loads((tmp_path / TARGET).read_text())
    assert (metrics["dataset"], metrics["model"], metrics["setting"], metrics["seed"]) == ("rsna", "mlp", "bnb8", 1)
    assert metrics["device"] == "cpu" and metrics["epochs_run"] == 2
    assert metrics["hyperparameters"]["batch_size"] == 16
    assert (tmp_path / TARGET).with_name("epochs.csv").exists()
    predictions = pd.read_csv(tmp_path / RUN / "predictions.csv")
    assert len(predictions) == metrics["data"]["test"]["n"]
    assert metrics["test_auc_ci"] is None or len(metrics["test_auc_ci"]) == 2
    # the fake manifest has no site_id/machine_id: RSNA's default confound columns are named
    assert set(metrics["test_auc_by_group"]) == {"site_id", "machine_id"}
    benchmark = pd.read_csv(tmp_path / "results/benchmarks/train/rsna/s1/mlp/bnb8/seed1.tsv", sep="\t")
    assert benchmark["s"].iloc[0] >= metrics["train_time_s"] and benchmark["max_rss"].iloc[0] > 0
    log = (tmp_path / "logs/train/rsna/s1/mlp/bnb8/seed1.log").read_text()
    assert "epoch 1/2" in log and "epoch 2/2" in log
    assert not (tmp_path / "results/checkpoints/rsna/s1/mlp/bnb8/seed1/last.pt").exists()


def _log_window(path) -> tuple[datetime, datetime]:
    stamps = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)", path.read_text(), re.MULTILINE)
    parse = [datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f") for s in stamps]
    return parse[0], parse[-1]


@pytest.mark.slow
def test_exclusive_training_jobs_never_overlap(tmp_path, repo, snakemake_exe):
    """train.exclusive with 2 cores and `--resources gpu=0` on the command line (which replaces
    the default profile's resources): each training job reserves both cores, so the two jobs
    run one after the other, and each computes with train.threads (1)."""
    make_fake_dataset(tmp_path / "results/data/rsna")
    override = {**OVERRIDE, "train": {**OVERRIDE["train"], "exclusive": True}}
    targets = [f"results/runs/rsna/s1/mlp/{s}/seed1/metrics.json" for s in ("baseline", "bnb8")]
    proc = _snakemake(snakemake_exe, repo, tmp_path, override, targets, "--cores", "2",
                      "--resources", "gpu=0")
    assert proc.returncode == 0, proc.stderr[-4000:]
    windows = sorted(_log_window(tmp_path / f"logs/train/rsna/s1/mlp/{s}/seed1.log")
                     for s in ("baseline", "bnb8"))
    assert windows[0][1] <= windows[1][0], f"training jobs overlapped: {windows}"
    for target in targets:
        metrics = json.loads((tmp_path / target).read_text())
        assert metrics["exclusive"] is True and metrics["environment"]["threads"] == 1
    assert proc.stderr.count("threads: 2") == 2, proc.stderr[-3000:]
