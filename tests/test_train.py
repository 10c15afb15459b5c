"""Training runs on tiny fake data: every setting, metrics completeness, state bytes, resume,
divergence, pretrained weights. CPU only, no network."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from conftest_train import TINY_MLP, make_fake_dataset, make_spec
from frugalmed.config import SETTINGS
from frugalmed.errors import ConfigError, FrugalmedError
from frugalmed.train.models import build_model
from frugalmed.train.run import EPOCH_COLUMNS, Hooks, choose_device, train_run
from frugalmed.train.settings import SETTING_NAMES, SETTING_TABLE, get_setting

CONTRACT_KEYS = {
    "dataset", "scale", "model", "setting", "seed", "device", "test_auc", "test_accuracy",
    "best_val_auc", "best_epoch", "epochs_run", "diverged", "train_time_s", "energy_kwh",
    "energy_source", "peak_memory_gb", "memory_source", "state_bytes", "environment",
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    return make_fake_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data) -> dict[str, dict]:
    """One 1-epoch run per setting, with every outgoing network connection refused."""
    root = tmp_path_factory.mktemp("runs")
    original = socket.socket.connect

    def refuse(self, address):  # AF_UNIX is local IPC, not network
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"network connection attempted to {address}")
        return original(self, address)

    socket.socket.connect = refuse
    try:
        results = {}
        for setting in SETTING_NAMES:
            spec = make_spec(root, data, setting, name=setting, epochs=1)
            train_run(spec)
            results[setting] = {
                "metrics": json.loads(Path(spec.metrics_path).read_text()),
                "epochs": pd.read_csv(spec.epochs_path),
                "spec": spec,
            }
        return results
    finally:
        socket.socket.connect = original


def test_settings_table_matches_config_and_schema(repo):
    assert tuple(SETTINGS) == SETTING_NAMES
    schema = yaml.safe_load((repo / "config" / "schema.yaml").read_text())
    enum = schema["properties"]["experiments"]["additionalProperties"]["properties"]["settings"]["items"]["enum"]
    assert set(enum) == set(SETTING_NAMES)
    assert get_setting("bnb8_half").weights_dtype == "half"
    assert get_setting("amp_bnb8").autocast and get_setting("amp_bnb8").optimizer == "adam8bit"
    assert not get_setting("baseline").autocast and get_setting("baseline").optimizer == "adam"
    with pytest.raises(KeyError, match="known"):
        get_setting("fp8")


@pytest.mark.parametrize("setting", SETTING_NAMES)
def test_every_setting_writes_complete_metrics(runs, setting):
    run = runs[setting]
    metrics, epochs = run["metrics"], run["epochs"]
    assert CONTRACT_KEYS <= set(metrics)
    assert metrics["saved_activation_bytes"] > 0
    assert metrics["setting"] == setting and metrics["device"] == "cpu"
    assert metrics["epochs_run"] == 1 and metrics["diverged"] is False
    assert 0.0 <= metrics["test_auc"] <= 1.0 and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["best_epoch"] == 1
    assert metrics["train_time_s"] > 0
    assert metrics["energy_kwh"] > 0 and metrics["energy_source"] in {
        "rapl+estimated-per-gb", "estimated-tdp+estimated-per-gb", "nvml+rapl+estimated-per-gb",
        "nvml+estimated-tdp+estimated-per-gb"}
    assert metrics["energy_kwh"] == pytest.approx(
        metrics["energy_kwh_cpu"] + metrics["energy_kwh_gpu"] + metrics["energy_kwh_ram"])
    assert metrics["memory_source"] == "cpu_max_rss" and metrics["peak_memory_gb"] > 0
    assert set(metrics["state_bytes"]) >= {"params", "grads", "optimizer"}
    assert all(metrics["state_bytes"][k] > 0 for k in ("params", "grads", "optimizer"))
    assert metrics["inference"]["latency_ms_per_image"] > 0
    assert metrics["environment"]["torch"] == torch.__version__.split("+")[0]
    assert {"timm", "bitsandbytes", "codecarbon", "python", "cpu_model", "git_commit"} <= set(
        metrics["environment"])
    assert list(epochs.columns) == EPOCH_COLUMNS and len(epochs) == 1
    # a finished run deletes its checkpoint (keep_checkpoint is off)
    assert not Path(run["spec"].checkpoint_path).exists()


def test_precision_follows_the_setting(runs):
    assert runs["baseline"]["metrics"]["precision"]["weights_dtype"] == "float32"
    assert runs["amp"]["metrics"]["precision"]["autocast_dtype"] == "bfloat16"  # CPU autocast
    assert runs["bnb8_half"]["metrics"]["precision"]["weights_dtype"] == "bfloat16"
    assert runs["bnb8_half"]["metrics"]["state_bytes"]["param_dtype"] == "bfloat16"


def test_state_bytes_of_8bit_adam_and_half_weights(runs):
    base = runs["baseline"]["metrics"]["state_bytes"]
    bnb8 = runs["bnb8"]["metrics"]["state_bytes"]
    half = runs["bnb8_half"]["metrics"]["state_bytes"]
    # Adam: two fp32 moments per parameter, plus a 4-byte step counter per tensor
    assert 0 <= base["optimizer"] - 2 * base["params"] <= 4 * 4
    assert bnb8["optimizer"] <= 0.35 * base["optimizer"]
    assert bnb8["optimizer_8bit_fraction"] > 0.95 and base["optimizer_8bit_fraction"] == 0
    assert half["params"] == 0.5 * base["params"]
    assert half["grads"] == 0.5 * base["grads"]
    assert runs["amp"]["metrics"]["state_bytes"]["params"] == base["params"]


def _uninterrupted_and_resumed(tmp_path, data, setting, epochs=3, **overrides):
    straight = train_run(make_spec(tmp_path, data, setting, name="straight", epochs=epochs, **overrides))

    class Killed(Exception):
        pass

    def kill_after_first(epoch):
        if epoch == 1:
            raise Killed

    spec = make_spec(tmp_path, data, setting, name="resumed", epochs=epochs, **overrides)
    with pytest.raises(Killed):
        train_run(spec, Hooks(after_epoch=kill_after_first))
    assert Path(spec.checkpoint_path).exists()
    assert not Path(spec.metrics_path).exists()
    resumed = train_run(spec)
    return straight, resumed, spec


@pytest.mark.parametrize("setting", ["baseline", "bnb8", "amp_bnb8"])
def test_resumed_run_matches_uninterrupted_run(tmp_path, data, setting):
    straight, resumed, spec = _uninterrupted_and_resumed(tmp_path, data, setting)
    assert resumed["sessions"] == 2 and straight["sessions"] == 1
    for key in ("test_auc", "test_accuracy", "test_loss", "best_val_auc", "best_epoch", "epochs_run"):
        assert resumed[key] == straight[key], key
    a = pd.read_csv(tmp_path / "straight" / "epochs.csv")
    b = pd.read_csv(spec.epochs_path)
    for column in ("train_loss", "val_loss", "val_auc"):
        assert a[column].tolist() == b[column].tolist(), column
    assert b["session"].tolist() == [1, 2, 2]
    assert not Path(spec.checkpoint_path).exists()


def test_resume_with_batchnorm_convnet(tmp_path, data):
    kwargs = {"growth_rate": 8, "block_config": [1, 1]}
    straight, resumed, _ = _uninterrupted_and_resumed(
        tmp_path, data, "baseline", epochs=2, arch="densenet121", model="densenet", model_kwargs=kwargs)
    assert resumed["test_auc"] == straight["test_auc"]
    assert resumed["test_loss"] == straight["test_loss"]


def test_checkpoint_of_another_configuration_is_ignored(tmp_path, data):
    spec = make_spec(tmp_path, data, "baseline", name="r", epochs=2)
    with pytest.raises(RuntimeError):
        train_run(spec, Hooks(after_epoch=lambda epoch: (_ for _ in ()).throw(RuntimeError("kill"))))
    changed = make_spec(tmp_path, data, "baseline", name="r", epochs=2, lr=5e-4)
    metrics = train_run(changed)
    assert metrics["sessions"] == 1 and metrics["epochs_run"] == 2


def _nan_from_step(first_bad: int):
    calls = {"n": 0}

    def hook(step, loss):
        calls["n"] += 1
        return loss * float("nan") if calls["n"] > first_bad else loss

    return hook


def test_nan_before_any_epoch_gives_null_metrics(tmp_path, data):
    spec = make_spec(tmp_path, data, "baseline", epochs=3)
    metrics = train_run(spec, Hooks(loss=_nan_from_step(0)))
    assert metrics["diverged"] is True and metrics["stop_reason"] == "diverged"
    assert metrics["test_auc"] is None and metrics["test_accuracy"] is None
    assert metrics["best_val_auc"] is None and metrics["best_epoch"] is None
    assert metrics["epochs_run"] == 1 and any("before any epoch" in n for n in metrics["notes"])
    written = json.loads(Path(spec.metrics_path).read_text())  # valid JSON: null, not NaN
    assert written["test_auc"] is None and CONTRACT_KEYS <= set(written)


def test_nan_after_a_good_epoch_keeps_its_metrics(tmp_path, data):
    steps_per_epoch = 3  # 36 training images, batch 16
    spec = make_spec(tmp_path, data, "bnb8", epochs=4)
    metrics = train_run(spec, Hooks(loss=_nan_from_step(steps_per_epoch)))
    assert metrics["diverged"] is True and metrics["epochs_run"] == 2
    assert metrics["best_epoch"] == 1 and 0 <= metrics["test_auc"] <= 1
    epochs = pd.read_csv(spec.epochs_path)
    assert epochs["diverged"].tolist() == [False, True]


def test_pretrained_path_loads_state_dict(tmp_path):
    source = build_model("mlp", TINY_MLP, 24)
    path = tmp_path / "weights.pt"
    torch.save(source.state_dict(), path)
    torch.manual_seed(123)
    loaded = build_model("mlp", TINY_MLP, 24, pretrained=str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    wrong = build_model("mlp", {"hidden_sizes": [32]}, 24)
    torch.save(wrong.state_dict(), path)
    with pytest.raises(ConfigError, match="train.pretrained"):
        build_model("mlp", TINY_MLP, 24, pretrained=str(path))


def test_pretrained_timm_weights_adapt_first_conv_and_drop_classifier(tmp_path):
    import timm

    source = timm.create_model("test_resnet", num_classes=10)  # 3 channels, 10 classes
    path = tmp_path / "rgb.pt"
    torch.save({"state_dict": source.state_dict()}, path)
    model = build_model("test_resnet", {}, 32, pretrained=str(path))
    assert torch.allclose(model.state_dict()["conv1.0.weight"],
                          source.state_dict()["conv1.0.weight"].sum(1, keepdim=True))
    assert model.state_dict()["fc.weight"].shape == (1, source.fc.in_features)
    assert torch.equal(model.state_dict()["layer1.0.conv1.weight"], source.state_dict()["layer1.0.conv1.weight"])


def test_pretrained_missing_file_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match="train.pretrained") as err:
        build_model("mlp", TINY_MLP, 24, pretrained=str(tmp_path / "nope.pt"))
    assert "nope.pt" in str(err.value)


def test_unknown_model_options_name_the_config_key():
    with pytest.raises(ConfigError, match="models.densenet.kwargs"):
        build_model("densenet121", {"num_init_features": 16}, 32, config_key="models.densenet")


def test_vit_gets_the_image_size():
    model = build_model("test_vit", {}, 32)
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 1)


def test_array_and_manifest_must_agree(tmp_path, data):
    import numpy as np

    np.save(tmp_path / "short.npy", np.zeros((5, 24, 24), np.uint8))
    spec = make_spec(tmp_path, (data[0], tmp_path / "short.npy"))
    with pytest.raises(FrugalmedError, match="short.npy"):
        train_run(spec)


def test_cpu_without_gpu_resource():
    assert choose_device(False).type == "cpu"
    if not torch.cuda.is_available():
        assert choose_device(True).type == "cpu"


def test_activation_quantisation_setting_calls_act8(tmp_path, data, monkeypatch):
    """A setting with quantize_activations wraps the model with frugalmed.quant.act8."""
    import dataclasses

    import frugalmed.quant.act8 as act8
    import frugalmed.train.settings as settings

    calls = []
    real = act8.quantize_model

    def spy(model):
        calls.append(type(model).__name__)
        return real(model)

    monkeypatch.setattr(act8, "quantize_model", spy)
    probe = dataclasses.replace(SETTING_TABLE["baseline"], name="probe_act8", quantize_activations=True)
    monkeypatch.setitem(settings.SETTING_TABLE, "probe_act8", probe)
    metrics = train_run(make_spec(tmp_path, data, "probe_act8", epochs=1))
    assert calls == ["MLP"]
    assert metrics["precision"]["setting"]["quantize_activations"] is True
    assert 0 <= metrics["test_auc"] <= 1


@pytest.mark.parametrize(("setting", "weights", "autocast", "scaler"), [
    ("baseline", torch.float32, None, False),
    ("amp", torch.float32, torch.float16, True),
    ("bnb8", torch.float32, None, False),
    ("bnb8_half", torch.float16, None, False),
    ("amp_bnb8", torch.float32, torch.float16, True),
])
def test_cuda_precision_per_setting(setting, weights, autocast, scaler):
    """On CUDA (checked without a GPU): fp16 autocast with a GradScaler; model.half() weights."""
    from frugalmed.train.loop import Precision

    with pytest.warns(UserWarning) if scaler and not torch.cuda.is_available() else _nullcontext():
        precision = Precision.for_setting(get_setting(setting), torch.device("cuda", 0))
    assert precision.weights_dtype == weights and precision.autocast_dtype == autocast
    assert (precision.scaler is not None) == scaler


def _nullcontext():
    import contextlib

    return contextlib.nullcontext()


def test_hub_weights_for_the_mlp_are_refused():
    with pytest.raises(ConfigError, match="train.pretrained"):
        build_model("mlp", TINY_MLP, 24, pretrained=True)


def test_paper_config_drops_the_demo_model_options(repo):
    """--configfile merges dicts key by key, so paper.yaml must clear the demo's kwargs with null."""
    from snakemake.utils import update_config

    demo = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    update_config(demo, yaml.safe_load((repo / "config" / "paper.yaml").read_text()))
    assert all(not model.get("kwargs") for model in demo["models"].values()), demo["models"]
    assert demo["models"]["densenet"]["arch"] == "densenet121"


def test_too_small_input_names_the_model():
    from frugalmed.errors import ConfigError
    from frugalmed.train.models import build_model

    with pytest.raises(ConfigError, match="models.densenet.*16x16 px"):
        build_model("densenet121", {"growth_rate": 8, "block_config": [1, 1, 1, 1]}, 16,
                    config_key="models.densenet")
    build_model("densenet121", {"growth_rate": 8, "block_config": [1, 1, 1]}, 16,
                config_key="models.densenet")


def test_act8_saved_activation_bytes_drop(tmp_path, data):
    """The measured quantity act8 exists to shrink, as recorded in metrics.json."""
    conv = {"model": "densenet", "arch": "densenet121",
            "model_kwargs": {"growth_rate": 8, "block_config": [1, 1]}}
    saved = {}
    for setting in ("baseline", "act8"):
        metrics = train_run(make_spec(tmp_path, data, setting, name=setting, epochs=1, **conv))
        saved[setting] = metrics["saved_activation_bytes"]
    assert saved["baseline"] >= 3 * saved["act8"] > 0
