"""Autograd functions that keep what they save for backward in 8 bits.

Three kinds, all pure PyTorch (CPU and CUDA, nothing to compile):

* ``conv2d_act8`` / ``linear_act8``: the layer input is saved as int8 groups with
  stochastic rounding; in backward the incoming gradient (grad of the layer output) is
  rounded stochastically to 8 bits before both the input and the weight gradients are
  computed from it (ActNN-style activation compression + Banner-style 8-bit gradients).
* ``recompute_act8``: for any cheap module (BatchNorm, LayerNorm, GELU/SiLU, pooling)
  the input is saved as int8 and backward re-runs the module on the dequantised input to
  get its vector-Jacobian product. The forward output is the exact fp one.
* ``relu_act8``: ReLU saves a 1-bit mask (packed 8 per byte) instead of its output.

Autocast: each function exists once per device type, decorated with
``torch.amp.custom_fwd/custom_bwd(device_type=...)`` so that backward runs under the
autocast state of forward. Conv/linear pick their compute dtype the way autocast would
(the autocast dtype when it is on, else the input's) and cast explicitly, because the
backward kernels they call are not autocast ops.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch.amp import custom_bwd, custom_fwd

from frugalmed.quant.hooks import keep_as_is
from frugalmed.quant.quantize import (
    DEFAULT_GROUP_SIZE,
    Int8Groups,
    channel_major_layout,
    dequantize_groups,
    fake_quantize_stochastic,
    pack_bits,
    quantize_groups,
    unpack_bits,
)

_EMPTY = None  # placeholder saved when a tensor is not needed for backward


def _compute_dtype(device_type: str, x: torch.Tensor) -> torch.dtype:
    """The dtype a matmul/conv runs in: autocast's when autocast is on, else x's."""
    if torch.is_autocast_enabled(device_type) and x.is_floating_point():
        return torch.get_autocast_dtype(device_type)
    return x.dtype


def _owned(out: torch.Tensor) -> torch.Tensor:
    """A Function must not return a view (F.linear on >2-D input does): callers may
    modify the output in place (``ReLU(inplace=True)``), which autograd forbids on views
    created inside a custom Function."""
    return out.clone() if out._is_view() else out


def _device_type(x: torch.Tensor) -> str:
    return x.device.type if x.device.type in ("cpu", "cuda") else "cpu"


def _cast(t: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    return None if t is None else t.to(dtype)


def _make_conv2d(device_type: str) -> type[torch.autograd.Function]:
    class Conv2dAct8(torch.autograd.Function):
        @staticmethod
        @custom_fwd(device_type=device_type)
        def forward(ctx, x, weight, bias, stride, padding, dilation, groups, group_size):
            dtype = _compute_dtype(device_type, x)
            with torch.autocast(device_type, enabled=False):
                xc = x.to(dtype)
                out = F.conv2d(xc, weight.to(dtype), _cast(bias, dtype), stride, padding,
                               dilation, groups)
            if weight.requires_grad:  # the input is only needed for the weight gradient
                q = quantize_groups(xc, group_size, stochastic=True)
                ctx.save_for_backward(q.codes, keep_as_is(q.scales), weight)
            else:
                ctx.save_for_backward(_EMPTY, _EMPTY, weight)
            ctx.meta = (x.shape, x.dtype, dtype, bias is not None, stride, padding,
                        dilation, groups, group_size)
            return _owned(out)

        @staticmethod
        @custom_bwd(device_type=device_type)
        def backward(ctx, grad_out):
            codes, scales, weight = ctx.saved_tensors
            (x_shape, x_dtype, dtype, has_bias, stride, padding, dilation, groups,
             group_size) = ctx.meta
            layout = channel_major_layout(x_shape, group_size)
            need_x, need_w, need_b = ctx.needs_input_grad[:3]
            g = fake_quantize_stochastic(grad_out.to(dtype), group_size)
            if codes is not None:
                xd = dequantize_groups(Int8Groups(codes, scales, layout), x_shape, dtype)
            else:  # no weight grad needed: the input's values do not matter
                xd = torch.empty(x_shape, dtype=dtype, device=g.device)
            with torch.autocast(device_type, enabled=False):
                gx, gw, gb = torch.ops.aten.convolution_backward(
                    g, xd, weight.to(dtype), [weight.shape[0]] if has_bias else None,
                    list(stride), list(padding), list(dilation), False, [0, 0], groups,
                    [need_x, need_w, need_b and has_bias],
                )
            gx = gx.to(x_dtype) if need_x else None
            gw = gw.to(weight.dtype) if need_w else None
            gb = gb.to(weight.dtype) if (need_b and has_bias) else None
            return gx, gw, gb, None, None, None, None, None

    Conv2dAct8.__name__ = f"Conv2dAct8_{device_type}"
    return Conv2dAct8


def _make_linear(device_type: str) -> type[torch.autograd.Function]:
    class LinearAct8(torch.autograd.Function):
        @staticmethod
        @custom_fwd(device_type=device_type)
        def forward(ctx, x, weight, bias, group_size):
            dtype = _compute_dtype(device_type, x)
            with torch.autocast(device_type, enabled=False):
                xc = x.to(dtype)
                out = F.linear(xc, weight.to(dtype), _cast(bias, dtype))
            if weight.requires_grad:
                q = quantize_groups(xc, group_size, stochastic=True)
                ctx.save_for_backward(q.codes, keep_as_is(q.scales), weight)
            else:
                ctx.save_for_backward(_EMPTY, _EMPTY, weight)
            ctx.meta = (x.shape, x.dtype, dtype, bias is not None, group_size)
            return _owned(out)

        @staticmethod
        @custom_bwd(device_type=device_type)
        def backward(ctx, grad_out):
            codes, scales, weight = ctx.saved_tensors
            x_shape, x_dtype, dtype, has_bias, group_size = ctx.meta
            layout = channel_major_layout(x_shape, group_size)
            need_x, need_w, need_b = ctx.needs_input_grad[:3]
            g = fake_quantize_stochastic(grad_out.to(dtype), group_size)
            g2 = g.reshape(-1, g.shape[-1])
            gx = gw = gb = None
            with torch.autocast(device_type, enabled=False):
                if need_x:
                    gx = (g2 @ weight.to(dtype)).reshape(x_shape).to(x_dtype)
                if need_w:
                    xd = dequantize_groups(Int8Groups(codes, scales, layout), x_shape, dtype)
                    gw = (g2.t() @ xd.reshape(-1, x_shape[-1])).to(weight.dtype)
                if need_b and has_bias:
                    gb = g2.sum(dim=0).to(weight.dtype)
            return gx, gw, gb, None

    LinearAct8.__name__ = f"LinearAct8_{device_type}"
    return LinearAct8


def _make_recompute(device_type: str) -> type[torch.autograd.Function]:
    class RecomputeAct8(torch.autograd.Function):
        @staticmethod
        @custom_fwd(device_type=device_type)
        def forward(ctx, run_forward, run_backward, group_size, n_quantized, *inputs):
            quantized = inputs[:n_quantized]
            kept = inputs[n_quantized:]
            # quantise before running forward, in case it works in place
            packs = [quantize_groups(t, group_size, stochastic=True) for t in quantized]
            out = run_forward(*inputs)
            ctx.save_for_backward(*(t for q in packs for t in (q.codes, keep_as_is(q.scales))),
                                  *kept)
            ctx.meta = ([(t.shape, t.dtype, q.channel_major) for t, q in zip(quantized, packs)],
                        run_backward)
            return _owned(out)

        @staticmethod
        @custom_bwd(device_type=device_type)
        def backward(ctx, grad_out):
            saved = ctx.saved_tensors
            layouts, run_backward = ctx.meta
            n_q = len(layouts)
            needs = ctx.needs_input_grad[4:]
            leaves = []
            for i, (shape, dtype, channel_major) in enumerate(layouts):
                q = Int8Groups(saved[2 * i], saved[2 * i + 1], channel_major)
                leaves.append(dequantize_groups(q, shape, dtype).requires_grad_(needs[i]))
            leaves += [None if t is None else t.detach().requires_grad_(n)
                       for t, n in zip(saved[2 * n_q:], needs[n_q:])]
            with torch.enable_grad():
                out = run_backward(*leaves)
            wanted = [t for t in leaves if t is not None and t.requires_grad]
            grads = iter(torch.autograd.grad(out, wanted, grad_out, allow_unused=True)
                         if wanted else ())
            result = [next(grads) if (t is not None and t.requires_grad) else None
                      for t in leaves]
            return (None, None, None, None, *result)

    RecomputeAct8.__name__ = f"RecomputeAct8_{device_type}"
    return RecomputeAct8


def _make_relu(device_type: str) -> type[torch.autograd.Function]:
    class ReLUMask1bit(torch.autograd.Function):
        @staticmethod
        @custom_fwd(device_type=device_type)
        def forward(ctx, x):
            out = torch.relu(x)
            ctx.save_for_backward(pack_bits(out > 0))
            ctx.shape = x.shape
            return out

        @staticmethod
        @custom_bwd(device_type=device_type)
        def backward(ctx, grad_out):
            (packed,) = ctx.saved_tensors
            return grad_out * unpack_bits(packed, ctx.shape).to(grad_out.dtype)

    ReLUMask1bit.__name__ = f"ReLUMask1bit_{device_type}"
    return ReLUMask1bit


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _make_maxpool(device_type: str) -> type[torch.autograd.Function]:
    class MaxPool2dIdx8(torch.autograd.Function):
        """Max pooling that saves, per output, the argmax's offset inside its window
        as one uint8 (windows up to 256 values): exact, 1 byte per output value instead
        of torch's int64 index plus the whole fp input."""

        @staticmethod
        @custom_fwd(device_type=device_type)
        def forward(ctx, x, kernel, stride, padding, dilation, ceil_mode):
            out, flat_idx = F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode,
                                         return_indices=True)
            width = x.shape[-1]
            oh = torch.arange(out.shape[-2], device=x.device).view(-1, 1)
            ow = torch.arange(out.shape[-1], device=x.device).view(1, -1)
            row, col = flat_idx // width, flat_idx % width
            local_r = (row - (oh * stride[0] - padding[0])) // dilation[0]
            local_c = (col - (ow * stride[1] - padding[1])) // dilation[1]
            ctx.save_for_backward((local_r * kernel[1] + local_c).to(torch.uint8))
            ctx.meta = (x.shape, kernel, stride, padding, dilation)
            return out

        @staticmethod
        @custom_bwd(device_type=device_type)
        def backward(ctx, grad_out):
            (local,) = ctx.saved_tensors
            shape, kernel, stride, padding, dilation = ctx.meta
            local = local.long()
            oh = torch.arange(local.shape[-2], device=local.device).view(-1, 1)
            ow = torch.arange(local.shape[-1], device=local.device).view(1, -1)
            row = oh * stride[0] - padding[0] + (local // kernel[1]) * dilation[0]
            col = ow * stride[1] - padding[1] + (local % kernel[1]) * dilation[1]
            flat_idx = (row * shape[-1] + col).flatten(-2)
            grad_in = grad_out.new_zeros(*shape[:-2], shape[-2] * shape[-1])
            grad_in.scatter_add_(-1, flat_idx, grad_out.flatten(-2))
            return grad_in.view(shape), None, None, None, None, None

    MaxPool2dIdx8.__name__ = f"MaxPool2dIdx8_{device_type}"
    return MaxPool2dIdx8


_DEVICE_TYPES = ("cpu", "cuda")
_MAXPOOL = {d: _make_maxpool(d) for d in _DEVICE_TYPES}
_CONV2D = {d: _make_conv2d(d) for d in _DEVICE_TYPES}
_LINEAR = {d: _make_linear(d) for d in _DEVICE_TYPES}
_RECOMPUTE = {d: _make_recompute(d) for d in _DEVICE_TYPES}
_RELU = {d: _make_relu(d) for d in _DEVICE_TYPES}


def conv2d_act8(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: Sequence[int] = (1, 1),
    padding: Sequence[int] = (0, 0),
    dilation: Sequence[int] = (1, 1),
    groups: int = 1,
    group_size: int = DEFAULT_GROUP_SIZE,
) -> torch.Tensor:
    """``F.conv2d`` (zero padding, integer padding) with int8 saved input, 8-bit SR grads."""
    return _CONV2D[_device_type(x)].apply(
        x, weight, bias, tuple(stride), tuple(padding), tuple(dilation), groups, group_size)


def linear_act8(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    group_size: int = DEFAULT_GROUP_SIZE,
) -> torch.Tensor:
    """``F.linear`` with int8 saved input and 8-bit stochastically rounded grads."""
    return _LINEAR[_device_type(x)].apply(x, weight, bias, group_size)


def recompute_act8(
    run_forward: Callable[..., torch.Tensor],
    x: torch.Tensor,
    *params: torch.Tensor | None,
    run_backward: Callable[..., torch.Tensor] | None = None,
    group_size: int = DEFAULT_GROUP_SIZE,
) -> torch.Tensor:
    """``run_forward(x, *params)`` exactly, keeping only int8 ``x`` for backward.

    Backward differentiates ``run_backward`` (default ``run_forward``; give a separate one
    when forward has side effects such as BatchNorm's running-statistics update) at the
    dequantised input.
    """
    return _RECOMPUTE[_device_type(x)].apply(
        run_forward, run_backward or run_forward, group_size, 1, x, *params)


def attention_act8(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    group_size: int = DEFAULT_GROUP_SIZE,
) -> torch.Tensor:
    """``F.scaled_dot_product_attention(q, k, v)`` (no mask, no dropout) keeping int8
    q, k, v for backward, which re-runs attention on them (as flash attention's backward
    recomputes the attention matrix anyway); torch's own op would keep q, k, v, the
    output and the log-sum-exp in full precision."""
    return _RECOMPUTE[_device_type(q)].apply(
        F.scaled_dot_product_attention, F.scaled_dot_product_attention, group_size,
        3, q, k, v)


def relu_act8(x: torch.Tensor) -> torch.Tensor:
    """ReLU that saves a 1-bit mask (1/32 of an fp32 output) for backward."""
    return _RELU[_device_type(x)].apply(x)


def max_pool2d_act8(
    x: torch.Tensor,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
) -> torch.Tensor:
    """``F.max_pool2d`` (exact) saving a uint8 window offset per output for backward.

    Falls back to ``F.max_pool2d`` when a window holds more than 256 values.
    """
    kernel = _pair(kernel_size)
    if kernel[0] * kernel[1] > 256:
        return F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)
    stride = kernel if stride is None or stride == [] else _pair(stride)
    return _MAXPOOL[_device_type(x)].apply(x, kernel, stride, _pair(padding),
                                           _pair(dilation), ceil_mode)
