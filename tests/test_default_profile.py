"""profiles/default is what a plain `snakemake TARGET` runs with, read by Snakemake's own parser.

Why: without it `snakemake figures/radar_densenet.pdf` stops with "cores have to be
specified", and forgetting `--resources gpu=1` lets training jobs share one GPU, contaminating
the time, energy and memory the study compares.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from snakemake.cli import parse_args

REPO = Path(__file__).resolve().parents[1]


def _parse(argv: list[str]):
    _, args = parse_args(argv)
    return args


def _gpu_cap(args) -> int | None:
    gpu = (args.resources or {}).get("gpu")
    return None if gpu is None else int(gpu.value)


def test_a_plain_target_gets_cores_and_one_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    args = _parse(["figures/radar_densenet.pdf"])
    assert args.targets == ["figures/radar_densenet.pdf"]
    assert args.cores == len(os.sched_getaffinity(0)) or args.cores == os.cpu_count()
    assert _gpu_cap(args) == 1
    assert args.show_failed_logs is True


def test_the_profile_is_found_from_another_directory(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`snakemake -s /path/to/frugalmed/Snakefile -d work` (how the tests and users on a shared
    install run it) loads the profile beside the Snakefile."""
    monkeypatch.chdir(tmp_path)
    args = _parse(["-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "results/summary.csv"])
    assert _gpu_cap(args) == 1 and args.cores


def test_the_command_line_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    args = _parse(["--cores", "1", "--resources", "gpu=0", "--", "figures/radar_densenet.pdf"])
    assert args.cores == 1 and _gpu_cap(args) == 0
    assert args.targets == ["figures/radar_densenet.pdf"]


def test_a_cluster_profile_replaces_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """--workflow-profile profiles/slurm is used instead of (not merged with) the default."""
    monkeypatch.chdir(REPO)
    args = _parse(["--workflow-profile", "profiles/slurm", "-n"])
    assert args.executor == "slurm"
    assert args.cores is None  # `cores: all` of the default profile would be wrong on a login node


@pytest.mark.slow
def test_a_run_without_gpu_cap_stops_before_training(tmp_path: Path, snakemake_exe: str) -> None:
    """`--resources mem_mb=...` on the command line drops the profile's gpu=1; training jobs
    that ask for a GPU would then share it. The run stops before the first one starts, saying
    what to write."""
    import subprocess

    data = tmp_path / "results" / "data" / "rsna"
    data.mkdir(parents=True)
    for name in ("manifest.csv", "images_s1.npy"):
        (data / name).write_text("")
    (tmp_path / "override.yaml").write_text("train: {gpu: 1}\n")
    proc = subprocess.run(
        [snakemake_exe, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
         "--configfile", str(REPO / "config" / "config.yaml"), str(tmp_path / "override.yaml"),
         "--cores", "2", "--resources", "mem_mb=8000", "--allowed-rules", "train",
         "--", "results/runs/rsna/s1/mlp/baseline/seed1/metrics.json"],
        capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "no GPU cap" in out and "--resources gpu=1" in out, out[-3000:]
    assert not (tmp_path / "logs" / "train").exists(), "the training job started"
