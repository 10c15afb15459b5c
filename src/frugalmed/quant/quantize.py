"""8-bit group quantisers for tensors saved for backward and for gradients.

WHY groups: one scale per group of ``group_size`` consecutive values (NCHW order, so a
group lies inside one (sample, channel) plane whenever H*W is a multiple of the group
size) follows the large differences in range between samples and channels that ActNN
(Chen et al., ICML 2021) and GACT (Liu et al., ICML 2022) exploit, at a cost of one
fp32 scale per group (1/32 byte per value for groups of 128).

WHY stochastic rounding: rounding ``v`` to ``floor(v + u)``, ``u ~ U[0, 1)``, has
expectation ``v`` exactly, so a quantised gradient is an unbiased estimate of the true
one and SGD/Adam still converge (ActNN's Theorem 1; Banner et al., NeurIPS 2018).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

QMAX = 127  # symmetric int8 range [-127, 127]; -128 unused so that 0 is exact
DEFAULT_GROUP_SIZE = 128


class Int8Groups(NamedTuple):
    """A tensor stored as int8 codes plus one fp32 scale per group of values."""

    codes: torch.Tensor  # int8, shape (n_groups, group_size)
    scales: torch.Tensor  # float32, shape (n_groups, 1): absmax / QMAX
    channel_major: bool = False  # groups were formed on x.transpose(0, 1) (see below)


def channel_major_layout(shape: torch.Size | tuple[int, ...], group_size: int) -> bool:
    """Whether to group an (N, C, H, W) tensor channel by channel.

    When a feature map is smaller than a group (late CNN stages: 2x2, 4x4), groups in
    NCHW order would mix channels whose ranges differ by orders of magnitude, and the
    small ones would round to zero; grouping (C, N, H, W) keeps each group inside one
    channel (across samples) at no extra storage, or, when a whole channel (N*H*W
    values) is smaller than a group, one group per channel (these tensors are tiny).
    """
    return len(shape) == 4 and int(shape[2]) * int(shape[3]) < group_size


def _check_group_size(group_size: int) -> None:
    if not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive int, got {group_size!r}")


def quantize_groups(
    x: torch.Tensor,
    group_size: int = DEFAULT_GROUP_SIZE,
    *,
    stochastic: bool = True,
    generator: torch.Generator | None = None,
) -> Int8Groups:
    """Quantise ``x`` to int8 with one absmax scale per group of ``group_size`` values.

    The flattened tensor is zero-padded to a whole number of groups. With
    ``stochastic=True`` the result is unbiased (E[dequantise(q)] == x); with
    ``stochastic=False`` it is round-to-nearest (error at most half a step).
    """
    _check_group_size(group_size)
    if not x.is_floating_point():
        raise TypeError(f"quantize_groups needs a floating tensor, got {x.dtype}")
    channel_major = channel_major_layout(x.shape, group_size)
    source = x.detach().transpose(0, 1) if channel_major else x.detach()
    if channel_major and x.numel() // max(int(x.shape[1]), 1) < group_size:
        # a whole channel (N*H*W values) is smaller than a group: one group per channel
        group_size = max(x.numel() // int(x.shape[1]), 1)
    flat = source.reshape(-1).float()
    pad = (-flat.numel()) % group_size
    if pad:
        flat = torch.nn.functional.pad(flat, (0, pad))
    groups = flat.view(-1, group_size)
    absmax = groups.abs().amax(dim=1, keepdim=True)
    scales = (absmax / QMAX).clamp_min(torch.finfo(torch.float32).tiny)
    scaled = groups / scales
    if stochastic:
        noise = torch.rand(scaled.shape, device=scaled.device, generator=generator)
        scaled = torch.floor(scaled.add_(noise))
    else:
        scaled = torch.round(scaled)
    codes = scaled.clamp_(-QMAX, QMAX).to(torch.int8)
    return Int8Groups(codes, scales, channel_major)


def dequantize_groups(
    q: Int8Groups, shape: torch.Size | tuple[int, ...], dtype: torch.dtype
) -> torch.Tensor:
    """Rebuild a tensor of ``shape`` and ``dtype`` from its int8 groups."""
    numel = 1
    for size in shape:
        numel *= int(size)
    values = (q.codes.float() * q.scales).reshape(-1)[:numel]
    if q.channel_major:
        n, c, *rest = shape
        return values.view(c, n, *rest).transpose(0, 1).contiguous().to(dtype)
    return values.view(tuple(shape)).to(dtype)


def fake_quantize_stochastic(
    x: torch.Tensor,
    group_size: int = DEFAULT_GROUP_SIZE,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Round ``x`` to its 8-bit grid with stochastic rounding and return it dequantised.

    Used on gradients: the values the backward pass then uses are exactly what an
    8-bit gradient carries, and their expectation is ``x``.
    """
    q = quantize_groups(x, group_size, stochastic=True, generator=generator)
    return dequantize_groups(q, x.shape, x.dtype)


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """Pack a boolean tensor into uint8, 8 values per byte (for ReLU masks)."""
    flat = mask.reshape(-1).to(torch.uint8)
    pad = (-flat.numel()) % 8
    if pad:
        flat = torch.nn.functional.pad(flat, (0, pad))
    weights = (1 << torch.arange(8, device=flat.device, dtype=torch.uint8))
    return (flat.view(-1, 8) * weights).sum(dim=1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: a boolean tensor of ``shape``."""
    numel = 1
    for size in shape:
        numel *= int(size)
    shifts = torch.arange(8, device=packed.device, dtype=torch.uint8)
    bits = (packed.unsqueeze(1) >> shifts) & 1
    return bits.reshape(-1)[:numel].view(tuple(shape)).bool()
