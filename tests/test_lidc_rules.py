"""The LIDC rules the workflow picks for each datasets.lidc.source (Snakemake dry runs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


def _dry_run(snakemake_exe: str, repo: Path, tmp_path: Path, source: str) -> str:
    override = tmp_path / "override.yaml"
    override.write_text(f"datasets:\n  lidc:\n    source: {source}\n")
    done = subprocess.run(
        [snakemake_exe, "-s", str(repo / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(repo / "config" / "config.yaml"), str(override),
         "-n", "results/data/lidc/manifest.csv"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


@pytest.mark.parametrize(
    ("source", "rule"),
    [("synthetic", "synthesize_lidc"), ("tcia", "download_lidc"), ("local", "check_lidc_local")],
)
def test_source_selects_rule(snakemake_exe: str, repo: Path, tmp_path: Path, source: str, rule: str) -> None:
    out = _dry_run(snakemake_exe, repo, tmp_path, source)
    assert rule in out and "preprocess_lidc" in out
    others = {"synthesize_lidc", "download_lidc", "check_lidc_local"} - {rule}
    assert not any(other in out for other in others)
