"""One training epoch and one evaluation pass, at a setting's precision."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.utils.data import DataLoader

from frugalmed.train.settings import Setting

LossHook = Callable[[int, torch.Tensor], torch.Tensor]


class Diverged(Exception):
    """The loss or the predictions became NaN or infinite."""


@dataclass
class Precision:
    """How tensors flow for one setting on one device."""

    device: torch.device
    weights_dtype: torch.dtype
    autocast_dtype: torch.dtype | None
    scaler: torch.amp.GradScaler | None

    @classmethod
    def for_setting(cls, setting: Setting, device: torch.device,
                    scaler_options: dict | None = None) -> "Precision":
        """fp16 on CUDA; bf16 on the CPU, whose fp16 kernels are missing or slow.

        `scaler_options`: GradScaler arguments (benchmarks/gpu_check.py shortens growth_interval
        so that a 2-epoch check sees the loss scale move); torch's defaults otherwise.
        """
        low = torch.float16 if device.type == "cuda" else torch.bfloat16
        weights = low if setting.weights_dtype == "half" else torch.float32
        autocast = low if setting.autocast else None
        scaler = (torch.amp.GradScaler("cuda", **(scaler_options or {}))
                  if setting.autocast and device.type == "cuda" else None)
        return cls(device, weights, autocast, scaler)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)


def _loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(logits.float(), targets)


# Steps between the loop's only host reads of the running loss (the NaN check). A read waits
# for the device (a host-device sync on CUDA); one per NAN_CHECK_EVERY steps costs nothing
# measurable, while one per step (loss.item()) stalls the GPU's queue every step.
NAN_CHECK_EVERY = 50


@dataclass
class Progress:
    """Log a training epoch's progress at most every `every_s` seconds of host time.

    Only host clocks are read, so it adds no device sync; on CUDA the host runs a few steps
    ahead of the GPU, so images/s and the ETA are the host's view (exact at epoch ends).
    """

    every_s: float = 60.0
    label: str = ""
    log: Callable[[str], None] | None = None

    def start(self, total_steps: int, batch_size: int) -> None:
        self.total, self.batch_size = total_steps, batch_size
        self.t0 = self.last = time.perf_counter()

    def step(self, done: int) -> None:
        """Called after `done` steps of the epoch; logs when `every_s` has passed."""
        if self.every_s <= 0 or self.log is None:
            return
        now = time.perf_counter()
        if now - self.last < self.every_s:
            return
        self.last = now
        elapsed = now - self.t0
        rate = done / elapsed if elapsed > 0 else float("nan")
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        self.log(f"{self.label}step {done}/{self.total}, {rate * self.batch_size:.1f} images/s, "
                 f"epoch ETA {eta:.0f} s")


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                precision: Precision, loss_hook: LossHook | None = None,
                progress: Progress | None = None) -> float:
    """Mean training loss of the epoch; raises Diverged on a non-finite loss.

    The loss is summed on the device and read once at the end of the epoch; whether it is
    finite is checked every NAN_CHECK_EVERY steps and at the end, so the loop makes no host
    read per step. A non-finite loss still ends the run in the epoch where it occurred (the
    steps after it, at most NAN_CHECK_EVERY - 1, are wasted work on weights that are no
    longer used: the best weights are an earlier epoch's copy).
    """
    model.train()
    device = precision.device
    total = torch.zeros((), dtype=torch.float64, device=device)
    first_bad = torch.full((), -1, dtype=torch.int64, device=device)
    count = 0
    if progress is not None:
        progress.start(len(loader), loader.batch_size or 1)
    step = -1
    for step, (images, targets) in enumerate(loader):
        images = images.to(device, precision.weights_dtype, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            logits = model(images)
        loss = _loss(logits, targets)
        if loss_hook is not None:
            loss = loss_hook(step, loss)
        detached = loss.detach()
        # the first step whose loss is not finite, kept on the device (no sync)
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(detached),
                                torch.full_like(first_bad, step), first_bad)
        if precision.scaler is not None:
            precision.scaler.scale(loss).backward()
            precision.scaler.step(optimizer)
            precision.scaler.update()
        else:
            loss.backward()
            optimizer.step()
        n = len(targets)
        total += detached.double() * n
        count += n
        if (step + 1) % NAN_CHECK_EVERY == 0:
            _raise_if_diverged(first_bad)
        if progress is not None:
            progress.step(step + 1)
    _raise_if_diverged(first_bad)
    return float(total) / max(count, 1)


def _raise_if_diverged(first_bad: torch.Tensor) -> None:
    """The loop's host read: raise Diverged when a step so far had a non-finite loss."""
    bad = int(first_bad)
    if bad >= 0:
        raise Diverged(f"training loss is not finite (first at step {bad} of the epoch)")


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, precision: Precision) -> tuple[np.ndarray, np.ndarray, float]:
    """Sigmoid probabilities, labels and mean loss; raises Diverged on non-finite outputs.

    Logits stay on the device until the pass ends and are read once (no per-batch sync).
    """
    model.eval()
    logits_parts, label_parts = [], []
    for images, targets in loader:
        images = images.to(precision.device, precision.weights_dtype, non_blocking=True)
        with precision.autocast():
            logits = model(images)
        logits_parts.append(logits.float())
        label_parts.append(targets)
    if not logits_parts:
        return np.empty(0, np.float32), np.empty(0, np.float32), float("nan")
    logits = torch.cat(logits_parts)
    targets = torch.cat(label_parts).to(logits.device)
    if not bool(torch.isfinite(logits).all()):
        raise Diverged("the model's outputs are NaN or infinite")
    loss = float(_loss(logits, targets))
    probs = torch.sigmoid(logits).cpu().numpy().ravel()
    return probs, targets.cpu().numpy().ravel(), loss


def auc_or_none(labels: np.ndarray, probs: np.ndarray) -> float | None:
    """ROC AUC; None (not NaN) when only one class is present, where AUC is undefined."""
    if len(np.unique(labels)) < 2:
        return None
    return float(roc_auc_score(labels, probs))


def accuracy(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> float:
    return float(((probs >= threshold).astype(labels.dtype) == labels).mean())
