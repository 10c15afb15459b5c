"""What a training run measures and reports beyond the basics (issues #13, #14, #15, #17, #18):
test predictions and their AUC interval, per-group AUC, host load, GPU-only energy, emissions,
saved activations without autocast's weight copies, tensor memory, determinism, no per-step
host sync, the split invariants, progress logging. CPU only, no network."""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

import frugalmed.train.loop as loop
from conftest_train import make_fake_dataset, make_spec
from frugalmed.errors import FrugalmedError
from frugalmed.quant.measure import saved_tensor_bytes
from frugalmed.train import run as run_module
from frugalmed.train.data import check_split_integrity, load_splits, make_loader
from frugalmed.train.determinism import apply_determinism
from frugalmed.train.environment import slurm_job
from frugalmed.train.loop import Precision, Progress, train_epoch
from frugalmed.train.measure import host_load as host_load_module
from frugalmed.train.measure.energy import EnergyMeter
from frugalmed.train.measure.host_load import HostLoad, own_cpu_seconds
from frugalmed.train.run import Hooks, train_run
from frugalmed.train.settings import get_setting


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    """The fake dataset plus a site column: site 0 mixes labels, site 1 is all negative."""
    manifest, images = make_fake_dataset(tmp_path_factory.mktemp("data"), n=80)
    table = pd.read_csv(manifest)
    table["site_id"] = np.where(np.arange(len(table)) % 2 == 0, 0, 1)
    table.loc[table["site_id"] == 1, "label"] = 0
    table.to_csv(manifest, index=False)
    return manifest, images


@pytest.fixture(autouse=True)
def _reset_determinism():
    yield
    apply_determinism(False)


@pytest.fixture(scope="module")
def run(tmp_path_factory, data) -> dict:
    """One amp run (autocast on the CPU) with a confound column; its outputs read back."""
    root = tmp_path_factory.mktemp("run")
    spec = make_spec(root, data, "amp", epochs=2, confound_columns=["site_id", "scanner"],
                     bootstrap=500, bootstrap_seed=3)
    metrics = train_run(spec)
    return {"metrics": metrics, "spec": spec,
            "json": json.loads(Path(spec.metrics_path).read_text()),
            "predictions": pd.read_csv(spec.predictions),
            "epochs": pd.read_csv(spec.epochs_path)}


# --- predictions.csv and the AUC interval ----------------------------------------------------

def test_predictions_are_the_test_split_in_manifest_order(run, data):
    manifest = pd.read_csv(data[0])
    predictions = run["predictions"]
    assert list(predictions.columns) == ["row", "patient_id", "label", "prob"]
    test_rows = np.flatnonzero(manifest["split"] == "test")
    assert predictions["row"].tolist() == test_rows.tolist()
    assert predictions["patient_id"].tolist() == manifest["patient_id"].iloc[test_rows].tolist()
    assert predictions["label"].tolist() == manifest["label"].iloc[test_rows].tolist()
    assert predictions["prob"].between(0, 1).all()
    assert run["metrics"]["test_auc"] == pytest.approx(
        roc_auc_score(predictions["label"], predictions["prob"]))


def test_auc_interval_from_the_predictions(run):
    from frugalmed.stats.auc import patient_bootstrap_auc

    metrics, predictions = run["json"], run["predictions"]
    low, high = metrics["test_auc_ci"]
    assert low <= metrics["test_auc"] <= high
    again = patient_bootstrap_auc(predictions["label"], predictions["prob"],
                                  predictions["patient_id"], 500, seed=3)
    assert [low, high] == pytest.approx(again.interval)
    assert "500 resamples" in metrics["test_auc_ci_method"]


