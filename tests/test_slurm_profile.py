"""profiles/slurm/config.yaml read the way Snakemake reads it (no SLURM needed).

Why: a misspelt option in a profile is fatal only at launch on the cluster, and a misspelt
resource name (`slurm_partion`) is silently ignored, so the job lands in the default
partition without a GPU. These tests parse the profile with Snakemake's own profile parser
and command-line parser and check every resource name against what the SLURM executor
plugin reads.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from snakemake.cli import get_argument_parser, parse_set_resources
from snakemake.profiles import ProfileConfigFileParser
from snakemake.resources import Resource

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"

# Resources the SLURM executor plugin (2.8) and its jobstep plugin turn into sbatch options,
# plus Snakemake's standard ones.
PLUGIN_RESOURCES = {
    "slurm_partition", "slurm_account", "slurm_cluster", "clusters", "runtime", "mem_mb",
    "mem_mb_per_cpu", "gpu", "gpu_model", "gres", "cpus_per_gpu", "cpus_per_task",
    "constraint", "qos", "nodes", "tasks", "tasks_per_gpu", "tasks_per_node", "mpi",
    "slurm_extra",
}
SNAKEMAKE_RESOURCES = {"mem_mb", "disk_mb", "tmpdir", "runtime", "threads"}


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(PROFILE.read_text())


@pytest.fixture(scope="module")
def parsed() -> dict:
    """The profile as Snakemake turns it into command-line defaults."""
    with PROFILE.open() as stream:
        return dict(ProfileConfigFileParser().parse(stream))


def test_every_key_is_a_snakemake_option(parsed: dict) -> None:
    options = get_argument_parser()._option_string_actions  # includes the plugins' options
    unknown = [key for key in parsed if f"--{key}" not in options]
    assert not unknown, f"{PROFILE}: keys that are no Snakemake/plugin option: {unknown}"


def test_required_settings(raw: dict) -> None:
    assert raw["executor"] == "slurm"
    assert int(raw["jobs"]) >= 1
    assert int(raw["resources"]["gpu"]) >= 1, "a global gpu cap is required"
    assert raw["slurm-requeue"] is True
    assert raw["rerun-incomplete"] is True
    assert raw["rerun-triggers"] == ["mtime", "params", "input"]
    assert int(raw["retries"]) >= 1, "retries are what resumes a cancelled training job"
    assert int(raw["latency-wait"]) >= 5
    assert raw["slurm-logdir"]
    for key in ("slurm_partition", "slurm_account", "runtime", "mem_mb"):
        assert key in raw["default-resources"], f"default-resources lacks {key}"


def test_resource_names_are_known_to_the_plugin(raw: dict) -> None:
    known = PLUGIN_RESOURCES | SNAKEMAKE_RESOURCES
    names = set(raw["default-resources"])
    for rule, resources in raw["set-resources"].items():
        names |= set(resources)
    unknown = names - known
    assert not unknown, f"resource names the SLURM plugin ignores: {sorted(unknown)}"


def _evaluate(resource: Resource, attempt: int):
    """A profile resource's value for one attempt, as Snakemake computes it for a job."""
    if not resource.is_evaluable():
        return resource.value
    return Resource.cli_evaluator(
        resource.name, str(resource.raw), wildcards={}, input=[], attempt=attempt, threads=1,
        async_run=None,
    )


def test_train_requests_one_gpu_and_more_time_per_attempt(parsed: dict) -> None:
    train = parse_set_resources(parsed["set-resources"])["train"]
    assert _evaluate(train["gpu"], 1) == 1
    assert _evaluate(train["slurm_partition"], 1), "train needs its own (GPU) partition"
    first, second, third = (_evaluate(train["runtime"], attempt) for attempt in (1, 2, 3))
    assert isinstance(first, int) and first > 0
    assert first < second < third, "each retry must get more wall time"


def test_dry_run_with_the_profile(tmp_path: Path, snakemake_exe: str) -> None:
    """Snakemake accepts the profile as a whole and applies set-resources to `train`."""
    (tmp_path / "Snakefile").write_text(
        'rule all:\n    input: "m.json"\n'
        'rule download:\n    output: "raw.txt"\n    localrule: True\n    shell: "touch {output}"\n'
        'rule train:\n    input: "raw.txt"\n    output: "m.json"\n'
        '    resources: gpu=1, mem_mb=1000, runtime=10\n    shell: "touch {output}"\n'
    )
    proc = subprocess.run(
        [snakemake_exe, "-n", "--workflow-profile", str(PROFILE.parent), "-d", str(tmp_path),
         "-s", str(tmp_path / "Snakefile")],
        capture_output=True, text=True, timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    train_block = out[out.index("rule train:"):]
    assert "gpu=1" in train_block and "runtime=240" in train_block, out
    assert "slurm_partition=<gpu-partition>" in train_block, out


def test_no_cluster_settings_in_the_default_profile() -> None:
    """profiles/default applies to every local run: a SLURM key there would send the demo to a
    cluster (or fail without one). The profile must exist: Snakemake loads it by itself."""
    default = REPO / "profiles" / "default" / "config.yaml"
    assert default.is_file(), f"{default} is missing"
    with default.open() as stream:
        parsed = dict(ProfileConfigFileParser().parse(stream))
    assert "executor" not in parsed and "jobs" not in parsed, parsed
    text = default.read_text()
    assert not re.search(r"^\s*slurm[-_]", text, re.M), f"{default} carries SLURM settings"


def test_download_rules_are_local() -> None:
    """Compute nodes often have no internet: download rules must run where Snakemake runs."""
    text = (REPO / "workflow" / "rules" / "raw_data.smk").read_text()
    # Rules are defined per dataset in loops (`rule:` + `name: dataset_rule("download_...", ds)`).
    heads = list(re.finditer(r"^[ \t]*rule:", text, flags=re.M))
    downloads = {}
    for head, following in zip(heads, heads[1:] + [None]):
        body = text[head.end(): following.start() if following else len(text)]
        name = re.search(r'dataset_rule\("(\w+)"', body)
        if name and name.group(1).startswith("download"):
            downloads[name.group(1)] = body
    assert set(downloads) == {"download_rsna", "download_lidc"}, downloads
    not_local = [name for name, body in downloads.items()
                 if not re.search(r"^\s+localrule:\s*True\s*$", body, re.M)]
    assert not not_local, f"download rules without `localrule: True`: {not_local}"
