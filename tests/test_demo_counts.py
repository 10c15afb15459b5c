"""The counts the docs quote about the demo and the paper grid match their committed source,
docs/data/demo_counts.json (written by benchmarks/demo_counts.py from the workflow itself).

Catches a doc or a config comment quoting a count the committed output does not hold, and a
config change (a model, a seed, a setting added) that leaves the committed counts stale: the
union of the experiment grids must still give the training-job counts recorded there.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COUNTS = json.loads((REPO / "docs/data/demo_counts.json").read_text())


def _training_runs(configfile: Path) -> set[tuple]:
    """The union of the experiment grids: one training job per (dataset, scale, model, setting,
    seed), as the workflow's train rule expands them."""
    experiments = yaml.safe_load(configfile.read_text())["experiments"]
    return {(d, sc, m, st, se) for grid in experiments.values() if grid
            for d in grid["datasets"] for sc in grid["scales"] for m in grid["models"]
            for st in grid["settings"] for se in grid["seeds"]}


def test_counts_record_a_commit_and_machine() -> None:
    assert re.fullmatch(r"[0-9a-f]{40}", COUNTS["commit"]["sha"]), COUNTS["commit"]
    assert COUNTS["machine"]["cpu"]


@pytest.mark.parametrize("name, configfile", [("demo", "config/config.yaml"), ("paper", "config/paper.yaml")])
def test_committed_job_counts_match_the_current_config(name: str, configfile: str) -> None:
    assert COUNTS["jobs"][name]["train"] == len(_training_runs(REPO / configfile)), (
        f"docs/data/demo_counts.json is stale for {configfile}: rerun python benchmarks/demo_counts.py")


def test_docs_quote_the_committed_counts() -> None:
    data = COUNTS["data"]
    rsna, lidc = data["rsna"]["selection"], data["lidc"]["selection"]
    running = (REPO / "docs/running.md").read_text()
    data_md = (REPO / "docs/data.md").read_text()
    config = (REPO / "config/config.yaml").read_text()
    assert f"its {COUNTS['jobs']['paper']['train']} training jobs" in running
    assert f"({COUNTS['jobs']['demo']['train']} training jobs" in running
    assert f"union: {COUNTS['jobs']['demo']['train']} training jobs" in config
    assert f"{rsna['kept']} pass age ≤ 55" in running
    assert f"keeps {rsna['kept']} of the {rsna['rows_in_train_csv']} images" in data_md
    assert f"({rsna['kept']} images kept" in config
    patches = f"{lidc['patches']} patches ({lidc['labels']['0']} label 0, {lidc['labels']['1']} label 1"
    assert patches in data_md
    assert f"{lidc['patches']} nodule patches" in running and f"-> {lidc['patches']} patches" in config
    auc = data["rsna"]["confounds"]["group_only_auc"]
    assert (f"test AUC of {auc['machine_id']:.2f} (`machine_id`) and {auc['site_id']:.2f} (`site_id`)"
            in running)
