"""act8 on CUDA: the same checks as on CPU plus fp16 autocast and fp16 weights.

Skipped without a CUDA device (the project's CPU-only machines); run on a GPU host with
``pytest tests/test_quant_cuda.py``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from frugalmed.quant import quantize_model, saved_tensor_bytes
from frugalmed.quant.functions import conv2d_act8, linear_act8

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def _net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
        nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
        nn.BatchNorm2d(8), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 1))


def test_cuda_conv_and_linear_gradients_match_fp32():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=4).cuda()
    x = torch.randn(4, 8, 16, 16, device="cuda", requires_grad=True)
    w = torch.randn(4, 8, 16, 16, device="cuda")
    ref = torch.autograd.grad((conv(x) * w).sum(), [x, conv.weight, conv.bias])
    got = torch.autograd.grad((conv2d_act8(x, conv.weight, conv.bias, (1, 1), (1, 1), (1, 1), 4)
                               * w).sum(), [x, conv.weight, conv.bias])
    for a, b in zip(got, ref):
        assert rel_err(a, b) < 0.03
    lin = nn.Linear(32, 16).cuda()
    x = torch.randn(5, 7, 32, device="cuda", requires_grad=True)
    ref = torch.autograd.grad(lin(x).square().sum(), [x, lin.weight, lin.bias])
    got = torch.autograd.grad(linear_act8(x, lin.weight, lin.bias).square().sum(),
                              [x, lin.weight, lin.bias])
    for a, b in zip(got, ref):
        assert rel_err(a, b) < 0.03


def test_cuda_fp16_autocast_with_grad_scaler_trains_a_step():
    model = quantize_model(_net()).cuda()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    scaler = torch.amp.GradScaler("cuda")
    x = torch.randn(8, 1, 32, 32, device="cuda")
    with torch.autocast("cuda", dtype=torch.float16):
        out = model(x)
        loss = F.binary_cross_entropy_with_logits(out.float().squeeze(1),
                                                  torch.ones(8, device="cuda"))
    assert out.dtype == torch.float16
    scaler.scale(loss).backward()
    for p in model.parameters():
        assert p.grad.dtype == torch.float32
    scaler.step(opt)
    scaler.update()


def test_cuda_half_weights_run():
    model = quantize_model(_net()).cuda().half()
    x = torch.randn(8, 1, 32, 32, device="cuda", dtype=torch.float16)
    model(x).float().sum().backward()
    for p in model.parameters():
        assert p.grad.dtype == torch.float16 and torch.isfinite(p.grad).all()


def test_cuda_saved_bytes_drop():
    timm = pytest.importorskip("timm")
    model = timm.create_model("densenet121", growth_rate=8, block_config=(2, 2, 2, 2),
                              in_chans=1, num_classes=1).cuda().train()
    x = torch.randn(8, 1, 64, 64, device="cuda")
    base = saved_tensor_bytes(model, x).activation_bytes
    quantize_model(model)
    assert base / saved_tensor_bytes(model, x).activation_bytes >= 3.0
