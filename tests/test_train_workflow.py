"""Rule `train` run by Snakemake in a scratch directory on a tiny fake dataset (CPU, no network)."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from conftest_train import make_fake_dataset

OVERRIDE = {
    "models": {"mlp": {"arch": "mlp", "kwargs": {"hidden_sizes": [32]}}},
    "train": {"epochs": 2, "batch_size": 16, "threads": 1},
}
TARGET = "results/runs/rsna/s1/mlp/bnb8/seed1/metrics.json"


@pytest.mark.slow
def test_train_rule_writes_metrics_epochs_and_log(tmp_path, repo, snakemake_exe):
    make_fake_dataset(tmp_path / "results/data/rsna")
    (tmp_path / "override.yaml").write_text(yaml.safe_dump(OVERRIDE))
    cmd = [snakemake_exe, "-s", str(repo / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(repo / "config/config.yaml"), str(tmp_path / "override.yaml"),
           "--cores", "1", "--resources", "gpu=0", "--allowed-rules", "train", "--", TARGET]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    metrics = json.loads((tmp_path / TARGET).read_text())
    assert (metrics["dataset"], metrics["model"], metrics["setting"], metrics["seed"]) == ("rsna", "mlp", "bnb8", 1)
    assert metrics["device"] == "cpu" and metrics["epochs_run"] == 2
    assert metrics["hyperparameters"]["batch_size"] == 16
    assert (tmp_path / TARGET).with_name("epochs.csv").exists()
    log = (tmp_path / "logs/train/rsna/s1/mlp/bnb8/seed1.log").read_text()
    assert "epoch 1/2" in log and "epoch 2/2" in log
    assert not (tmp_path / "results/checkpoints/rsna/s1/mlp/bnb8/seed1/last.pt").exists()
