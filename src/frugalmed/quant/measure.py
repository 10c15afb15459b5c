"""How many bytes autograd keeps for backward after one forward pass.

WHY this and not peak memory: on a CPU, RSS mixes allocator caching, the model and the
data; the tensors saved for backward are what activation compression changes, and
``torch.autograd.graph.saved_tensors_hooks`` sees every one of them (those saved by
built-in ops and by custom ``Function.save_for_backward``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from torch import nn


@dataclass(frozen=True)
class SavedBytes:
    """Bytes held by the autograd graph of one forward pass.

    ``activation_bytes`` counts each distinct storage once (a ReLU output that the next
    conv also saves is one tensor in memory) and leaves out storages of the model's own
    parameters and buffers (saving a weight costs no extra memory). ``param_bytes`` is
    that left-out part; ``packed_bytes`` the plain sum over every save (double counts).
    """

    activation_bytes: int
    param_bytes: int
    packed_bytes: int
    n_saved: int
    by_dtype: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _storage_key(t: torch.Tensor) -> tuple[str, int]:
    return (str(t.device), t.untyped_storage().data_ptr())


def saved_tensor_bytes(
    model: nn.Module,
    x: torch.Tensor | tuple[Any, ...],
    loss_fn: Callable[[Any], torch.Tensor] | None = None,
) -> SavedBytes:
    """Run ``loss_fn(model(x))`` once (model in its current train/eval mode) and report
    the bytes its graph saves for backward. The graph is freed before returning (no
    backward is run; parameters' ``.grad`` are untouched). ``x`` may be a tuple of
    positional inputs; ``loss_fn`` defaults to ``output.float().sum()``.
    """
    own = {_storage_key(t) for t in (*model.parameters(), *model.buffers())}
    seen: dict[tuple[str, int], int] = {}
    by_dtype: Counter[str] = Counter()
    counts = {"packed": 0, "n": 0, "param": 0}
    params_seen: set[tuple[str, int]] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        counts["n"] += 1
        counts["packed"] += t.nbytes
        try:
            key = _storage_key(t)
            size = t.untyped_storage().nbytes()
        except (RuntimeError, NotImplementedError):  # tensors without a plain storage
            key, size = ("id", id(t)), t.nbytes
        if key in own:
            if key not in params_seen:
                params_seen.add(key)
                counts["param"] += size
        elif key not in seen:
            seen[key] = size
            by_dtype[str(t.dtype).removeprefix("torch.")] += size
        return t

    def unpack(t: torch.Tensor) -> torch.Tensor:
        return t

    inputs = x if isinstance(x, tuple) else (x,)
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        out = model(*inputs)
        loss = loss_fn(out) if loss_fn is not None else out.float().sum()
    del out, loss  # frees the graph and everything it saved
    return SavedBytes(
        activation_bytes=sum(seen.values()),
        param_bytes=counts["param"],
        packed_bytes=counts["packed"],
        n_saved=counts["n"],
        by_dtype=dict(by_dtype),
    )
