"""train.pretrained: true offline: the fetch rule's function against a local fake Hugging Face
hub cache (HF_HUB_OFFLINE=1, no network), training from the fetched file, and the error when
the file is missing."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from conftest_train import make_fake_dataset, make_spec
from frugalmed.errors import FrugalmedError
from frugalmed.train.models import build_model
from frugalmed.train.run import train_run
from frugalmed.train.weights import FETCH_RULE, fetch_hub_weights, require_weights

ARCH = "test_resnet"  # timm's tiny ResNet; its hub weights are timm/test_resnet.r160_in1k


def make_fake_hub_cache(cache: Path, arch: str = ARCH) -> dict[str, torch.Tensor]:
    """A Hugging Face hub cache holding random 'pretrained' weights of `arch` in timm's format
    (the layout hf_hub_download reads offline: refs/main -> snapshots/<commit>/model.safetensors)."""
    import timm
    from safetensors.torch import save_file

    repo = timm.models.get_pretrained_cfg(arch).hf_hub_id
    commit = "0123456789abcdef0123456789abcdef01234567"
    base = cache / f"models--{repo.replace('/', '--')}"
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit)
    snapshot = base / "snapshots" / commit
    snapshot.mkdir(parents=True)
    torch.manual_seed(7)
    weights = {k: v.clone() for k, v in timm.create_model(arch).state_dict().items()}
    save_file(weights, str(snapshot / "model.safetensors"))
    return weights


@pytest.fixture
def hub(tmp_path, monkeypatch) -> dict[str, torch.Tensor]:
    import huggingface_hub.constants as hf

    cache = tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)
    return make_fake_hub_cache(cache)


@pytest.fixture
def no_network(monkeypatch):
    original = socket.socket.connect

    def refuse(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"network connection attempted to {address}")
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_fetch_then_train_offline(tmp_path, hub, no_network):
    out = tmp_path / "weights" / f"{ARCH}.safetensors"
    fetch_hub_weights(ARCH, out)
    from safetensors.torch import load_file

    saved = load_file(str(out))
    assert set(saved) == set(hub) and all(torch.equal(saved[k], hub[k]) for k in hub)

    # the training job: timm adapts the file (RGB conv summed to 1 channel, classifier dropped)
    model = build_model(ARCH, {}, 32, pretrained=True, hub_weights=out)
    assert torch.allclose(model.state_dict()["conv1.0.weight"], hub["conv1.0.weight"].sum(1, keepdim=True))
    assert torch.equal(model.state_dict()["layer1.0.conv1.weight"], hub["layer1.0.conv1.weight"])
    assert model.state_dict()["fc.weight"].shape == (1, hub["fc.weight"].shape[1])

    data = make_fake_dataset(tmp_path / "data", size=32)
    metrics = train_run(make_spec(tmp_path, data, "baseline", epochs=1, arch=ARCH, model="resnet",
                                  model_kwargs={}, pretrained=True, hub_weights=str(out)))
    assert metrics["hyperparameters"]["pretrained"] is True
    assert metrics["hyperparameters"]["pretrained_weights"] == str(out)


def test_missing_weights_name_the_rule(tmp_path):
    missing = tmp_path / f"{ARCH}.safetensors"
    with pytest.raises(FrugalmedError, match=FETCH_RULE) as err:
        require_weights(missing, ARCH)
    assert str(missing) in str(err.value)
    data = make_fake_dataset(tmp_path / "data", size=32)
    with pytest.raises(FrugalmedError, match=FETCH_RULE):
        train_run(make_spec(tmp_path, data, "baseline", epochs=1, arch=ARCH, model="resnet",
                            model_kwargs={}, pretrained=True, hub_weights=str(missing)))


def test_fetch_without_cache_or_network_says_what_to_do(tmp_path, monkeypatch, no_network):
    import huggingface_hub.constants as hf

    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)
    with pytest.raises(FrugalmedError, match="network"):
        fetch_hub_weights(ARCH, tmp_path / "w.safetensors")
    assert not (tmp_path / "w.safetensors").exists()


def test_pretrained_mlp_trains_from_scratch(tmp_path):
    data = make_fake_dataset(tmp_path / "data")
    metrics = train_run(make_spec(tmp_path, data, "baseline", epochs=1, pretrained=True))
    assert any("from scratch" in note for note in metrics["notes"])


@pytest.mark.slow
def test_workflow_fetches_weights_locally_before_training(tmp_path, repo, snakemake_exe):
    """pretrained: true adds the local rule fetch_pretrained_weights upstream of each timm
    model's training jobs, once per architecture; the MLP needs none."""
    override = {"train": {"pretrained": True, "weights_dir": "shared/weights"},
                "models": {"densenet": {"arch": "densenet121", "kwargs": None}}}
    (tmp_path / "override.yaml").write_text(yaml.safe_dump(override))
    cmd = [snakemake_exe, "-s", str(repo / "Snakefile"), "--directory", str(tmp_path), "-n",
           "--configfile", str(repo / "config/config.yaml"), str(tmp_path / "override.yaml"),
           "--", "results/runs/rsna/s1/densenet/amp/seed1/metrics.json",
           "results/runs/rsna/s1/mlp/amp/seed1/metrics.json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert re.search(r"^fetch_pretrained_weights\s+1$", out, re.MULTILINE), out[-2000:]
    assert re.search(r"^train\s+2$", out, re.MULTILINE)
    assert "output: shared/weights/densenet121.safetensors" in out
