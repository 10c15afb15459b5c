"""The demo check scripts (benchmarks/demo_timing.py, benchmarks/demo_auc.py) stay runnable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import demo_auc  # noqa: E402
import demo_timing  # noqa: E402

SNAKEMAKE_LOG = """Building DAG of jobs...
Job stats:
job                  count
-----------------  -------
preprocess_rsna          1
train                   48
radar                    2
total                   51

Select jobs to execute...
Job stats:
job      count
-----  -------
train        1
total        1

"""


def test_job_counts_reads_the_first_table_without_its_total():
    assert demo_timing.job_counts(SNAKEMAKE_LOG) == {"preprocess_rsna": 1, "train": 48, "radar": 2}


def test_machine_reports_bf16_support():
    info = demo_timing.machine()
    assert info["cores"] >= 1 and isinstance(info.get("native_bf16", []), list)


def test_demo_grid_merges_overrides_dict_by_dict(tmp_path):
    override = tmp_path / "o.yaml"
    override.write_text(yaml.safe_dump({"experiments": {"main": {"seeds": [7]}}}))
    grid = demo_auc.demo_grid([REPO / "config/config.yaml", override])
    assert grid["seeds"] == [7] and "vit" in grid["models"]  # the rest of main is kept


@pytest.mark.slow
def test_dry_run_of_a_fresh_clone(tmp_path):
    """Clone HEAD, plan the demo with this interpreter's environment: the script's whole path
    except the install and the training."""
    out = tmp_path / "timing"
    code = demo_timing.main(["--dry-run", "--venv", sys.prefix, "--scratch", str(tmp_path),
                             "--out", str(out)])
    assert code == 0
    record = json.loads(out.with_suffix(".json").read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                          text=True).stdout.strip()
    assert record["commit"] == head
    assert record["workflow"]["jobs"]["train"] > 0 and record["within_goal"] is None
    assert "native bf16" in out.with_suffix(".md").read_text()
