"""Datasets named by the user, in Snakemake: four datasets side by side plan (dry run, lint), a
bad table stops before any job naming its key, rules/scripts/functions share one name, and a
`source: local` raw_dir is never written to (a real run on read-only folders)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lidc_fixtures import lidc_cohort  # noqa: F401 - fixture
from rsna_fixtures import rsna_cohort  # noqa: F401 - fixture

EXAMPLE = "config/examples/four_datasets.yaml"


def write_mycohort(folder: Path, n: int = 8) -> Path:
    """A tiny table dataset: n PNGs and their labels.csv (both labels, two sites)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    lines = ["file,patient_id,label,site_id"]
    for i in range(n):
        Image.fromarray(np.full((12, 10), 20 * i, np.uint8)).save(folder / f"img{i}.png")
        lines.append(f"img{i}.png,p{i},{i % 2},s{i % 2}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder / "labels.csv"


def snakemake(exe: str, repo: Path, workdir: Path, *args: str, configs=(EXAMPLE,), timeout=300):
    cmd = [exe, "-s", str(repo / "Snakefile"), "--directory", str(workdir), "--configfile",
           str(repo / "config/config.yaml"), *[str(repo / c) for c in configs], *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def job_counts(output: str) -> dict[str, int]:
    block = output[output.index("Job stats:"):]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


def test_four_datasets_plan(snakemake_exe: str, repo: Path, tmp_path: Path) -> None:
    write_mycohort(tmp_path / "data" / "mycohort")
    done = snakemake(snakemake_exe, repo, tmp_path, "-n", "--quiet", "rules")
    assert done.returncode == 0, done.stderr[-3000:]
    counts = job_counts(done.stdout + done.stderr)
    # lidc_r3 shares lidc's raw_dir: one synthesize job fills it for both
    assert counts["synthesize_lidc"] == 1 and counts["synthesize_rsna"] == 1
    for rule in ("preprocess_rsna", "preprocess_lidc", "preprocess_lidc_lidc_r3",
                 "preprocess_table_mycohort"):
        assert counts[rule] == 1, counts
    # main (2 models x 5 settings x 2 seeds) + act8 (1 model x 2 settings x 1 seed) per
    # dataset, downsampling (1 model x 3 settings x 2 seeds at scale 2) for rsna and mycohort
    assert counts["train"] == 4 * (20 + 2) + 2 * 6, counts
    assert counts["tables"] == 4
    full = snakemake(snakemake_exe, repo, tmp_path, "-n", "results/data/lidc_r3/manifest.csv")
    assert "min_raters" not in full.stdout  # params are not shown; the job is what matters
    assert "resources/lidc/.frugalmed_raw_complete" in full.stdout


def test_four_datasets_lint(snakemake_exe: str, repo: Path, tmp_path: Path) -> None:
    write_mycohort(tmp_path / "data" / "mycohort")
    done = snakemake(snakemake_exe, repo, tmp_path, "--lint")
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "Congratulations" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("none", "config key 'datasets.mycohort.raw_dir'"),
        ("no_labels", "config key 'datasets.mycohort.labels': the labels file data/mycohort/labels.csv does not exist"),
        ("empty", "config key 'datasets.mycohort.labels': the labels file data/mycohort/labels.csv has a header but no rows"),
        ("no_column", "lacks the column(s) ['label']"),
    ],
)
def test_a_bad_table_stops_before_any_job(snakemake_exe, repo, tmp_path, setup, message) -> None:
    labels = tmp_path / "data" / "mycohort" / "labels.csv"
    if setup != "none":
        write_mycohort(labels.parent)
    if setup == "no_labels":
        labels.unlink()
    elif setup == "empty":
        labels.write_text("file,patient_id,label\n")
    elif setup == "no_column":
        labels.write_text("file,patient_id\nimg0.png,p0\n")
    done = snakemake(snakemake_exe, repo, tmp_path, "-n")
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert message in out, out[-2000:]
    assert "Job stats" not in out


def test_rules_scripts_and_functions_share_one_name(repo: Path) -> None:
    """Each raw-data/preprocessing rule's script is named like the rule and calls the package
    function of that name (catches a renamed rule left with an old script or function)."""
    rules = {}
    for smk in ("raw_data.smk", "preprocess.smk"):
        text = (repo / "workflow/rules" / smk).read_text()
        for body in re.split(r"^[ \t]*rule:", text, flags=re.M)[1:]:
            name = re.search(r'dataset_rule\("(\w+)"', body).group(1)
            rules[name] = re.search(r'script:\s*"\.\./scripts/(\w+)\.py"', body).group(1)
    assert set(rules) == {"synthesize_rsna", "download_rsna", "synthesize_lidc", "download_lidc",
                          "check_lidc_local", "preprocess_rsna", "preprocess_lidc", "preprocess_table"}
    for rule, script in rules.items():
        assert script == rule
        source = (repo / "workflow/scripts" / f"{script}.py").read_text()
        assert re.search(rf"^from frugalmed\.[\w.]+ import .*\b{rule}\b", source, re.M), script


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under folder (hidden ones too) with its mtime and size."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(folder.rglob("*"))} | {".": (folder.stat().st_mtime_ns, 0)}


def _read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _writable(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.mark.slow
def test_local_raw_dirs_are_never_written(snakemake_exe, repo, tmp_path, lidc_cohort,
                                          rsna_cohort) -> None:
    """source: local (RSNA, LIDC) and kind: table read raw_dir only: a read-only raw_dir works
    and its listing, sizes and mtimes are the same after the run (catches a marker, a lock or a
    cache written beside the user's data)."""
    from lidc_fixtures import SMALL_PATIENT

    raw = tmp_path / "raw"
    shutil.copytree(lidc_cohort / SMALL_PATIENT, raw / "lidc" / SMALL_PATIENT)
    shutil.copytree(rsna_cohort, raw / "rsna", ignore=shutil.ignore_patterns(".frugalmed*"))
    write_mycohort(raw / "mycohort")
    override = tmp_path / "local.yaml"
    override.write_text(f"""
datasets:
  rsna: {{source: local, raw_dir: {raw}/rsna, image_size: 32, scales: [1, 2, 4], threads: 1}}
  lidc: {{source: local, raw_dir: {raw}/lidc, patch_size: 32}}
  mycohort: {{kind: table, raw_dir: {raw}/mycohort, image_size: 16, scales: [1], threads: 1}}
""")
    _read_only(raw)
    before = _snapshot(raw)
    workdir = tmp_path / "work"
    workdir.mkdir()
    try:
        done = subprocess.run(
            [snakemake_exe, "-s", str(repo / "Snakefile"), "--directory", str(workdir),
             "--configfile", str(repo / "config/config.yaml"), str(override), "--cores", "2",
             "--", *[f"results/data/{d}/manifest.csv" for d in ("rsna", "lidc", "mycohort")]],
            capture_output=True, text=True, timeout=900)
        after = _snapshot(raw)
    finally:
        _writable(raw)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert after == before
    assert (workdir / "results/raw/lidc/local_check.json").exists()
    for dataset in ("rsna", "lidc", "mycohort"):
        assert (workdir / f"results/data/{dataset}/images_s1.npy").exists()
        assert (workdir / f"results/benchmarks/preprocess/{dataset}.tsv").exists()
    assert os.access(raw, os.W_OK)