def test_predictions_use_the_best_validation_weights(tmp_path, data):
    """A run whose last epoch is worse than its best must score the test set with the best
    epoch's weights (catches: best weights not restored before the test pass)."""
    def ascend_in_last_epoch(step, loss):  # gradient ascent after epoch 1 ruins the model
        ascend_in_last_epoch.calls += 1
        return -50 * loss if ascend_in_last_epoch.calls > 4 else loss
    ascend_in_last_epoch.calls = 0

    spec = make_spec(tmp_path, data, "baseline", epochs=2, keep_checkpoint=True, lr=3e-3)
    metrics = train_run(spec, Hooks(loss=ascend_in_last_epoch))
    assert metrics["best_epoch"] == 1 and metrics["epochs_run"] == 2
    final = torch.load(Path(spec.checkpoint_path).with_name("final.pt"), weights_only=False)
    from frugalmed.train.loop import predict
    from frugalmed.train.models import build_model

    split = load_splits(*data)
    model = build_model("mlp", spec.model_kwargs, split.image_size)
    test = make_loader(split.datasets["test"], 16, 0)
    model.load_state_dict(final["model"])  # the last epoch's weights
    last, _, _ = predict(model, test, Precision.for_setting(get_setting("baseline"), torch.device("cpu")))
    model.load_state_dict(final["best_state"])
    best, _, _ = predict(model, test, Precision.for_setting(get_setting("baseline"), torch.device("cpu")))
    written = pd.read_csv(spec.predictions)["prob"].to_numpy()
    assert np.allclose(written, best, atol=1e-6)
    assert not np.allclose(written, last, atol=1e-3)


def test_diverged_run_lists_the_test_rows_without_probabilities(tmp_path, data):
    spec = make_spec(tmp_path, data, "baseline", epochs=2)
    metrics = train_run(spec, Hooks(loss=lambda step, loss: loss * float("nan")))
    predictions = pd.read_csv(spec.predictions)
    assert metrics["test_auc"] is None and metrics["test_auc_ci"] is None
    assert len(predictions) == metrics["data"]["test"]["n"] and predictions["prob"].isna().all()


def test_auc_by_group(run):
    """Groups with both labels get sklearn's AUC on their images; one-class groups and columns
    the manifest lacks are left out (with a note)."""
    metrics, predictions = run["json"], run["predictions"]
    manifest = pd.read_csv(run["spec"].manifest)
    by_site = metrics["test_auc_by_group"]["site_id"]
    assert set(by_site) == {"0"}  # site 1 has negatives only
    site0 = predictions[manifest["site_id"].to_numpy()[predictions["row"]] == 0]
    assert by_site["0"] == {"auc": pytest.approx(roc_auc_score(site0["label"], site0["prob"])),
                            "n": len(site0), "positives": int(site0["label"].sum())}
    assert metrics["test_auc_by_group"]["scanner"] is None
    assert any("scanner" in note for note in metrics["notes"])


# --- memory ----------------------------------------------------------------------------------

def test_autocast_weight_copies_are_not_activations():
    """A Linear-only model under autocast: saved activations are exactly the activations
    (the input's low-precision copy and each hidden output), the weight casts apart."""
    model = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 40), nn.ReLU(), nn.Linear(40, 1))
    x = torch.randn(8, 20)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        saved = saved_tensor_bytes(model, x)
    assert saved.activation_bytes == 8 * (20 + 30 + 40) * 2
    # weights of the 2nd and 3rd layers (the 1st needs no input gradient, so autograd keeps none)
    assert saved.autocast_weight_copy_bytes == (40 * 30 + 1 * 40) * 2
    assert saved_tensor_bytes(model, x).autocast_weight_copy_bytes == 0


def test_tensor_memory_is_the_sum_of_its_parts(run):
    metrics = run["json"]
    parts = metrics["state_bytes"]
    assert metrics["tensor_memory_bytes"] == (parts["params"] + parts["grads"] + parts["optimizer"]
                                              + metrics["saved_activation_bytes"])
    assert metrics["autocast_weight_copy_bytes"] > 0  # amp: bf16 weight casts on the CPU
    assert metrics["cuda_max_allocated_bytes"] is None  # CPU run


# --- energy and emissions --------------------------------------------------------------------

class FakeTracker:
    instances: list["FakeTracker"] = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self._hardware = []
        FakeTracker.instances.append(self)

    def start(self):
        pass

    def start_task(self, name):
        pass

    def stop_task(self):
        from types import SimpleNamespace

        return SimpleNamespace(gpu_energy=1e-6, cpu_energy=2e-6, ram_energy=3e-6, emissions=1e-6,
                               cpu_power=1.0, ram_power=1.0, gpu_power=1.0)

    def stop(self):
        pass


