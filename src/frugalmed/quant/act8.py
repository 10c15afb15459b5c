"""The ``act8`` setting: swap a model's layers for ones that save 8-bit activations.

``quantize_model(model)`` changes, in place, the class of every supported module to a
subclass whose ``forward`` calls an 8-bit autograd function (see ``functions.py``). The
module object, its Parameters and buffers stay the same objects, so an optimizer built
before or after the swap, ``state_dict()`` keys and pretrained/checkpoint loading are all
unchanged. Only exact types are swapped: a subclass with its own ``forward`` (timm's
``Conv2dSame``, ``StdConv2d``, fast-norm LayerNorm, ...) is left as it is and listed in
``model.act8_skipped``.

Without autograd (``torch.no_grad()``, evaluation) every swapped module runs its original
forward, so validation/test numbers are computed exactly as in the baseline.

Families (``LAYER_FAMILIES``), all on by default:
  matmul     Conv2d, Linear: int8 input + 8-bit stochastically rounded output gradient
  norm       BatchNorm2d (+ timm BatchNormAct2d), LayerNorm: int8 input, recomputed VJP
  activation ReLU: 1-bit mask; GELU/SiLU/Sigmoid/Tanh (torch's and timm's): int8 input
  pool       MaxPool2d: uint8 argmax offset (exact); Avg/AdaptiveAvgPool2d: int8 input
  gating     EfficientNet's SqueezeExcite: int8 copy of the gated feature map
  attention  timm ViT Attention: int8 q, k, v; Swin window attention: catch-all int8
             saved-tensor hooks (``hooks.py``)
"""

from __future__ import annotations

import logging
from collections import Counter

import torch
import torch.nn.functional as F
from torch import nn

from frugalmed.quant.functions import (
    attention_act8,
    conv2d_act8,
    linear_act8,
    max_pool2d_act8,
    recompute_act8,
    relu_act8,
)
from frugalmed.quant.hooks import int8_saved_tensors
from frugalmed.quant.quantize import DEFAULT_GROUP_SIZE

try:  # timm is a project dependency; the module still works on plain torch models
    from timm.layers.norm import LayerNorm as TimmLayerNorm
    from timm.layers.norm_act import BatchNormAct2d
    from timm.layers.attention import Attention as TimmAttention
    from timm.models._efficientnet_blocks import SqueezeExcite as EffNetSqueezeExcite
except ImportError:  # pragma: no cover
    TimmLayerNorm = BatchNormAct2d = EffNetSqueezeExcite = TimmAttention = None  # type: ignore

try:  # window attention of the Swin families, handled by the catch-all hooks
    from timm.models.swin_transformer import WindowAttention as SwinWindowAttention
    from timm.models.swin_transformer_v2 import WindowAttention as SwinV2WindowAttention
    from timm.models.swin_transformer_v2_cr import (
        WindowMultiHeadAttention as SwinV2CrWindowAttention,
    )
except ImportError:  # pragma: no cover
    SwinWindowAttention = SwinV2WindowAttention = SwinV2CrWindowAttention = None  # type: ignore

log = logging.getLogger(__name__)


def _needs_autograd(x: torch.Tensor, module: nn.Module) -> bool:
    """True when this call builds a graph, i.e. when saving activations costs memory."""
    if not torch.is_grad_enabled():
        return False
    return x.requires_grad or any(p.requires_grad for p in module.parameters())


class _Act8:
    """Marker base: a module whose class was swapped by :func:`quantize_model`."""

    act8_group_size: int = DEFAULT_GROUP_SIZE


class Act8Conv2d(nn.Conv2d, _Act8):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _needs_autograd(x, self):
            return super().forward(x)
        padding = (0, 0) if self.padding == "valid" else self.padding
        return conv2d_act8(x, self.weight, self.bias, self.stride, padding, self.dilation,
                           self.groups, self.act8_group_size)


