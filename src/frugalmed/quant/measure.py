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
    ``autocast_weight_copy_bytes`` are the low-precision copies of parameters that autocast
    makes and autograd keeps for backward (a linear layer under fp16 autocast saves its fp16
    weight to compute the input's gradient): memory the setting costs, but not activations,
    so they are left out of ``activation_bytes`` and reported here.
    """

    activation_bytes: int
    param_bytes: int
    packed_bytes: int
    n_saved: int
    by_dtype: dict[str, int] = field(default_factory=dict)
    autocast_weight_copy_bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _storage_key(t: torch.Tensor) -> tuple[str, int]:
    return (str(t.device), t.untyped_storage().data_ptr())


# autograd nodes of ops that return a view (same storage) of their single differentiable input
_VIEW_NODES = {
    "TBackward0", "ViewBackward0", "TransposeBackward0", "PermuteBackward0", "ExpandBackward0",
    "UnsqueezeBackward0", "SqueezeBackward0", "SqueezeBackward1", "SqueezeBackward2",
    "UnsafeViewBackward0", "AliasBackward0", "AsStridedBackward0", "SliceBackward0",
    "SelectBackward0", "ReshapeAliasBackward0",
}


def _is_parameter_cast(t: torch.Tensor, params: set[int]) -> bool:
    """Whether `t` is (a view of) a dtype cast of one of the model's parameters.

    Followed through the autograd graph: view nodes, then exactly one ToCopyBackward0 (the
    cast autocast inserts), then the AccumulateGrad node of a parameter (by id).
    """
    node = t.grad_fn
    while node is not None and type(node).__name__ in _VIEW_NODES:
        node = node.next_functions[0][0] if node.next_functions else None
    if node is None or type(node).__name__ != "ToCopyBackward0":
        return False
    source = node.next_functions[0][0] if node.next_functions else None
    return (source is not None and type(source).__name__ == "AccumulateGrad"
            and id(source.variable) in params)


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
    param_ids = {id(p) for p in model.parameters()}
    seen: dict[tuple[str, int], int] = {}
    weight_copies: dict[tuple[str, int], int] = {}
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
        elif key in weight_copies or _is_parameter_cast(t, param_ids):
            weight_copies[key] = size
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
        autocast_weight_copy_bytes=sum(weight_copies.values()),
    )
