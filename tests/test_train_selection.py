"""Model selection and the one test pass: which epoch's weights are tested, when training stops,
and which optimizer and precision each setting really gets.

These are the rules behind every reported test AUC. A bug here changes the study's numbers
without failing anything else: a test pass on the last epoch's weights instead of the best
validation epoch's, a tie broken the wrong way, a patience off by one, 8-bit Adam silently
replaced by torch's Adam.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from conftest_train import make_fake_dataset, make_spec
from frugalmed.train import run as run_module
from frugalmed.train.loop import Precision, predict as real_predict
from frugalmed.train.run import choose_device, make_optimizer, train_run
from frugalmed.train.settings import SETTING_NAMES, get_setting

EIGHT_BIT = {"bnb8", "bnb8_half", "amp_bnb8", "act8_bnb8"}


# --- the test pass uses the best validation epoch's weights --------------------------------

@pytest.fixture(scope="module")
def twin_splits(tmp_path_factory) -> tuple[Path, Path]:
    """Validation and test splits holding the same images with the same labels, in the same
    order (other patients' ids): a model scores both identically, so the test pass of the
    best-validation weights must reproduce that epoch's validation loss exactly."""
    directory = tmp_path_factory.mktemp("twins")
    manifest, images = make_fake_dataset(directory, n=60, size=16, seed=5)
    frame = pd.read_csv(manifest)
    pixels = np.load(images)
    val, test = np.flatnonzero(frame["split"] == "val"), np.flatnonzero(frame["split"] == "test")
    assert len(val) == len(test)
    pixels[test] = pixels[val]
    frame.loc[test, "label"] = frame.loc[val, "label"].to_numpy()
    np.save(images, pixels)
    frame.to_csv(manifest, index=False)
    return manifest, images


def test_the_test_pass_uses_the_best_validation_weights(tmp_path, twin_splits, monkeypatch):
    """Validation AUCs are scripted so that epoch 1 is the best of three (the losses are the real
    ones); the weights keep changing in epochs 2 and 3. The test split is a copy of the
    validation split, so the test pass must reproduce epoch 1's real validation loss exactly,
    not epoch 3's (catches the test pass running on the last weights, or on another epoch's)."""
    real_val_losses = []

    def record(probs, labels, loss):
        real_val_losses.append(loss)

    _scripted(monkeypatch, [(0.9, None), (0.6, None), (0.6, None)], record)
    spec = make_spec(tmp_path, twin_splits, "baseline", epochs=3, patience=5, lr=3e-3)
    metrics = train_run(spec)
    epochs = pd.read_csv(spec.epochs_path)
    assert metrics["best_epoch"] == 1 and epochs["is_best"].tolist() == [True, False, False]
    assert len(real_val_losses) == 3 and abs(real_val_losses[2] - real_val_losses[0]) > 1e-4
    assert metrics["test_loss"] == pytest.approx(real_val_losses[0], rel=1e-6, abs=1e-7)
    assert len(pd.read_csv(spec.predictions)) == metrics["data"]["test"]["n"]


# --- selection, ties and early stopping, with scripted validation results ------------------

def _scripted(monkeypatch, val_results, record=None):
    """Replace the validation pass's AUC and loss by a script of (AUC or None, loss or None)
    per epoch; None keeps the real loss. The real pass still runs (its results go to `record`);
    the test pass is untouched. AUC a is given by probabilities whose ranking yields a."""
    calls = {"val": 0}

    def fake_predict(model, loader, precision):
        probs, labels, loss = real_predict(model, loader, precision)
        if loader.dataset is not fake_predict.val_dataset:
            return probs, labels, loss
        if record is not None:
            record(probs, labels, loss)
        auc, scripted_loss = val_results[calls["val"]]
        calls["val"] += 1
        return _probs_with_auc(labels, auc), labels, loss if scripted_loss is None else scripted_loss

    original_load = run_module.load_splits

    def load(manifest, images):
        data = original_load(manifest, images)
        fake_predict.val_dataset = data.datasets["val"]
        return data

    monkeypatch.setattr(run_module, "predict", fake_predict)
    monkeypatch.setattr(run_module, "load_splits", load)
    return calls


def _probs_with_auc(labels: np.ndarray, auc: float | None) -> np.ndarray:
    """Scores whose ROC AUC against `labels` is `auc` (to 1/(n_pos*n_neg)); one class: any."""
    from sklearn.metrics import roc_auc_score

    if auc is None:
        return np.full(len(labels), 0.5, np.float32)
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    # all positives above all negatives, then swap enough pairs to lose (1 - auc) of the pairs
    scores = np.where(labels == 1, 1.0, 0.0).astype(np.float64)
    wrong = int(round((1 - auc) * len(pos) * len(neg)))
    order_pos = np.linspace(0.55, 0.95, len(pos))
    order_neg = np.linspace(0.05, 0.45, len(neg))
    scores[pos], scores[neg] = order_pos, order_neg
    # move the lowest positives below the highest negatives, one pair at a time
    k = 0
    while wrong > 0 and k < len(pos):
        take = min(wrong, len(neg))
        scores[pos[k]] = order_neg[len(neg) - take] - 1e-3
        wrong -= take
        k += 1
    got = roc_auc_score(labels, scores)
    assert abs(got - auc) <= 1.0 / (len(pos) * len(neg)) + 1e-12, (got, auc)
    return scores.astype(np.float32)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    return make_fake_dataset(tmp_path_factory.mktemp("data"), n=40, size=12)


def _run(tmp_path, data, monkeypatch, script, **overrides):
    _scripted(monkeypatch, script)
    spec = make_spec(tmp_path, data, "baseline", **{"epochs": len(script), "patience": 2, **overrides})
    metrics = train_run(spec)
    return metrics, pd.read_csv(spec.epochs_path)


def test_best_epoch_is_the_highest_validation_auc_and_patience_stops(tmp_path, data, monkeypatch):
    """AUC 0.6, 0.8, 0.7, 0.75 with patience 2: epoch 2 is best, two epochs without a better
    AUC stop the run after epoch 4 (catches >/>= flips in the comparison and an off-by-one
    patience)."""
    script = [(0.6, 0.9), (0.8, 0.8), (0.7, 0.7), (0.75, 0.6), (0.9, 0.5), (0.95, 0.4)]
    metrics, epochs = _run(tmp_path, data, monkeypatch, script)
    assert metrics["best_epoch"] == 2 and metrics["best_val_auc"] == epochs["val_auc"].iloc[1]
    assert metrics["epochs_run"] == 4 and metrics["stop_reason"] == "early_stopping"
    assert epochs["is_best"].tolist() == [True, True, False, False]
    assert metrics["selection_metric"] == "val_auc"


def test_an_auc_tie_goes_to_the_lower_validation_loss(tmp_path, data, monkeypatch):
    """Saturated AUC (1.0 twice): the later epoch wins only because its loss is lower; an equal
    AUC with a higher loss is not an improvement."""
    script = [(1.0, 0.5), (1.0, 0.3), (1.0, 0.4)]
    metrics, epochs = _run(tmp_path, data, monkeypatch, script, patience=5)
    assert epochs["is_best"].tolist() == [True, True, False]
    assert metrics["best_epoch"] == 2 and metrics["stop_reason"] == "max_epochs"


def test_a_single_class_validation_split_selects_by_loss(tmp_path, monkeypatch):
    """Without both labels in validation the AUC is undefined: the lowest loss is the best."""
    manifest, images = make_fake_dataset(tmp_path / "d", n=40, size=12)
    frame = pd.read_csv(manifest)
    frame.loc[frame["split"] == "val", "label"] = 0
    frame.to_csv(manifest, index=False)
    script = [(None, 0.7), (None, 0.5), (None, 0.6), (None, 0.4)]
    metrics, epochs = _run(tmp_path, (manifest, images), monkeypatch, script, patience=5)
    assert metrics["selection_metric"] == "val_loss"
    assert epochs["is_best"].tolist() == [True, True, False, True]
    assert metrics["best_epoch"] == 4 and metrics["best_val_auc"] is None


def test_patience_counts_epochs_since_the_last_improvement(tmp_path, data, monkeypatch):
    """An improvement resets the count: with patience 2, AUC 0.6, 0.5, 0.7, 0.6, 0.65 stops
    after epoch 5 (two epochs after the best, epoch 3), not after epoch 3."""
    script = [(0.6, 1.0), (0.5, 1.0), (0.7, 1.0), (0.6, 1.0), (0.65, 1.0), (0.9, 1.0)]
    metrics, _ = _run(tmp_path, data, monkeypatch, script)
    assert metrics["best_epoch"] == 3 and metrics["epochs_run"] == 5


# --- what each setting gets ------------------------------------------------------------------

@pytest.mark.parametrize("name", SETTING_NAMES)
def test_each_setting_gets_its_optimizer_and_it_keeps_8bit_state(name):
    """bnb8 settings train with bitsandbytes' Adam8bit: after a step, a weight of >= 4096
    elements has uint8 moments; the others use torch's Adam with fp32 moments. Catches 8-bit
    Adam replaced by torch's Adam (a bnb8 run would then measure the baseline's memory)."""
    import bitsandbytes as bnb

    setting = get_setting(name)
    assert (setting.optimizer == "adam8bit") == (name in EIGHT_BIT)
    layer = nn.Linear(128, 64)  # 8192 weights: above bitsandbytes' min_8bit_size
    optimizer = make_optimizer(setting, layer.parameters(), lr=2e-3)
    assert optimizer.param_groups[0]["lr"] == 2e-3  # not the optimizers' default 1e-3
    before = layer.weight.detach().clone()
    layer(torch.randn(4, 128)).sum().backward()
    optimizer.step()
    assert not torch.equal(before, layer.weight)
    moments = [v for v in optimizer.state[layer.weight].values()
               if torch.is_tensor(v) and v.shape == layer.weight.shape]
    if name in EIGHT_BIT:
        assert isinstance(optimizer, bnb.optim.Adam8bit)
        assert moments and all(v.dtype == torch.uint8 for v in moments)
    else:
        assert type(optimizer) is torch.optim.Adam
        assert len(moments) == 2 and all(v.dtype == torch.float32 for v in moments)


CPU_PRECISION = {  # setting -> (weights, autocast) on a CPU: bf16 stands in for CUDA's fp16
    "baseline": (torch.float32, None), "amp": (torch.float32, torch.bfloat16),
    "bnb8": (torch.float32, None), "bnb8_half": (torch.bfloat16, None),
    "amp_bnb8": (torch.float32, torch.bfloat16), "act8": (torch.float32, None),
    "act8_bnb8": (torch.float32, None),
}


@pytest.mark.parametrize("name", SETTING_NAMES)
def test_cpu_precision_of_each_setting(name):
    precision = Precision.for_setting(get_setting(name), torch.device("cpu"))
    assert (precision.weights_dtype, precision.autocast_dtype) == CPU_PRECISION[name]
    assert precision.scaler is None  # no GradScaler on the CPU: bf16 has fp32's range
    layer = nn.Linear(4, 2).to(precision.weights_dtype)
    with precision.autocast():
        out = layer(torch.randn(3, 4, dtype=precision.weights_dtype))
    assert out.dtype == (precision.autocast_dtype or precision.weights_dtype)


def test_quantised_activations_only_for_the_act8_settings():
    assert {n for n in SETTING_NAMES if get_setting(n).quantize_activations} == {"act8", "act8_bnb8"}
    assert {n for n in SETTING_NAMES if get_setting(n).autocast} == {"amp", "amp_bnb8"}
    assert {n for n in SETTING_NAMES if get_setting(n).weights_dtype == "half"} == {"bnb8_half"}
    with pytest.raises(KeyError, match=r"unknown setting 'amp8'.*baseline"):
        get_setting("amp8")


def test_no_gpu_requested_means_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert choose_device(False) == torch.device("cpu")
    assert choose_device(True) == torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_device(True) == torch.device("cpu")


# --- what a run records: the epochs table and the metrics add up ----------------------------

def test_the_epochs_table_and_the_metrics_add_up(tmp_path, data, monkeypatch, caplog):
    """Each epoch's row, and the run's totals built from them. Bug caught: a time, energy or
    CO2 figure of the run that is not the sum of its epochs' (or is one epoch's), an epoch
    time that is not its training plus validation pass, time-to-best taken at another epoch,
    a row key misspelt (its column empty), progress lines without their epoch."""
    import time

    caplog.set_level("INFO", logger="frugalmed.train.run")
    script = [(0.6, 0.9), (0.8, 0.8), (0.7, 0.7)]
    started = time.perf_counter()
    metrics, epochs = _run(tmp_path, data, monkeypatch, script, patience=5, progress_every_s=1e-9)
    wall = time.perf_counter() - started
    assert list(epochs.columns) == list(run_module.EPOCH_COLUMNS)
    assert epochs["epoch"].tolist() == [1, 2, 3] and epochs["session"].tolist() == [1, 1, 1]
    assert epochs["diverged"].tolist() == [False] * 3 and epochs["train_loss"].notna().all()
    times = epochs[["epoch_time_s", "train_pass_s", "val_pass_s", "cpu_time_s"]]
    assert (times > 0).all().all()
    assert np.allclose(epochs["epoch_time_s"], epochs["train_pass_s"] + epochs["val_pass_s"])
    assert metrics["train_time_s"] == pytest.approx(epochs["epoch_time_s"].sum())
    assert metrics["train_cpu_time_s"] == pytest.approx(epochs["cpu_time_s"].sum())
    assert metrics["time_to_best_s"] == pytest.approx(epochs["epoch_time_s"].iloc[:2].sum())
    assert metrics["energy_kwh"] >= 0  # codecarbon may round a short epoch's energy to 0
    assert epochs[["energy_kwh", "energy_kwh_gpu", "energy_kwh_cpu", "energy_kwh_ram",
                   "emissions_kg_co2eq"]].notna().all().all()
    for column in ("energy_kwh", "energy_kwh_gpu", "energy_kwh_cpu", "energy_kwh_ram",
                   "emissions_kg_co2eq"):
        assert metrics[column] == pytest.approx(epochs[column].sum(), rel=1e-9, abs=1e-18), column
    # a window shorter than the kernel's CPU clock tick has no share (NaN); others lie in [0, 1]
    shares = epochs["cpu_other_share"].dropna()
    assert ((shares >= 0) & (shares <= 1)).all() and "cpu_other_share" in metrics["host_load"]
    assert all(metrics["state_bytes"][part] > 0 for part in ("params", "grads", "optimizer"))
    assert metrics["peak_memory_gb"] > 0
    inference = metrics["inference"]
    assert inference["n_images"] == metrics["data"]["test"]["n"] and inference["batch_size"] == 16
    assert 0 < inference["time_s"] < wall
    assert inference["latency_ms_per_image"] == pytest.approx(1000 * inference["time_s"] / inference["n_images"])
    assert inference["energy_kwh"] >= 0 and inference["emissions_kg_co2eq"] >= 0  # None: not measured
    progress = [r.getMessage() for r in caplog.records if ": step " in r.getMessage()]
    assert progress and all(m.startswith(f"epoch {m[6]}/3: step ") for m in progress)
    assert {m[6] for m in progress} == {"1", "2", "3"}


def test_a_diverged_epoch_ends_the_run_and_is_never_the_best(tmp_path, data):
    """A NaN loss in epoch 2: the run stops there, flagged; epoch 1's weights are tested.
    Bug caught: training on after the NaN, or the diverged epoch selected as the best."""
    calls = itertools.count(1)

    def nan_in_epoch_2(step, loss):  # 2 steps per epoch: the 4th call is epoch 2's last step
        return loss * float("nan") if next(calls) > 3 else loss
    spec = make_spec(tmp_path, data, "baseline", epochs=4, patience=5)
    metrics = train_run(spec, run_module.Hooks(loss=nan_in_epoch_2))
    epochs = pd.read_csv(spec.epochs_path)
    assert metrics["stop_reason"] == "diverged" and metrics["epochs_run"] == 2
    assert epochs["diverged"].tolist() == [False, True] and epochs["is_best"].tolist() == [True, False]
    assert metrics["best_epoch"] == 1 and metrics["test_auc"] is not None


def test_a_run_whose_first_epoch_diverges_has_no_test_metrics(tmp_path, data):
    """No epoch finished with finite losses, so there are no weights to test: every test figure
    is null (not a number from untrained or NaN weights)."""
    spec = make_spec(tmp_path, data, "baseline", epochs=3, patience=5)
    metrics = train_run(spec, run_module.Hooks(loss=lambda step, loss: loss * float("nan")))
    assert metrics["stop_reason"] == "diverged" and metrics["best_epoch"] is None
    for key in ("test_auc", "test_accuracy", "test_loss", "inference"):
        assert metrics[key] is None, key


def test_without_an_energy_tracker_energy_is_null_not_zero(tmp_path, data, monkeypatch):
    """codecarbon failing to start: the run trains and says energy is missing (null), in the
    totals and in the test pass. Bug caught: a crash, or 0 kWh reported as a measurement."""
    import codecarbon

    def broken(*args, **kwargs):
        raise RuntimeError("no RAPL, no TDP table")
    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", broken)
    spec = make_spec(tmp_path, data, "baseline", epochs=2, patience=5)
    metrics = train_run(spec)
    assert metrics["energy_kwh"] is None and metrics["energy_source"] == "unavailable"
    assert metrics["inference"]["energy_kwh"] is None and metrics["inference"]["emissions_kg_co2eq"] is None
    assert metrics["test_auc"] is not None


def test_training_batches_are_reshuffled_each_epoch_and_reproducible(tmp_path, data, monkeypatch):
    """Each epoch draws a new order of the training images, from a generator seeded by the run's
    seed and the epoch, so a rerun (or a resumed run) sees the same batches. Bug caught: no
    shuffling (every epoch the same order), or an order that a rerun does not reproduce."""
    real_build, real_epoch = run_module.build_model, run_module.train_epoch
    orders: list[list[float]] = []
    in_epoch = []

    def recording_build(*args, **kwargs):
        model = real_build(*args, **kwargs)

        def record(module, inputs):
            if in_epoch:  # the training passes only, not the activation-size probe
                orders.append(inputs[0].flatten(1).sum(1).tolist())
        model.register_forward_pre_hook(record)
        return model

    def flagged_epoch(*args, **kwargs):
        in_epoch.append(True)
        try:
            return real_epoch(*args, **kwargs)
        finally:
            in_epoch.clear()
    monkeypatch.setattr(run_module, "build_model", recording_build)
    monkeypatch.setattr(run_module, "train_epoch", flagged_epoch)
    train_run(make_spec(tmp_path, data, "baseline", name="a", epochs=2, patience=5))
    first = list(orders)
    orders.clear()
    train_run(make_spec(tmp_path, data, "baseline", name="b", epochs=2, patience=5))
    steps = len(first) // 2
    epoch1, epoch2 = sum(first[:steps], []), sum(first[steps:], [])
    assert sorted(epoch1) == pytest.approx(sorted(epoch2)) and epoch1 != epoch2
    assert orders == first


def test_with_a_grad_scaler_each_epoch_records_the_loss_scale(tmp_path, data, monkeypatch):
    """On CUDA, amp's GradScaler adapts the loss scale; each epoch's row records it (the GPU
    check reads it). Run here with torch's CPU GradScaler, growing every step."""
    real = Precision.for_setting

    def with_scaler(setting, device, options=None):
        precision = real(setting, device, options)
        precision.scaler = torch.amp.GradScaler("cpu", init_scale=16.0, growth_interval=1)
        return precision
    monkeypatch.setattr(run_module.Precision, "for_setting", staticmethod(with_scaler))
    spec = make_spec(tmp_path, data, "baseline", epochs=2, patience=5)
    train_run(spec)
    scales = pd.read_csv(spec.epochs_path)["grad_scale"].tolist()
    assert len(scales) == 2 and 16.0 < scales[0] < scales[1]


def test_a_resumed_run_reports_peak_memory_and_host_load_over_all_its_sessions(tmp_path, data, monkeypatch):
    """Killed after epoch 1 and run again, the run resumes from its checkpoint (2 sessions) and
    its peak memory and host load cover both sessions, not only the last one. Memory and load
    are scripted: session 1 peaks at 2 GB with half the host's CPU busy elsewhere, session 2
    at 1 GB on an idle host. Bug caught: the checkpoint losing the peak, the load accumulators
    or its fingerprint (the second call would then start afresh)."""
    sessions = {"n": 0}

    class ScriptedMemory(run_module.PeakMemory):
        def __init__(self, device):
            super().__init__(device)
            sessions["n"] += 1
            self.session = sessions["n"]

        def read(self):
            return {**super().read(), "peak_memory_gb": 2.0 if self.session == 1 else 1.0}

    class ScriptedLoad(run_module.HostLoad):
        def begin(self):
            pass

        def end(self):
            busy = 5.0 if sessions["n"] == 1 else 0.0
            self.cpu_busy_other_s += busy
            self.cpu_capacity_s += 10.0
            return busy / 10.0
    monkeypatch.setattr(run_module, "PeakMemory", ScriptedMemory)
    monkeypatch.setattr(run_module, "HostLoad", ScriptedLoad)
    spec = make_spec(tmp_path, data, "baseline", epochs=3, patience=5)

    def kill_after_1(epoch):
        if epoch == 1:
            raise RuntimeError("killed")
    with pytest.raises(RuntimeError, match="killed"):
        train_run(spec, run_module.Hooks(after_epoch=kill_after_1))
    metrics = train_run(spec)
    assert metrics["sessions"] == 2 and metrics["epochs_run"] == 3
    assert metrics["peak_memory_gb"] == 2.0
    assert metrics["host_load"]["cpu_other_share"] == pytest.approx(5.0 / 30.0)


def test_a_one_image_test_split_reports_that_image_latency(tmp_path):
    """Bug caught: the latency per image divided by more images than were scored."""
    manifest, images = make_fake_dataset(tmp_path / "d", n=40, size=12)
    frame = pd.read_csv(manifest)
    test_rows = frame.index[frame["split"] == "test"]
    frame.loc[test_rows[1:], "split"] = "val"
    frame.to_csv(manifest, index=False)
    metrics = train_run(make_spec(tmp_path, (manifest, images), "baseline", epochs=1))
    inference = metrics["inference"]
    assert inference["n_images"] == 1
    assert inference["latency_ms_per_image"] == pytest.approx(1000 * inference["time_s"])
