"""The training epoch and the evaluation pass (frugalmed.train.loop), on models whose outputs
are known exactly, so each number the loop reports can be checked against its definition:
the epoch's loss is the mean over samples (not over batches), a pass returns sigmoid
probabilities in loader order with their labels and the mean loss, a non-finite loss ends the
run in the epoch where it happened, AUC is undefined (None) with one class."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import frugalmed.train.loop as loop
from frugalmed.train.loop import (Diverged, Precision, Progress, accuracy, auc_or_none, predict,
                                  train_epoch)
from frugalmed.train.settings import get_setting

CPU = Precision.for_setting(get_setting("baseline"), torch.device("cpu"))


class Constant(nn.Module):
    """Logit = a fixed value per input (its first pixel times `scale`), plus a bias that a
    zero learning rate keeps fixed: the loss of every sample is known in closed form."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :1] * self.scale + self.bias


def _loader(values, labels, batch_size):
    x = torch.tensor(values, dtype=torch.float32).reshape(-1, 1, 1, 1)
    y = torch.tensor(labels, dtype=torch.float32).reshape(-1, 1)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


def _bce(logits, labels):
    logits, labels = np.asarray(logits, float), np.asarray(labels, float)
    return float(np.mean(np.logaddexp(0, logits) - labels * logits))


def test_epoch_loss_is_the_mean_over_samples_not_batches():
    """7 samples in batches of 3, 3, 1: a mean of batch means would weight the last sample 3x."""
    values = [2.0, -1.0, 0.5, 3.0, -2.0, 0.0, 4.0]
    labels = [1, 0, 1, 0, 0, 1, 0]
    model = Constant()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    loss = train_epoch(model, _loader(values, labels, 3), optimizer, CPU)
    assert loss == pytest.approx(_bce(values, labels), rel=1e-6)
    assert model.training  # the epoch trains in train mode


def test_the_optimizer_steps_once_per_batch_on_the_hooked_loss():
    model = Constant()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    seen = []

    def hook(step, loss):
        seen.append(step)
        return loss * 0 + model.bias.sum()  # d loss / d bias = 1 each step
    train_epoch(model, _loader([0.0] * 5, [0] * 5, 2), optimizer, CPU, loss_hook=hook)
    assert seen == [0, 1, 2]
    assert model.bias.item() == pytest.approx(-1.5)  # three steps of -0.5


@pytest.mark.parametrize("bad_step", [0, 2, 4])
def test_a_non_finite_loss_raises_naming_its_step(monkeypatch, bad_step):
    monkeypatch.setattr(loop, "NAN_CHECK_EVERY", 2)
    model = Constant()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)

    def hook(step, loss):
        return loss * float("inf") if step == bad_step else loss
    with pytest.raises(Diverged, match=rf"first at step {bad_step} of the epoch"):
        train_epoch(model, _loader([0.0] * 5, [0] * 5, 1), optimizer, CPU, loss_hook=hook)


def test_an_empty_epoch_has_zero_loss():
    model = Constant()
    empty = DataLoader(TensorDataset(torch.zeros(0, 1, 1, 1), torch.zeros(0, 1)), batch_size=2)
    assert train_epoch(model, empty, torch.optim.SGD(model.parameters(), lr=0.1), CPU) == 0.0


def test_predict_gives_probabilities_in_loader_order_labels_and_mean_loss():
    values = [2.0, -1.0, 0.5, 3.0, -2.0]
    labels = [1, 0, 1, 0, 0]
    model = Constant(scale=0.5)
    model.train()
    probs, got_labels, loss = predict(model, _loader(values, labels, 2), CPU)
    logits = 0.5 * np.array(values)
    assert probs == pytest.approx(1 / (1 + np.exp(-logits)), rel=1e-6)
    assert got_labels.tolist() == labels
    assert loss == pytest.approx(_bce(logits, labels), rel=1e-6)
    assert not model.training  # evaluated in eval mode (BatchNorm's running statistics)