def test_energy_tracks_only_the_jobs_gpu(tmp_path, data, monkeypatch):
    """The tracker is built with gpu_ids = the job's NVML index (catches: every GPU summed)."""
    import codecarbon

    from frugalmed.train.measure.gpu import NvmlGpu

    FakeTracker.instances = []
    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", FakeTracker)
    monkeypatch.setattr(run_module, "nvml_gpu", lambda device: NvmlGpu(None, None, 5))
    monkeypatch.setattr(run_module, "GpuLoadSampler", lambda nvml, handle: None)
    metrics = train_run(make_spec(tmp_path, data, "baseline", epochs=1))
    assert [t.kwargs.get("gpu_ids") for t in FakeTracker.instances] == [[5]]
    assert metrics["energy_detail"]["gpu_ids"] == [5]
    # one warm-up task in the background start, then one task per epoch + the test pass
    assert metrics["energy_kwh"] == pytest.approx(6e-6)
    assert metrics["emissions_kg_co2eq"] == pytest.approx(1e-6)


def test_no_gpu_ids_on_the_cpu(monkeypatch):
    import codecarbon

    FakeTracker.instances = []
    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", FakeTracker)
    meter = EnergyMeter("DNK")
    meter.start_in_background()
    meter.ready()
    assert "gpu_ids" not in FakeTracker.instances[0].kwargs and meter.tracker is not None


def test_emissions_follow_the_energy(run):
    """codecarbon's CO2 figure: the epochs' emissions add up, at one carbon intensity."""
    metrics, epochs = run["json"], run["epochs"]
    assert metrics["emissions_kg_co2eq"] > 0
    assert metrics["emissions_kg_co2eq"] == pytest.approx(epochs["emissions_kg_co2eq"].sum())
    intensity = epochs["emissions_kg_co2eq"] / epochs["energy_kwh"]
    assert intensity.max() == pytest.approx(intensity.min(), rel=1e-6)
    assert "DNK" in metrics["emissions_source"]


# --- host load -------------------------------------------------------------------------------

def test_host_load_arithmetic(monkeypatch):
    """share = (host busy - own tree) / capacity, summed over windows."""
    host = iter([(100.0, 400.0, 4), (130.0, 440.0, 4), (200.0, 500.0, 4), (220.0, 540.0, 4)])
    own = iter([10.0, 20.0, 30.0, 30.0])
    monkeypatch.setattr(host_load_module, "read_host_cpu", lambda: next(host))
    monkeypatch.setattr(host_load_module, "own_cpu_seconds", lambda: next(own))
    load = HostLoad()
    load.begin()
    assert load.end() == pytest.approx((30 - 10) / 40)
    load.begin()
    assert load.end() == pytest.approx(20 / 40)
    summary = load.summary()
    assert summary["cpu_other_share"] == pytest.approx(40 / 80) and summary["cpu_count"] == 4
    assert summary["gpu_other_util"] is None
    resumed = HostLoad()
    resumed.restore(load.state())
    assert resumed.summary()["cpu_other_share"] == pytest.approx(0.5)


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_own_process_tree_includes_children_alive_and_reaped():
    """A DataLoader worker's CPU time is the job's own, not 'other' (catches: workers counted
    as contention, which would flag every multi-worker run)."""
    ctx = multiprocessing.get_context("fork")
    before = own_cpu_seconds()
    child = ctx.Process(target=_burn, args=(0.5,))
    child.start()
    child.join()
    assert own_cpu_seconds() - before >= 0.4


def _detached_burner() -> int:
    """A CPU-burning process outside this process tree (its launcher exits, so it is re-parented):
    a child of the test process would count as the training job's own CPU time. Its output goes
    to /dev/null, or it would hold the launcher's pipe open and subprocess.run would never end."""
    launcher = ("import subprocess, sys; "
                "p = subprocess.Popen([sys.executable, '-c', 'while True: pass'], "
                "start_new_session=True, stdin=subprocess.DEVNULL, "
                "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(p.pid)")
    done = subprocess.run([sys.executable, "-c", launcher], capture_output=True, text=True,
                          check=True)
    return int(done.stdout.strip())


