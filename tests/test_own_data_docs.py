"""docs/own-data.md's worked example, run as the page tells a user to (so the page cannot rot):
its script builds a folder of pydicom-data DICOMs and PNGs with labels.csv, its config is the
file in config/examples/, its command builds figures/radar_mlp.pdf in a copy of the repository."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "own-data.md"
SKIP = {".git", ".venv", ".snakemake", "results", "resources", "figures", "logs", ".pytest_cache"}


def worked_example() -> tuple[str, str, list[str]]:
    """(script, config, commands) of the section 'Worked example'."""
    section = PAGE.read_text().split("## Worked example", 1)[1]
    script = re.search(r"^```python\n(.*?)^```", section, re.S | re.M).group(1)
    config = re.search(r"^```yaml\n(.*?)^```", section, re.S | re.M).group(1)
    bash = re.search(r"^```bash\n(.*?)^```", section, re.S | re.M).group(1)
    return script, config, [line.strip() for line in bash.splitlines() if line.strip()]


def test_the_page_shows_the_shipped_example_config() -> None:
    _, config, commands = worked_example()
    assert config == (REPO / "config/examples/mycohort.yaml").read_text()
    assert commands[0] == "python make_mycohort.py"
    assert commands[1].startswith("snakemake figures/radar_mlp.pdf ")


def _copy_ignore(directory: str, names: list[str]) -> set[str]:
    skip = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
    return skip | (SKIP & set(names) if Path(directory) == REPO else set())


@pytest.mark.slow
def test_worked_example_runs_to_the_radar_figure(tmp_path: Path, snakemake_exe: str) -> None:
    clone = tmp_path / "frugalmed"
    shutil.copytree(REPO, clone, ignore=_copy_ignore)
    script, _, commands = worked_example()
    (clone / "make_mycohort.py").write_text(script)
    made = subprocess.run([sys.executable, "make_mycohort.py"], cwd=clone, capture_output=True,
                          text=True, timeout=120)
    assert made.returncode == 0, made.stderr[-2000:]
    argv = shlex.split(commands[1])
    done = subprocess.run([snakemake_exe, *argv[1:]], cwd=clone, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert (clone / "figures/radar_mlp.pdf").read_bytes().startswith(b"%PDF")
    manifest = pd.read_csv(clone / "results/data/mycohort/manifest.csv")
    assert len(manifest) == 48 and manifest["patient_id"].nunique() == 24
    assert (manifest.groupby("patient_id")["split"].nunique() == 1).all()
    assert {"MONOCHROME1", "MONOCHROME2", "RGB", "L"} <= set(manifest["photometric"])
    assert pd.read_csv(clone / "results/data/mycohort/rejects.csv").empty
    for setting in ("baseline", "amp", "bnb8"):
        metrics = json.loads((clone / f"results/runs/mycohort/s1/mlp/{setting}/seed1/metrics.json")
                             .read_text())
        assert metrics["dataset"] == "mycohort" and metrics["epochs_run"] >= 1
    assert not list((clone / "resources/mycohort").rglob(".frugalmed*"))  # raw_dir untouched