def test_predict_evaluates_without_gradients_and_in_eval_mode():
    """Dropout must be off and no graph built: two passes give identical probabilities."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.9), nn.Linear(1, 1))
    loader = _loader([1.0, 2.0, 3.0, 4.0], [0, 1, 0, 1], 4)
    first, _, _ = predict(model, loader, CPU)
    second, _, _ = predict(model, loader, CPU)
    assert np.array_equal(first, second)
    assert model[2].weight.grad is None


def test_predict_on_nothing_and_on_non_finite_outputs():
    empty = DataLoader(TensorDataset(torch.zeros(0, 1, 1, 1), torch.zeros(0, 1)), batch_size=2)
    probs, labels, loss = predict(Constant(), empty, CPU)
    assert len(probs) == len(labels) == 0 and math.isnan(loss)
    with pytest.raises(Diverged, match="NaN or infinite"):
        predict(Constant(scale=float("inf")), _loader([1.0, 0.0], [1, 0], 2), CPU)


def test_auc_is_undefined_with_one_class_and_accuracy_thresholds_at_one_half():
    assert auc_or_none(np.array([1.0, 1.0]), np.array([0.2, 0.9])) is None
    labels, probs = np.array([0, 1, 1, 0]), np.array([0.1, 0.8, 0.4, 0.5])
    assert auc_or_none(labels, probs) == pytest.approx(roc_auc_score(labels, probs))
    # 0.5 counts as positive: predictions 0, 1, 0, 1
    assert accuracy(labels.astype(np.float32), probs) == pytest.approx(0.5)
    assert accuracy(labels.astype(np.float32), probs, threshold=0.45) == pytest.approx(0.5)
    assert accuracy(labels.astype(np.float32), probs, threshold=0.6) == pytest.approx(0.75)


def test_bf16_weights_reach_the_model_as_bf16_inputs():
    """bnb8_half on a CPU: inputs are cast to the weights' dtype; the loss is computed in fp32."""
    precision = Precision.for_setting(get_setting("bnb8_half"), torch.device("cpu"))
    model = nn.Sequential(nn.Flatten(), nn.Linear(1, 1)).to(precision.weights_dtype)
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].dtype))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    loss = train_epoch(model, _loader([1.0, 2.0], [0, 1], 2), optimizer, precision)
    assert seen == [torch.bfloat16] and isinstance(loss, float)
    probs, _, _ = predict(model, _loader([1.0, 2.0], [0, 1], 2), precision)
    assert probs.dtype == np.float32


def test_progress_message_reports_rate_and_eta(monkeypatch):
    _clock(monkeypatch, [0.0, 10.0, 10.5, 30.0])
    lines = []
    progress = Progress(every_s=5.0, label="epoch 2/9: ", log=lines.append)
    progress.start(total_steps=100, batch_size=8)     # t = 0
    progress.step(20)                                  # t = 10: logs (10 s >= 5 s)
    progress.step(21)                                  # t = 10.5: too soon
    progress.step(60)                                  # t = 30: logs
    assert lines == ["epoch 2/9: step 20/100, 16.0 images/s, epoch ETA 40 s",
                     "epoch 2/9: step 60/100, 16.0 images/s, epoch ETA 20 s"]


# --- found by the mutation pass of train_settings (docs/testing.md) -------------------------


def test_accuracy_counts_a_probability_of_one_half_or_more_as_positive_by_default():
    """Bug caught: another default threshold (every prediction negative: the accuracy becomes
    the share of negatives, which the test above happens to equal)."""
    assert accuracy(np.array([1.0, 1.0, 0.0]), np.array([0.6, 0.9, 0.2])) == pytest.approx(1.0)
    assert accuracy(np.array([1.0, 0.0]), np.array([0.5, 0.49])) == pytest.approx(1.0)


def _clock(monkeypatch, times):
    ticks = iter(times)
    monkeypatch.setattr(loop.time, "perf_counter", lambda: next(ticks))


def test_progress_times_from_the_epoch_start_and_logs_once_every_interval(monkeypatch):
    """The host clock does not start at zero; a line is due when exactly `every_s` has passed;
    a rate of zero steps gives no ETA instead of a crash; a slow epoch (under one step a
    second) still gets its ETA. Bug caught: rate from the clock's absolute value, a line
    skipped at exactly the interval, a division by a zero rate."""
    _clock(monkeypatch, [100.0, 105.0, 110.0, 140.0])
    lines = []
    progress = Progress(every_s=5.0, log=lines.append)
    progress.start(total_steps=10, batch_size=4)   # t = 100
    progress.step(0)                                # t = 105: due, nothing done yet
    progress.step(5)                                # t = 110: due (exactly 5 s later)
    progress.step(6)                                # t = 140
    assert lines == ["step 0/10, 0.0 images/s, epoch ETA nan s",
                     "step 5/10, 2.0 images/s, epoch ETA 10 s",
                     "step 6/10, 0.6 images/s, epoch ETA 27 s"]


def test_progress_intervals_below_one_second_and_switched_off(monkeypatch):
    """every_s = 0.5 logs after half a second (with the rate of that half second); every_s <= 0
    or no log function logs nothing. Bug caught: sub-second intervals treated as off, or
    `every_s: 0` (off, per the config) logging every step."""
    _clock(monkeypatch, [0.0, 0.5])
    lines = []
    progress = Progress(every_s=0.5, log=lines.append)
    progress.start(total_steps=4, batch_size=2)
    progress.step(1)
    assert lines == ["step 1/4, 4.0 images/s, epoch ETA 2 s"]
    _clock(monkeypatch, [0.0, 10.0] * 3)
    silent = []
    for off in (Progress(every_s=0.0, log=silent.append), Progress(every_s=-1.0, log=silent.append),
                Progress(every_s=1.0, log=None)):
        off.start(total_steps=4, batch_size=2)
        off.step(1)
    assert silent == []