class Act8Linear(nn.Linear, _Act8):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _needs_autograd(x, self):
            return super().forward(x)
        return linear_act8(x, self.weight, self.bias, self.act8_group_size)


def _batch_norm_act8(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """``nn.BatchNorm2d.forward`` with the input saved in 8 bits.

    Forward is torch's (running statistics updated once); backward differentiates batch
    norm at the dequantised input with batch statistics (training) or the running ones
    (eval), without touching the buffers again.
    """
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    use_batch_stats = bn.training or (bn.running_mean is None and bn.running_var is None)
    track = not bn.training or bn.track_running_stats
    running_mean = bn.running_mean if track else None
    running_var = bn.running_var if track else None
    eps = bn.eps

    def run_forward(t, weight, bias):
        return F.batch_norm(t, running_mean, running_var, weight, bias, use_batch_stats,
                            factor, eps)

    if use_batch_stats:
        def run_backward(t, weight, bias):
            return F.batch_norm(t, None, None, weight, bias, True, 0.0, eps)
    else:
        frozen_mean, frozen_var = running_mean.clone(), running_var.clone()

        def run_backward(t, weight, bias):
            return F.batch_norm(t, frozen_mean, frozen_var, weight, bias, False, 0.0, eps)

    return recompute_act8(run_forward, x, bn.weight, bn.bias, run_backward=run_backward,
                          group_size=bn.act8_group_size)


class Act8BatchNorm2d(nn.BatchNorm2d, _Act8):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _needs_autograd(x, self):
            return super().forward(x)
        return _batch_norm_act8(self, x)


if BatchNormAct2d is not None:
    class Act8BatchNormAct2d(BatchNormAct2d, _Act8):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not _needs_autograd(x, self):
                return super().forward(x)
            return self.act(self.drop(_batch_norm_act8(self, x)))

    class Act8TimmLayerNorm(TimmLayerNorm, _Act8):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not _needs_autograd(x, self):
                return super().forward(x)
            return _layer_norm_act8(self, x)

    class Act8SqueezeExcite(EffNetSqueezeExcite, _Act8):
        """EfficientNet's squeeze-excite: ``x * gate`` would save the full-size ``x``
        in fp32; here it is saved in int8 (the per-channel gate stays as it is)."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not _needs_autograd(x, self):
                return super().forward(x)
            x_se = self.conv_expand(self.act1(self.conv_reduce(x.mean((2, 3), keepdim=True))))
            return recompute_act8(torch.mul, x, self.gate(x_se),
                                  group_size=self.act8_group_size)


    class Act8Attention(TimmAttention, _Act8):
        """timm's ViT attention with q, k, v kept in int8 for backward.

        Mirrors ``timm.layers.attention.Attention.forward`` (timm 1.0.x) and falls back
        to it for masks, causal attention and attention dropout (whose random mask a
        recomputing backward could not reproduce).
        """

        def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None,
                    is_causal: bool = False) -> torch.Tensor:
            if (not _needs_autograd(x, self) or attn_mask is not None or is_causal
                    or (self.training and self.attn_drop.p > 0)):
                return super().forward(x, attn_mask=attn_mask, is_causal=is_causal)
            B, N, _ = x.shape
            gate = self.gate(x).sigmoid() if self.gate is not None else None
            qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
            q, k = self.q_norm(q), self.k_norm(k)
            x = attention_act8(q, k, v, self.act8_group_size)
            x = self.norm(x.transpose(1, 2).reshape(B, N, self.attn_dim))
            if gate is not None:
                x = x * gate
            return self.proj_drop(self.proj(x))


_TIMM_ATTENTION_ATTRS = ("qkv", "num_heads", "head_dim", "q_norm", "k_norm", "attn_drop",
                         "norm", "gate", "attn_dim", "proj", "proj_drop")


def _layer_norm_act8(ln: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    shape, eps = ln.normalized_shape, ln.eps

    def run(t, weight, bias):
        return F.layer_norm(t, shape, weight, bias, eps)

    return recompute_act8(run, x, ln.weight, ln.bias, group_size=ln.act8_group_size)


class Act8LayerNorm(nn.LayerNorm, _Act8):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _needs_autograd(x, self):
            return super().forward(x)
        return _layer_norm_act8(self, x)


class Act8ReLU(nn.ReLU, _Act8):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _needs_autograd(x, self):
            return super().forward(x)
        return relu_act8(x)


def _elementwise(base: type[nn.Module], name: str | None = None) -> type[nn.Module]:
    """An Act8 subclass of a parameter-free module: int8 input, recomputed backward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _needs_autograd(x, self):
            return base.forward(self, x)
        return recompute_act8(lambda t: base.forward(self, t), x,
                              group_size=self.act8_group_size)

    return type(name or f"Act8{base.__name__}", (base, _Act8),
                {"forward": forward, "__module__": __name__})


Act8GELU = _elementwise(nn.GELU)
Act8SiLU = _elementwise(nn.SiLU)
Act8Sigmoid = _elementwise(nn.Sigmoid)
Act8Tanh = _elementwise(nn.Tanh)


class Act8MaxPool2d(nn.MaxPool2d, _Act8):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _needs_autograd(x, self) or self.return_indices:
            return super().forward(x)
        return max_pool2d_act8(x, self.kernel_size, self.stride, self.padding,
                               self.dilation, self.ceil_mode)


Act8AvgPool2d = _elementwise(nn.AvgPool2d)
Act8AdaptiveAvgPool2d = _elementwise(nn.AdaptiveAvgPool2d)

try:  # timm's own parameter-free activation modules (Swin V2's MLP uses timm's GELU)
    from timm.layers import activations as _timm_act
except ImportError:  # pragma: no cover
    _timm_act = None
_TIMM_ELEMENTWISE: dict[type[nn.Module], type[nn.Module]] = {}
for _act_name in ("GELU", "GELUTanh", "QuickGELU", "Sigmoid", "Tanh", "Swish", "Mish"):
    _base = getattr(_timm_act, _act_name, None)
    if isinstance(_base, type) and issubclass(_base, nn.Module):
        _name = f"Act8Timm{_act_name}"
        globals()[_name] = _TIMM_ELEMENTWISE[_base] = _elementwise(_base, _name)

def _hooked(base: type[nn.Module], name: str) -> type[nn.Module]:
    """An Act8 subclass of a module whose forward runs inside :func:`int8_saved_tensors`:
    every floating tensor its ops save (its own parameters/buffers excepted) is int8."""

    def forward(self, *args, **kwargs):
        if not torch.is_grad_enabled():
            return base.forward(self, *args, **kwargs)
        with int8_saved_tensors(exclude=[*self.parameters(), *self.buffers()],
                                group_size=self.act8_group_size):
            return base.forward(self, *args, **kwargs)

    return type(name, (base, _Act8), {"forward": forward, "__module__": __name__,
                                      "__doc__": f"{base.__name__} with int8 saved tensors"})


_HOOKED_BASES = {"Act8SwinWindowAttention": SwinWindowAttention,
                 "Act8SwinV2WindowAttention": SwinV2WindowAttention,
                 "Act8SwinV2CrWindowAttention": SwinV2CrWindowAttention}
_HOOKED: dict[type[nn.Module], type[nn.Module]] = {}
for _name, _base in _HOOKED_BASES.items():
    if _base is not None:
        globals()[_name] = _HOOKED[_base] = _hooked(_base, _name)  # module-level: picklable

_SWAPS: dict[type[nn.Module], type[nn.Module]] = {
    nn.Conv2d: Act8Conv2d,
    nn.Linear: Act8Linear,
    nn.BatchNorm2d: Act8BatchNorm2d,
    nn.LayerNorm: Act8LayerNorm,
    nn.ReLU: Act8ReLU,
    nn.GELU: Act8GELU,
    nn.SiLU: Act8SiLU,
    nn.Sigmoid: Act8Sigmoid,
    nn.Tanh: Act8Tanh,
    nn.MaxPool2d: Act8MaxPool2d,
    nn.AvgPool2d: Act8AvgPool2d,
    nn.AdaptiveAvgPool2d: Act8AdaptiveAvgPool2d,
}
if BatchNormAct2d is not None:
    _SWAPS[BatchNormAct2d] = Act8BatchNormAct2d
    _SWAPS[TimmLayerNorm] = Act8TimmLayerNorm
    _SWAPS[EffNetSqueezeExcite] = Act8SqueezeExcite
    _SWAPS[TimmAttention] = Act8Attention
_SWAPS.update(_HOOKED)
_SWAPS.update(_TIMM_ELEMENTWISE)

#: the module families ``quantize_model(layers=...)`` can select
LAYER_FAMILIES: dict[str, tuple[type[nn.Module], ...]] = {
    "matmul": (nn.Conv2d, nn.Linear),
    "norm": tuple(t for t in (nn.BatchNorm2d, nn.LayerNorm, BatchNormAct2d, TimmLayerNorm)
                  if t is not None),
    "activation": (nn.ReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, *_TIMM_ELEMENTWISE),
    "pool": (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d),
    "gating": tuple(t for t in (EffNetSqueezeExcite,) if t is not None),
    "attention": tuple(t for t in (TimmAttention, *_HOOKED) if t is not None),
}


def _why_not(module: nn.Module) -> str | None:
    """Reason a module of a supported exact type cannot be swapped, else None."""
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros":
            return f"padding_mode={module.padding_mode!r}"
        if module.padding == "same":
            return "padding='same'"
    if TimmLayerNorm is not None and type(module) is TimmLayerNorm and module._fast_norm:
        return "timm fast_norm enabled"
    if TimmAttention is not None and type(module) is TimmAttention:
        missing = [a for a in _TIMM_ATTENTION_ATTRS if not hasattr(module, a)]
        if missing:
            return f"timm Attention without {missing} (another timm version)"
    return None


def quantize_model(
    model: nn.Module,
    *,
    group_size: int = DEFAULT_GROUP_SIZE,
    layers: tuple[str, ...] = tuple(LAYER_FAMILIES),
) -> nn.Module:
    """Make ``model`` save 8-bit activations for backward; return the same object.

    ``layers`` picks the module families (see ``LAYER_FAMILIES``); the default swaps all
    of them, because in conv nets BatchNorm and activations hold as much saved memory as
    the convolutions. Conv2d/Linear additionally round their output gradient to 8 bits
    stochastically. Sets ``model.act8_swapped`` (count per original class) and
    ``model.act8_skipped`` (module name -> reason).
    """
    unknown = set(layers) - set(LAYER_FAMILIES)
    if unknown:
        raise ValueError(f"unknown act8 layer families {sorted(unknown)}; "
                         f"known: {sorted(LAYER_FAMILIES)}")
    if not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive int, got {group_size!r}")
    selected = {t for family in layers for t in LAYER_FAMILIES[family]}
    swapped: Counter[str] = Counter()
    skipped: dict[str, str] = {}
    for name, module in model.named_modules():
        if isinstance(module, _Act8):
            module.act8_group_size = group_size
            continue
        cls = type(module)
        if cls not in selected:
            continue
        reason = _why_not(module)
        if reason:
            skipped[name or "<root>"] = reason
            continue
        module.__class__ = _SWAPS[cls]
        module.act8_group_size = group_size
        if getattr(module, "inplace", False):
            # the Act8 functions return a new tensor; an in-place op inside an autograd
            # Function would overwrite its input behind autograd's back
            module.inplace = False
        swapped[cls.__name__] += 1
    model.act8_swapped = dict(swapped)
    model.act8_skipped = skipped
    log.info("act8: swapped %s; skipped %s", dict(swapped), skipped or "none")
    return model
