"""One training epoch and one evaluation pass, at a setting's precision."""

from __future__ import annotations

import contextlib
import math
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
    def for_setting(cls, setting: Setting, device: torch.device) -> "Precision":
        """fp16 on CUDA; bf16 on the CPU, whose fp16 kernels are missing or slow."""
        low = torch.float16 if device.type == "cuda" else torch.bfloat16
        weights = low if setting.weights_dtype == "half" else torch.float32
        autocast = low if setting.autocast else None
        scaler = torch.amp.GradScaler("cuda") if setting.autocast and device.type == "cuda" else None
        return cls(device, weights, autocast, scaler)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)


def _loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(logits.float(), targets)


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                precision: Precision, loss_hook: LossHook | None = None) -> float:
    """Mean training loss of the epoch; raises Diverged on a non-finite loss."""
    model.train()
    total, count = 0.0, 0
    for step, (images, targets) in enumerate(loader):
        images = images.to(precision.device, precision.weights_dtype, non_blocking=True)
        targets = targets.to(precision.device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            logits = model(images)
        loss = _loss(logits, targets)
        if loss_hook is not None:
            loss = loss_hook(step, loss)
        value = loss.item()
        if not math.isfinite(value):
            raise Diverged(f"training loss is {value} at step {step}")
        if precision.scaler is not None:
            precision.scaler.scale(loss).backward()
            precision.scaler.step(optimizer)
            precision.scaler.update()
        else:
            loss.backward()
            optimizer.step()
        total += value * len(targets)
        count += len(targets)
    return total / max(count, 1)


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, precision: Precision) -> tuple[np.ndarray, np.ndarray, float]:
    """Sigmoid probabilities, labels and mean loss; raises Diverged on non-finite outputs."""
    model.eval()
    probs, labels, total = [], [], 0.0
    for images, targets in loader:
        images = images.to(precision.device, precision.weights_dtype, non_blocking=True)
        targets = targets.to(precision.device, non_blocking=True)
        with precision.autocast():
            logits = model(images)
        logits = logits.float()
        if not torch.isfinite(logits).all():
            raise Diverged("the model's outputs are NaN or infinite")
        total += _loss(logits, targets).item() * len(targets)
        probs.append(torch.sigmoid(logits).cpu().numpy().ravel())
        labels.append(targets.cpu().numpy().ravel())
    p, y = np.concatenate(probs), np.concatenate(labels)
    return p, y, total / max(len(y), 1)


def auc_or_none(labels: np.ndarray, probs: np.ndarray) -> float | None:
    """ROC AUC; None (not NaN) when only one class is present, where AUC is undefined."""
    if len(np.unique(labels)) < 2:
        return None
    return float(roc_auc_score(labels, probs))


def accuracy(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> float:
    return float(((probs >= threshold).astype(labels.dtype) == labels).mean())