@pytest.mark.slow
def test_run_beside_a_cpu_burner_records_host_load(tmp_path, data):
    """A run with a CPU-burning process beside it on each of its CPUs reports their load.

    The share is of the whole host (/proc/stat's CPUs), which in a container can be far more
    CPUs than the job may use (CI: 2 of 48), so the check is in CPUs: the burners compete with
    the job for its n CPUs and get at least about half of them, so other processes kept at
    least 0.4 x n CPUs busy; on a host whose CPUs are all the job's, that is a share above
    study.max_host_load's default 0.25 as well."""
    import os
    import signal

    n = len(os.sched_getaffinity(0))
    burners = [_detached_burner() for _ in range(n)]
    try:
        time.sleep(0.5)
        metrics = train_run(make_spec(tmp_path, data, "baseline", epochs=2))
    finally:
        for pid in burners:
            os.kill(pid, signal.SIGKILL)
    load = metrics["host_load"]
    assert load["cpu_count"] >= n
    assert load["cpu_other_share"] * load["cpu_count"] >= 0.4 * n, load
    if load["cpu_count"] == n:
        assert load["cpu_other_share"] > 0.25, load


def test_host_load_is_reported(run):
    load = run["json"]["host_load"]
    assert set(load) == {"cpu_other_share", "gpu_other_util", "cpu_count", "method"}
    assert 0 <= load["cpu_other_share"] <= 1 and load["gpu_other_util"] is None
    assert run["epochs"]["cpu_other_share"].between(0, 1).all()
    assert run["json"]["exclusive"] is False


def test_gpu_sampler_counts_only_other_processes(monkeypatch):
    """NVML per-process samples: ours are ignored, others' SM utilisation averaged per poll."""
    from types import SimpleNamespace

    from frugalmed.train.measure.host_load import GpuLoadSampler

    me = __import__("os").getpid()

    class FakeNvml:
        class NVMLError_NotFound(Exception):
            pass

        def nvmlDeviceGetComputeRunningProcesses(self, handle):
            return [SimpleNamespace(pid=me), SimpleNamespace(pid=99999)]

        def nvmlDeviceGetProcessUtilization(self, handle, since):
            return [SimpleNamespace(pid=me, smUtil=90, timeStamp=since + 1),
                    SimpleNamespace(pid=99999, smUtil=20, timeStamp=since + 2),
                    SimpleNamespace(pid=99999, smUtil=40, timeStamp=since + 3)]

    sampler = GpuLoadSampler(FakeNvml(), handle=None, interval_s=3600)
    load = HostLoad()
    load.attach_gpu(sampler)
    load.begin()
    load.end()
    load.close()
    assert load.summary()["gpu_other_util"] == pytest.approx(0.30)


# --- the loop --------------------------------------------------------------------------------

def test_training_loop_reads_nothing_back_per_step(monkeypatch):
    """No .item()/.cpu()/float() per step in the loop: host reads only every NAN_CHECK_EVERY
    steps and at the end (catches a per-step loss.item(), a host-device sync on CUDA)."""
    torch.manual_seed(0)
    x, y = torch.randn(120, 1, 4, 4), (torch.rand(120, 1) < 0.5).float()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 1))
    optimizer = torch.optim.Adam(model.parameters())
    precision = Precision.for_setting(get_setting("baseline"), torch.device("cpu"))
    reads = []

    def counting(name):
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, **kwargs):
            # reads made by the loop's own code (torch's Adam reads its CPU step counter with
            # .item(), which never waits for a device)
            if sys._getframe(1).f_code.co_filename == loop.__file__:
                reads.append(name)
            return original(self, *args, **kwargs)
        return wrapper

    for name in ("item", "cpu", "tolist", "numpy", "__float__", "__int__", "__bool__"):
        monkeypatch.setattr(torch.Tensor, name, counting(name))
    monkeypatch.setattr(loop, "NAN_CHECK_EVERY", 50)
    loss = train_epoch(model, loader, optimizer, precision)
    monkeypatch.undo()
    steps = 120
    assert len(reads) <= steps // 50 + 2, reads
    assert math.isfinite(loss)


