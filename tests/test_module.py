"""The workflow used as a Snakemake `module` from another directory, as snakedeploy deploys it.

`snakedeploy deploy-workflow` writes a workflow/Snakefile that declares this repository's
Snakefile as a module (`config: config`, `use rule * from frugalmed`) and copies config/ beside
it. Paths inside the module (includes, scripts, schema, report captions, conda envs) must then
resolve from the module's own directory, not from the deploying one; and the frugalmed package
must be this workflow's own code, in the Snakefile and in every job.

To tell "this workflow's package" from any other, a stand-in `frugalmed` that refuses to be
imported sits on PYTHONPATH: only the workflow putting its own src/ first gets past it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from results_fakes import write_metrics

REPO = Path(__file__).resolve().parents[1]
# snakedeploy's template (use_module.smk.jinja), with a local path as the module's snakefile.
DEPLOYED_SNAKEFILE = """from snakemake.utils import min_version


min_version("6.10.0")


configfile: "config/config.yaml"


# declare frugalmed as a module
module frugalmed:
    snakefile:
        "{snakefile}"
    config:
        config


# use all rules from frugalmed
use rule * from frugalmed
"""
TRIMMED = {
    "experiments": {
        "main": {"datasets": ["rsna", "lidc"], "models": ["mlp"], "settings": ["baseline", "amp"],
                 "seeds": [1], "scales": [1]},
        "act8": None,
        "downsampling": None,
    }
}


@pytest.fixture
def deployed(tmp_path: Path) -> Path:
    """A deployment directory: workflow/Snakefile declaring the module, config/ copied."""
    root = tmp_path / "deployed"
    (root / "workflow").mkdir(parents=True)
    (root / "workflow" / "Snakefile").write_text(
        DEPLOYED_SNAKEFILE.format(snakefile=REPO / "Snakefile")
    )
    shutil.copytree(REPO / "config", root / "config")
    return root


@pytest.fixture
def foreign_package_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose PYTHONPATH offers another `frugalmed`, which refuses to import."""
    stub = tmp_path / "other_site" / "frugalmed"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text(
        "raise ImportError('a frugalmed other than the workflow\\'s own was imported')\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = str(stub.parent)
    return env


def _snakemake(exe: str, cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc


def test_the_stand_in_package_is_really_in_the_way(foreign_package_env: dict[str, str]) -> None:
    """Without the workflow's src/ in front, the stand-in is what `import frugalmed` finds."""
    proc = subprocess.run(["python", "-c", "import frugalmed"], env=foreign_package_env,
                          capture_output=True, text=True, cwd="/")
    assert proc.returncode != 0 and "other than the workflow" in proc.stderr


@pytest.mark.slow
def test_module_dry_run_plans_the_whole_study(deployed: Path, foreign_package_env, snakemake_exe):
    proc = _snakemake(snakemake_exe, deployed, foreign_package_env, "-n", "--cores", "1")
    out = proc.stdout + proc.stderr
    for rule in ("synthesize_rsna", "preprocess_lidc", "train", "summarize", "radar", "all"):
        assert f"{rule} " in out, out[-3000:]


@pytest.mark.slow
def test_module_runs_a_stage_with_its_own_package(deployed: Path, foreign_package_env,
                                                  snakemake_exe):
    """A real (tiny) run from the deployment directory: the summarize job imports the
    workflow's frugalmed, reads the runs and writes results/summary.csv there."""
    (deployed / "config" / "trimmed.yaml").write_text(yaml.safe_dump(TRIMMED))
    runs = [(d, 1, "mlp", s, 1) for d in ("rsna", "lidc") for s in ("baseline", "amp")]
    for run in runs:
        write_metrics(deployed, *run)
    _snakemake(snakemake_exe, deployed, foreign_package_env, "--cores", "1",
               "--configfile", "config/trimmed.yaml", "--allowed-rules", "summarize",
               "--", "results/summary.csv")
    summary = pd.read_csv(deployed / "results" / "summary.csv")
    assert sorted(zip(summary["dataset"], summary["setting"])) == sorted(
        (d, s) for d, _, _, s, _ in runs
    )
    assert (deployed / "logs" / "results").is_dir()  # logs land in the deployment too