def test_the_epoch_reports_its_steps_and_batch_size_to_progress(monkeypatch):
    """Bug caught: the progress line counting steps from 0 or 2, or the wrong total or batch."""
    _clock(monkeypatch, [0.0, 1.0, 2.0, 3.0])
    lines = []
    model = Constant()
    train_epoch(model, _loader([0.0] * 5, [0] * 5, 3), torch.optim.SGD(model.parameters(), lr=0.0),
                CPU, progress=Progress(every_s=1.0, log=lines.append))
    assert lines == ["step 1/2, 3.0 images/s, epoch ETA 1 s", "step 2/2, 3.0 images/s, epoch ETA 0 s"]


def test_a_non_finite_loss_is_read_once_per_check_interval_and_stops_the_epoch(monkeypatch):
    """The loss is read on the host once every NAN_CHECK_EVERY steps and at the end (no
    per-step sync on a GPU), and a non-finite loss stops the epoch at the next check.

    Bug caught: a check every step (stalls CUDA's queue), no check before the epoch ends
    (a NaN at step 3 of a long epoch trains every remaining step on NaN weights).
    """
    monkeypatch.setattr(loop, "NAN_CHECK_EVERY", 4)
    reads = []
    real = loop._raise_if_diverged
    monkeypatch.setattr(loop, "_raise_if_diverged", lambda bad: (reads.append(1), real(bad)))
    model = Constant()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    train_epoch(model, _loader([0.0] * 10, [0] * 10, 1), optimizer, CPU)
    assert len(reads) == 3  # after steps 4 and 8, and at the end
    steps = []

    def nan_at_1(step, loss):
        steps.append(step)
        return loss * float("nan") if step == 1 else loss
    with pytest.raises(Diverged, match="first at step 1 "):
        train_epoch(model, _loader([0.0] * 10, [0] * 10, 1), optimizer, CPU, loss_hook=nan_at_1)
    assert steps == [0, 1, 2, 3]


def test_epoch_loss_is_accumulated_in_double_precision():
    """Bug caught: a float32 running sum, whose rounding over many steps moves the reported loss
    (and the loss curve in figures/curves_*) off the true mean."""
    rng = np.random.default_rng(0)
    values = rng.normal(0, 3, size=300).tolist()
    model = Constant()
    losses = []

    def record(step, loss):
        losses.append(float(loss.detach()))
        return loss
    mean = train_epoch(model, _loader(values, [1] * 300, 1), torch.optim.SGD(model.parameters(), lr=0.0),
                       CPU, loss_hook=record)
    assert mean == pytest.approx(math.fsum(losses) / len(losses), rel=1e-13)


def test_a_one_sample_epoch_reports_that_sample_loss():
    model = Constant()
    loss = train_epoch(model, _loader([2.0], [1], 4), torch.optim.SGD(model.parameters(), lr=0.0), CPU)
    assert loss == pytest.approx(_bce([2.0], [1]), rel=1e-6)


def test_a_grad_scaler_scales_the_loss_and_unscales_before_the_step():
    """The AMP path on CUDA, run here with torch's CPU GradScaler: the backward pass sees the
    scaled loss and the optimizer the unscaled gradient. Bug caught: the scaler bypassed, so
    fp16 gradients underflow on a GPU, or an optimizer step on scaled gradients."""
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
    precision = Precision(torch.device("cpu"), torch.float32, None, scaler)
    model = Constant()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    grads = []
    model.bias.register_hook(lambda g: grads.append(float(g)))
    train_epoch(model, _loader([0.0] * 5, [0] * 5, 2), optimizer, precision,
                loss_hook=lambda step, loss: loss * 0 + model.bias.sum())
    assert grads == [4.0, 4.0, 4.0]  # d(scale x loss)/d bias
    assert model.bias.item() == pytest.approx(-1.5)  # three unscaled steps of -0.5


def test_gradients_are_freed_before_each_forward_pass():
    """zero_grad(set_to_none=True): the previous step's gradients do not stay allocated through
    the next forward pass, which would add a model's worth of memory to the measured peak."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(1, 1))
    held = []
    model.register_forward_pre_hook(lambda m, args: held.append(model[1].weight.grad is not None))
    train_epoch(model, _loader([1.0, 2.0, 3.0], [0, 1, 0], 1), torch.optim.SGD(model.parameters(), lr=0.1), CPU)
    assert held == [False, False, False]


def test_cuda_precision_makes_a_cuda_scaler_with_the_options_given(monkeypatch):
    """Bug caught: the scaler options (benchmarks/gpu_check.py's short growth interval) dropped,
    or a scaler for another device."""
    made = []
    monkeypatch.setattr(loop.torch.amp, "GradScaler", lambda *args, **kwargs: made.append((args, kwargs)))
    Precision.for_setting(get_setting("amp"), torch.device("cuda", 0), scaler_options={"growth_interval": 7})
    assert made == [(("cuda",), {"growth_interval": 7})]
