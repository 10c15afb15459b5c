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
    clock = iter([0.0, 10.0, 10.5, 30.0])
    monkeypatch.setattr(loop.time, "perf_counter", lambda: next(clock))
    lines = []
    progress = Progress(every_s=5.0, label="epoch 2/9: ", log=lines.append)
    progress.start(total_steps=100, batch_size=8)     # t = 0
    progress.step(20)                                  # t = 10: logs (10 s >= 5 s)
    progress.step(21)                                  # t = 10.5: too soon
    progress.step(60)                                  # t = 30: logs
    assert lines == ["epoch 2/9: step 20/100, 16.0 images/s, epoch ETA 40 s",
                     "epoch 2/9: step 60/100, 16.0 images/s, epoch ETA 20 s"]
