"""Bad config values that YAML and JSON schema make easy fail at planning time, naming the key
and saying what to write instead (issue 17): negative seeds, `lr: 1e-5` (text in YAML 1.1),
`pretrained: "yes"` (text, taken for a file name), a timm architecture that does not exist."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from frugalmed import archs
from frugalmed.archs import check_model_archs, timm_model_names
from frugalmed.config import check_config, check_schema, drop_null_experiments, yaml_float
from frugalmed.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schema.yaml"


@pytest.fixture
def demo() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def _with(config: dict, override: str) -> dict:
    """The config with a YAML snippet merged over it, loaded the way Snakemake loads it."""
    config = copy.deepcopy(config)
    for key, value in yaml.safe_load(override).items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def _error(config: dict) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        check_schema(config, SCHEMA)
        drop_null_experiments(config)
        check_config(config)
    return err.value


def test_unquoted_exponent_is_text_in_yaml_and_the_hint_is_loadable(demo):
    err = _error(_with(demo, "train: {lr: 1e-5}"))
    assert err.key == "train.lr" and "write 1.0e-5" in str(err)
    assert yaml.safe_load("lr: 1.0e-5")["lr"] == 1e-5  # what the hint says works


@pytest.mark.parametrize("value", [1e-5, 3e-3, 2.5e-7, 1000.0, 1.5, 123456.0])
def test_yaml_float_round_trips(value):
    loaded = yaml.safe_load(yaml_float(value))
    assert isinstance(loaded, float) and loaded == value


def test_negative_seed_names_the_key(demo):
    err = _error(_with(demo, "experiments: {main: {datasets: [rsna], models: [mlp], "
                             "settings: [baseline], seeds: [-1]}}"))
    assert err.key == "experiments.main.seeds.0" and ">= 0" in str(err)


@pytest.mark.parametrize("word", ["yes", "no", "True", "off"])
def test_quoted_yes_is_not_taken_for_a_file(demo, word):
    err = _error(_with(demo, f'train: {{pretrained: "{word}"}}'))
    assert err.key == "train.pretrained" and "without quotes" in str(err)


def test_pretrained_file_must_exist(demo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = _error(_with(demo, "train: {pretrained: weights/densenet.pt}"))
    assert err.key == "train.pretrained" and "does not exist" in str(err)
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "densenet.pt").write_bytes(b"x")
    for value in ("weights/densenet.pt", "true", "false"):
        config = _with(demo, f"train: {{pretrained: {value}}}")
        check_schema(config, SCHEMA)
        drop_null_experiments(config)
        check_config(config)


def test_unknown_arch_names_the_key_and_close_names():
    known = {"vit_tiny_patch16_224", "densenet121", "efficientnet_b0"}
    models = {"vit": {"arch": "vit_tiny_patch16_2244"}, "mlp": {"arch": "mlp"}}
    with pytest.raises(ConfigError) as err:
        check_model_archs(models, known)
    assert err.value.key == "models.vit.arch" and "vit_tiny_patch16_224" in str(err.value)
    check_model_archs({"d": {"arch": "densenet121.tv_in1k"}, "m": {"arch": "mlp"}}, known)


def test_mlp_only_needs_no_timm(monkeypatch):
    monkeypatch.setattr(archs, "timm_model_names", lambda: pytest.fail("timm was consulted"))
    check_model_archs({"mlp": {"arch": "mlp"}})


def test_timm_list_is_cached_per_version(tmp_path, monkeypatch):
    """Importing timm costs seconds at every Snakemake start: only the first plan pays it."""
    calls = []
    monkeypatch.setenv("FRUGALMED_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(archs, "_list_timm_models", lambda: calls.append(1) or ["a_net", "b_net"])
    assert timm_model_names() == {"a_net", "b_net"}
    assert timm_model_names() == {"a_net", "b_net"} and len(calls) == 1
    (cache,) = tmp_path.glob("timm-*-models.txt")
    assert cache.name.startswith("timm-") and "a_net" in cache.read_text()


def test_the_real_timm_knows_the_shipped_configs_archs():
    for name in ("config.yaml", "paper.yaml"):
        config = yaml.safe_load((REPO / "config" / name).read_text())
        check_model_archs(config["models"])


@pytest.mark.slow
@pytest.mark.parametrize("override, key", [
    ("train: {lr: 1e-5}", "train.lr"),
    ('train: {pretrained: "yes"}', "train.pretrained"),
    ("models: {vit: {arch: vit_tiny_patch16_2244}}", "models.vit.arch"),
])  # fmt: skip
def test_snakemake_stops_before_any_job(override, key, tmp_path, snakemake_exe):
    (tmp_path / "bad.yaml").write_text(override + "\n")
    proc = subprocess.run(
        [snakemake_exe, "-n", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
         "--configfile", str(REPO / "config" / "config.yaml"), str(tmp_path / "bad.yaml")],
        capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and f"config key '{key}'" in out, out[-2000:]
    assert "Job stats" not in out