def test_a_transient_nan_still_marks_its_epoch_diverged(tmp_path, data, monkeypatch):
    """One non-finite loss in the middle of epoch 2, between NaN checks, finite again after:
    the run is diverged in epoch 2 and keeps epoch 1 as its best."""
    monkeypatch.setattr(loop, "NAN_CHECK_EVERY", 2)
    calls = {"n": 0}

    def one_nan(step, loss):
        calls["n"] += 1
        return loss * float("nan") if calls["n"] == 6 else loss  # 4 steps per epoch: epoch 2, step 1

    spec = make_spec(tmp_path, data, "bnb8", epochs=3, batch_size=12)
    metrics = train_run(spec, Hooks(loss=one_nan))
    assert metrics["diverged"] and metrics["epochs_run"] == 2 and metrics["best_epoch"] == 1
    assert pd.read_csv(spec.epochs_path)["diverged"].tolist() == [False, True]


def test_progress_is_logged_at_most_every_n_seconds(caplog):
    lines = []
    progress = Progress(every_s=0.05, label="epoch 1/1: ", log=lines.append)
    progress.start(total_steps=10, batch_size=4)
    for step in range(1, 11):
        time.sleep(0.02)
        progress.step(step)
    assert 2 <= len(lines) <= 5
    assert "step" in lines[0] and "/10" in lines[0] and "images/s" in lines[0] and "ETA" in lines[0]
    silent = []
    off = Progress(every_s=0, log=silent.append)
    off.start(10, 4)
    off.step(5)
    assert silent == []


# --- determinism -----------------------------------------------------------------------------

def test_deterministic_flag_is_applied_and_recorded(tmp_path, data):
    metrics = train_run(make_spec(tmp_path, data, "baseline", epochs=1, deterministic=True))
    assert metrics["deterministic"] is True
    assert metrics["determinism"]["deterministic_algorithms"] is True
    assert metrics["determinism"]["cudnn_deterministic"] is True
    assert metrics["determinism"]["cublas_workspace_config"]
    off = train_run(make_spec(tmp_path, data, "baseline", name="off", epochs=1))
    assert off["deterministic"] is False and off["determinism"]["deterministic_algorithms"] is False


# --- invariants ------------------------------------------------------------------------------

def test_the_run_trains_on_the_training_rows_only(data):
    split = load_splits(*data)
    manifest = pd.read_csv(data[0])
    for name in ("train", "val", "test"):
        assert split.rows(name).tolist() == np.flatnonzero(manifest["split"] == name).tolist()


def test_a_test_row_among_the_training_rows_is_refused(data):
    manifest = pd.read_csv(data[0])
    rows = {name: np.flatnonzero(manifest["split"] == name) for name in ("train", "val", "test")}
    leaked = dict(rows, train=np.append(rows["train"], rows["test"][0]))
    with pytest.raises(FrugalmedError, match=rf"manifest.csv.*row {rows['test'][0]}.*'test'"):
        check_split_integrity(manifest, leaked, data[0])


def test_a_patient_in_two_splits_is_refused(tmp_path, data):
    manifest = pd.read_csv(data[0])
    first_test = np.flatnonzero(manifest["split"] == "test")[0]
    manifest.loc[first_test, "patient_id"] = manifest.loc[0, "patient_id"]  # row 0 is train
    bad = tmp_path / "manifest.csv"
    manifest.to_csv(bad, index=False)
    with pytest.raises(FrugalmedError, match=rf"{bad}.*patient '{manifest.loc[0, 'patient_id']}'"):
        train_run(make_spec(tmp_path, (bad, data[1]), "baseline", epochs=1))


# --- SLURM allocation check ------------------------------------------------------------------

