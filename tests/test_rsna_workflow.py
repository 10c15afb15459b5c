"""The RSNA rules in Snakemake: which rule each datasets.rsna.source picks, the local-source
error, and a real run of synthesize_rsna + preprocess_rsna on a tiny cohort (seconds)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

TINY = """
datasets:
  rsna:
    source: {source}
    image_size: 32
    scales: [1, 2, 4]
    threads: 2
    synthetic: {{n_patients: 10, image_rows: 96, image_cols: 80, seed: 1}}
"""


def snakemake(snakemake_exe: str, repo: Path, workdir: Path, source: str, *args: str):
    override = workdir / "override.yaml"
    workdir.mkdir(parents=True, exist_ok=True)
    override.write_text(TINY.format(source=source))
    return subprocess.run(
        [snakemake_exe, "-s", str(repo / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(repo / "config" / "config.yaml"), str(override), *args,
         "results/data/rsna/manifest.csv"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize(("source", "rule"), [("synthetic", "synthesize_rsna"), ("kaggle", "download_rsna")])
def test_source_selects_rule(snakemake_exe, repo, tmp_path, source, rule):
    done = snakemake(snakemake_exe, repo, tmp_path, source, "-n")
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout + done.stderr
    assert rule in out and "preprocess_rsna" in out
    assert not ({"synthesize_rsna", "download_rsna"} - {rule}) & set(out.split())


def test_local_source_without_train_csv_is_a_clear_error(snakemake_exe, repo, tmp_path):
    done = snakemake(snakemake_exe, repo, tmp_path, "local", "-n")
    assert done.returncode != 0
    assert "source is 'local' but resources/rsna/train.csv does not exist" in done.stdout + done.stderr


def test_local_source_uses_raw_dir_as_it_is(snakemake_exe, repo, tmp_path):
    (tmp_path / "resources" / "rsna").mkdir(parents=True)
    (tmp_path / "resources" / "rsna" / "train.csv").write_text("patient_id\n")
    done = snakemake(snakemake_exe, repo, tmp_path, "local", "-n")
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout + done.stderr
    assert "preprocess_rsna" in out and "synthesize_rsna" not in out and "download_rsna" not in out


def test_synthesize_and_preprocess_run(snakemake_exe, repo, tmp_path):
    done = snakemake(snakemake_exe, repo, tmp_path, "synthetic", "--cores", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    data = tmp_path / "results" / "data" / "rsna"
    manifest = pd.read_csv(data / "manifest.csv")
    for scale in (1, 2, 4):
        images = np.load(data / f"images_s{scale}.npy")
        assert images.shape == (len(manifest), 32 // scale, 32 // scale) and images.dtype == np.uint8
    assert json.loads((data / "selection.json").read_text())["kept"] == len(manifest) > 0
    assert (tmp_path / "resources" / "rsna" / ".frugalmed_raw_complete").exists()
    assert (tmp_path / "logs" / "rsna" / "preprocess.log").read_text().count("kept")
