"""Bytes held by a model's parameters, gradients and optimizer state, from the actual tensors."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


def _tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Sum of bytes, each storage counted once (bitsandbytes may share tensors between params)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for t in tensors:
        key = (t.untyped_storage().data_ptr(), t.storage_offset()) if t.numel() else (id(t), 0)
        if key in seen:
            continue
        seen.add(key)
        total += t.numel() * t.element_size()
    return total


def state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, int | float]:
    """params, grads (as they stand now) and optimizer state at their true dtypes.

    8-bit Adam state counts 1 byte per element plus its block scales (absmax) and quantile maps,
    which are tensors in the state too. `optimizer_8bit_fraction` is the share of parameter
    elements whose state is 8-bit: bitsandbytes keeps tensors with fewer than `min_8bit_size`
    (4096) elements at 32 bit, so a model of small tensors gains little.
    """
    params = list(model.parameters())
    state_tensors: list[torch.Tensor] = []
    quantised_elements = 0
    for param in params:
        state = optimizer.state.get(param, {})
        tensors = [v for v in state.values() if torch.is_tensor(v)]
        state_tensors += tensors
        if any(v.dtype in (torch.uint8, torch.int8) and v.numel() == param.numel() for v in tensors):
            quantised_elements += param.numel()
    n_elements = sum(p.numel() for p in params)
    return {
        "params": _tensor_bytes(params),
        "grads": _tensor_bytes(p.grad for p in params if p.grad is not None),
        "optimizer": _tensor_bytes(state_tensors),
        "n_params": n_elements,
        "param_dtype": str(params[0].dtype).replace("torch.", "") if params else None,
        "optimizer_8bit_fraction": quantised_elements / n_elements if n_elements else 0.0,
    }