def test_slurm_job_reads_oversubscribe(tmp_path, monkeypatch, data, caplog):
    fake = tmp_path / "bin" / "scontrol"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho JobId=$4 JobName=train OverSubscribe=OK Partition=gpu\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    assert slurm_job()["oversubscribe"] == "OK" and slurm_job()["job_id"] == "4242"
    with caplog.at_level(logging.WARNING, logger="frugalmed.train.run"):
        metrics = train_run(make_spec(tmp_path, data, "baseline", epochs=1, exclusive=True))
    assert "may share its node" in caplog.text
    assert metrics["environment"]["slurm"]["oversubscribe"] == "OK" and metrics["exclusive"] is True


# --- learning --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def learnable(tmp_path_factory) -> tuple[Path, Path]:
    """200 noise images of 16 px; positives carry a bright disc of radius 4 somewhere near the
    centre: any setting that trains at all separates them."""
    directory = tmp_path_factory.mktemp("learnable")
    manifest, images = make_fake_dataset(directory, n=200, size=16, seed=3)
    labels = pd.read_csv(manifest)["label"].to_numpy()
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 100, (200, 16, 16)).astype(np.uint8)
    yy, xx = np.mgrid[:16, :16]
    for i in np.flatnonzero(labels):
        cy, cx = rng.integers(5, 11, 2)
        pixels[i][(yy - cy) ** 2 + (xx - cx) ** 2 <= 16] += 120
    np.save(images, pixels)
    return manifest, images


@pytest.mark.slow
@pytest.mark.parametrize("setting", list(__import__("frugalmed.train.settings", fromlist=["x"]).SETTING_NAMES))
def test_every_setting_learns(tmp_path, learnable, setting):
    """Each setting's CPU path beats chance clearly on a learnable task (40 test images: AUC
    0.8 is > 3 standard deviations above chance). Catches a setting that silently does not
    train: a frozen optimizer, gradients lost to a dtype cast, a broken quantiser."""
    metrics = train_run(make_spec(tmp_path, learnable, setting, epochs=4, lr=3e-3,
                                  model_kwargs={"hidden_sizes": [256]}))
    assert metrics["test_auc"] >= 0.8, (setting, metrics["test_auc"], metrics["best_val_auc"])


# --- the job's GPU as NVML sees it -----------------------------------------------------------

def test_cuda_device_is_matched_to_nvml_by_pci_bus_id(monkeypatch):
    """cuda:0 of a job is NVML's GPU 3 when CUDA_VISIBLE_DEVICES=3: the match goes by PCI bus
    id, not by index (catches: codecarbon tracking NVML GPU 0, someone else's)."""
    from types import SimpleNamespace

    from frugalmed.train.measure import gpu as gpu_module

    props = SimpleNamespace(pci_domain_id=0, pci_bus_id=0x3B, pci_device_id=0, name="Fake GPU",
                            total_memory=80e9, uuid="1234")
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: props)

    class FakeNvml:
        def nvmlDeviceGetHandleByPciBusId(self, bus):
            assert bus == "00000000:3B:00.0"
            return "handle-3"

        def nvmlDeviceGetIndex(self, handle):
            return {"handle-3": 3}[handle]

        def nvmlSystemGetDriverVersion(self):
            return b"550.54"

        def nvmlDeviceGetUUID(self, handle):
            return "GPU-1234"

        def nvmlDeviceGetMigMode(self, handle):
            return (0, 0)

        def nvmlDeviceGetComputeMode(self, handle):
            return 3

        def nvmlDeviceGetComputeRunningProcesses(self, handle):
            return [SimpleNamespace(pid=1)]

    device = torch.device("cuda", 0)
    found = gpu_module.nvml_gpu(device, FakeNvml())
    assert found.index == 3
    info = gpu_module.gpu_info(device, found).as_dict()
    assert info["name"] == "Fake GPU" and info["nvml_index"] == 3 and info["cuda_index"] == 0
    assert info["driver_version"] == "550.54" and info["mig_mode"] is False
    assert info["compute_mode"] == "exclusive_process" and info["processes_at_start"] == 1
    assert gpu_module.nvml_gpu(torch.device("cpu"), FakeNvml()) is None
