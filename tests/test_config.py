"""The configs validate, and a wrong value fails before any job with a message naming the key."""

from __future__ import annotations

import copy
import subprocess

import pytest
import yaml

from frugalmed.config import check_config, check_schema, drop_null_experiments
from frugalmed.errors import ConfigError


@pytest.fixture(scope="module")
def demo(repo):
    return yaml.safe_load((repo / "config/config.yaml").read_text())


@pytest.fixture(scope="module")
def schema(repo):
    return repo / "config/schema.yaml"


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_shipped_configs_are_valid(repo, schema, name):
    config = yaml.safe_load((repo / "config" / name).read_text())
    check_schema(config, schema)
    drop_null_experiments(config)
    check_config(config)


def _mutated(config, path, value):
    config = copy.deepcopy(config)
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return config


@pytest.mark.parametrize(
    "path, value, key",
    [
        (["experiments", "main", "settings"], ["baseline", "fp4"], "experiments.main.settings"),
        (["train", "epochs"], -3, "train.epochs"),
        (["datasets", "rsna", "source"], "dropbox", "datasets.rsna.source"),
        (["datasets", "lidc", "min_raters"], 7, "datasets.lidc.min_raters"),
        (["train", "unknown_key"], 1, "train"),
    ],
)
def test_schema_errors_name_the_key(demo, schema, path, value, key):
    with pytest.raises(ConfigError) as err:
        check_schema(_mutated(demo, path, value), schema)
    assert f"'{key}" in str(err.value)


@pytest.mark.parametrize(
    "path, value, key",
    [
        (["splits"], {"train": 0.7, "val": 0.2, "test": 0.2, "seed": 0}, "splits"),
        (["experiments", "main", "models"], ["densenet", "resnet9000"], "experiments.main.models"),
        (["experiments", "downsampling", "scales"], [1, 3], "experiments.downsampling.scales"),
    ],
)
def test_semantic_errors_name_the_key(demo, schema, path, value, key):
    config = _mutated(demo, path, value)
    check_schema(config, schema)
    with pytest.raises(ConfigError) as err:
        check_config(config)
    assert f"'{key}'" in str(err.value)


def test_an_override_can_drop_an_experiment(demo, schema):
    config = _mutated(demo, ["experiments", "act8"], None)
    check_schema(config, schema)
    drop_null_experiments(config)
    assert "act8" not in config["experiments"] and "main" in config["experiments"]
    check_config(config)
    with pytest.raises(ConfigError, match="'experiments'"):
        drop_null_experiments(_mutated(config, ["experiments"], {"main": None}))


def test_lidc_has_only_scale_one(demo):
    config = _mutated(demo, ["experiments", "main", "scales"], [2])
    with pytest.raises(ConfigError, match="not available for lidc"):
        check_config(config)


def _dry_run(repo, snakemake_exe, tmp_path, *extra):
    return subprocess.run(
        [snakemake_exe, "-s", str(repo / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(repo / "config/config.yaml"), *extra, "-n", "--quiet", "rules"],
        capture_output=True, text=True, timeout=300,
    )


def test_bad_config_fails_before_any_job(repo, snakemake_exe, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("splits: {train: 0.5, val: 0.2, test: 0.2}\n")
    result = _dry_run(repo, snakemake_exe, tmp_path, "--configfile", str(repo / "config/config.yaml"), str(bad))
    assert result.returncode != 0
    assert "config key 'splits'" in result.stderr + result.stdout


def test_demo_dag_builds(repo, snakemake_exe, tmp_path):
    result = _dry_run(repo, snakemake_exe, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train" in result.stdout + result.stderr


def test_paper_dag_builds_full_grid(repo, snakemake_exe, tmp_path):
    result = _dry_run(repo, snakemake_exe, tmp_path, "--configfile", str(repo / "config/config.yaml"),
                      str(repo / "config/paper.yaml"))
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    # 2 datasets x 5 models x 5 settings x 3 seeds + RSNA downsampling at scales 2,4,8 (3 settings
    # x 3 seeds) + the rater-rule sensitivity analysis on lidc_r3 (2 models x 5 settings x 3 seeds)
    expected_runs = 2 * 5 * 5 * 3 + 3 * 3 * 3 + 2 * 5 * 3
    counts = {line.split()[0]: line.split()[1] for line in out.splitlines() if len(line.split()) == 2}
    assert counts.get("train") == str(expected_runs), out[-3000:]


def test_lint_is_clean(repo, snakemake_exe, tmp_path):
    result = subprocess.run(
        [snakemake_exe, "-s", str(repo / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(repo / "config/config.yaml"), "--lint"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
