"""GACT-style catch-all: int8-pack every tensor autograd saves inside a block of code.

WHY: attention blocks with hand-written maths (Swin's cosine attention: normalised
q/k, attention logits, softmax output) save several fp32 tensors per head that no
layer swap reaches. Inside :func:`int8_saved_tensors`, each floating tensor an op saves
for backward (except the module's own parameters/buffers, small tensors and the scales
of already-quantised tensors) is stored as int8 groups with stochastic rounding and
dequantised when backward needs it, as GACT (Liu et al., ICML 2022) does for whole
models. Values backward reads become approximations, unbiased ones.

Composition: saved-tensor hooks do not stack (only the innermost pair runs), so the
hooks here hand what they keep on to the hooks that were active when they were entered
(for example :func:`frugalmed.quant.measure.saved_tensor_bytes`), found with torch's
private ``torch._C._autograd._top_saved_tensors_default_hooks``; without it (another
torch), outer hooks do not see the tensors saved inside.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any, Iterable, Iterator

import torch

from frugalmed.quant.quantize import (
    DEFAULT_GROUP_SIZE,
    Int8Groups,
    dequantize_groups,
    quantize_groups,
)

_KEEP_AS_IS: "weakref.WeakValueDictionary[int, torch.Tensor]" = weakref.WeakValueDictionary()


def keep_as_is(t: torch.Tensor) -> torch.Tensor:
    """Mark ``t`` (e.g. the scales of an int8 tensor) so that the hooks never requantise it."""
    _KEEP_AS_IS[id(t)] = t
    return t


def _outer_hooks() -> tuple[Any, Any] | None:
    top = getattr(torch._C._autograd, "_top_saved_tensors_default_hooks", None)
    if top is None:
        return None
    try:
        return top(False)
    except (RuntimeError, TypeError):
        return None


@contextlib.contextmanager
def int8_saved_tensors(
    exclude: Iterable[torch.Tensor] = (),
    group_size: int = DEFAULT_GROUP_SIZE,
    min_numel: int | None = None,
) -> Iterator[None]:
    """Within the block, keep floating saved tensors of at least ``min_numel`` values
    (default: two groups) as int8; tensors sharing storage with ``exclude`` stay as is."""
    min_numel = 2 * group_size if min_numel is None else min_numel
    excluded = {t.untyped_storage().data_ptr() for t in exclude}
    outer = _outer_hooks()
    outer_pack = outer[0] if outer else (lambda t: t)
    outer_unpack = outer[1] if outer else (lambda p: p)

    def pack(t: torch.Tensor) -> Any:
        if (not t.is_floating_point() or t.numel() < min_numel
                or _KEEP_AS_IS.get(id(t)) is t
                or t.untyped_storage().data_ptr() in excluded):
            return ("raw", outer_pack(t))
        q = quantize_groups(t, group_size, stochastic=True)
        return ("int8", outer_pack(q.codes), outer_pack(q.scales), q.channel_major,
                t.shape, t.dtype)

    def unpack(packed: Any) -> torch.Tensor:
        if packed[0] == "raw":
            return outer_unpack(packed[1])
        _, codes, scales, channel_major, shape, dtype = packed
        q = Int8Groups(outer_unpack(codes), outer_unpack(scales), channel_major)
        return dequantize_groups(q, shape, dtype)

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        yield
