"""The data-figure rules run under Snakemake on fake data-stage outputs (no raw data, no training)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from data_figures_fakes import write_fake_rsna, write_pylidc_lidc  # noqa: E402

FIGURES = ["rsna_samples", "rsna_age", "downsampling_examples", "lidc_samples"]
RULES = ["fig_" + name for name in FIGURES]


def _workdir(tmp_path: Path) -> Path:
    """A working directory holding what the figure rules read (contract paths, demo config)."""
    files = write_fake_rsna(tmp_path, max_age=55, size=64, scales=(1, 2, 4))
    (tmp_path / "resources" / "rsna").mkdir(parents=True)
    files.raw_csv.replace(tmp_path / "resources" / "rsna" / "train.csv")
    write_pylidc_lidc(tmp_path, patch=64)
    return tmp_path


def _snakemake(exe: str, repo: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        exe, "-s", str(repo / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(repo / "config" / "config.yaml"), "--cores", "2",
        # the fake outputs stand in for the data stage: let no other rule run
        "--allowed-rules", *RULES, "--", *[f"figures/{n}.pdf" for n in FIGURES],
    ]
    return subprocess.run([*cmd[:1], *args, *cmd[1:]], capture_output=True, text=True, timeout=600)


def test_dry_run_schedules_one_job_per_data_figure(tmp_path: Path, repo: Path, snakemake_exe: str) -> None:
    workdir = _workdir(tmp_path)
    proc = _snakemake(snakemake_exe, repo, workdir, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rule in RULES:
        assert f"rule {rule}:" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_rules_build_pdf_png_and_report(tmp_path: Path, repo: Path, snakemake_exe: str) -> None:
    workdir = _workdir(tmp_path)
    proc = _snakemake(snakemake_exe, repo, workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in FIGURES:
        assert (workdir / "figures" / f"{name}.pdf").read_bytes().startswith(b"%PDF")
        assert (workdir / "figures" / f"{name}.png").stat().st_size > 5_000
        assert (workdir / "logs" / "figures" / f"{name}.log").exists()
    report = tmp_path / "report.html"
    proc = _snakemake(snakemake_exe, repo, workdir, "--report", str(report))
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = report.read_text()
    assert "Age of the RSNA subjects" in html and "rsna_samples.png" in html
