"""Tests of the act8 setting: 8-bit saved activations and 8-bit stochastic gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from frugalmed.quant import (
    dequantize_groups,
    fake_quantize_stochastic,
    quantize_groups,
    quantize_model,
    saved_tensor_bytes,
)
from frugalmed.quant.functions import conv2d_act8, linear_act8
from frugalmed.quant.quantize import QMAX, pack_bits, unpack_bits

# Tolerance for one draw of a quantised gradient against the fp32 autograd gradient:
# relative L2 error (||g_q - g|| / ||g||). 8-bit groups give ~0.5-1 % per layer.
REL_TOL = 0.03


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --- the quantiser -------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(3, 5, 7, 9), (1000,), (2, 128)])
def test_nearest_rounding_error_is_at_most_half_a_step(shape):
    x = torch.randn(shape) * torch.logspace(-3, 3, shape[-1])
    q = quantize_groups(x, 64, stochastic=False)
    back = dequantize_groups(q, x.shape, x.dtype)
    step = dequantize_groups(q._replace(codes=torch.ones_like(q.codes)), x.shape, x.dtype)
    assert back.shape == x.shape and back.dtype == x.dtype
    assert q.codes.dtype == torch.int8 and q.codes.abs().max() <= QMAX
    assert torch.all((back - x).abs() <= step * 0.5 + 1e-6 * x.abs())


def test_stochastic_rounding_error_is_below_one_step_and_zero_stays_zero():
    x = torch.randn(4, 300)
    x[1] = 0.0
    q = quantize_groups(x, 100, stochastic=True)
    back = dequantize_groups(q, x.shape, x.dtype)
    step = dequantize_groups(q._replace(codes=torch.ones_like(q.codes)), x.shape, x.dtype)
    assert torch.all((back - x).abs() < step + 1e-7)
    assert torch.all(back[1] == 0)


def test_stochastic_rounding_is_unbiased_and_its_error_shrinks_like_one_over_sqrt_n():
    g = torch.randn(2048) * torch.rand(2048) * 10

    def mean_error(n: int) -> float:
        mean = torch.stack([fake_quantize_stochastic(g, 128) for _ in range(n)]).mean(0)
        return rel_err(mean, g)

    e16, e1024 = mean_error(16), mean_error(1024)
    # sqrt(1024 / 16) = 8: accept 5-12 (randomness); a biased rounding would plateau.
    assert 5 < e16 / e1024 < 12, (e16, e1024)
    assert e1024 < 1e-3
    # the same check on round-to-nearest shows what bias looks like: no shrinking at all
    q = quantize_groups(g, 128, stochastic=False)
    nearest = dequantize_groups(q, g.shape, g.dtype)
    assert rel_err(nearest, g) > 5 * e1024


def test_bad_group_size_is_refused():
    with pytest.raises(ValueError, match="group_size"):
        quantize_groups(torch.ones(4), 0)
    with pytest.raises(ValueError, match="group_size"):
        quantize_model(nn.Linear(2, 2), group_size=0)
    with pytest.raises(ValueError, match="unknown act8 layer families"):
        quantize_model(nn.Linear(2, 2), layers=("matmul", "everything"))


def test_bit_packing_round_trips():
    mask = torch.rand(3, 5, 7) > 0.5
    packed = pack_bits(mask)
    assert packed.dtype == torch.uint8 and packed.numel() == math.ceil(mask.numel() / 8)
    assert torch.equal(unpack_bits(packed, mask.shape), mask)


# --- layer gradients against fp32 autograd ---------------------------------------------

CONV_CASES = {
    "plain_bias": dict(cin=6, cout=8, k=3, stride=1, padding=1, groups=1, bias=True),
    "strided_nobias": dict(cin=6, cout=8, k=3, stride=2, padding=1, groups=1, bias=False),
    "grouped": dict(cin=6, cout=9, k=3, stride=1, padding=0, groups=3, bias=True),
    "depthwise": dict(cin=8, cout=8, k=5, stride=2, padding=2, groups=8, bias=False),
    "pointwise_dilated": dict(cin=8, cout=4, k=3, stride=1, padding=2, groups=1, bias=True,
                              dilation=2),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv_gradients_match_fp32_autograd(case):
    c = CONV_CASES[case]
    conv = nn.Conv2d(c["cin"], c["cout"], c["k"], c["stride"], c["padding"],
                     c.get("dilation", 1), c["groups"], c["bias"])
    x = torch.randn(4, c["cin"], 16, 16, requires_grad=True)
    w_out = None

    def grads(fn):
        nonlocal w_out
        out = fn(x)
        if w_out is None:
            w_out = torch.randn_like(out)
        params = [x, conv.weight] + ([conv.bias] if c["bias"] else [])
        return out, torch.autograd.grad((out * w_out).sum(), params)

    ref_out, ref = grads(conv)
    q_out, got = grads(lambda t: conv2d_act8(t, conv.weight, conv.bias, conv.stride,
                                             conv.padding, conv.dilation, conv.groups))
    assert torch.equal(q_out, ref_out)  # forward is exact
    for name, a, b in zip(("input", "weight", "bias"), got, ref):
        assert rel_err(a, b) < REL_TOL, (case, name, rel_err(a, b))


def test_linear_gradients_match_fp32_autograd_on_3d_input():
    lin = nn.Linear(48, 20)
    x = torch.randn(3, 17, 48, requires_grad=True)
    w_out = torch.randn(3, 17, 20)
    ref = torch.autograd.grad((lin(x) * w_out).sum(), [x, lin.weight, lin.bias])
    got = torch.autograd.grad((linear_act8(x, lin.weight, lin.bias) * w_out).sum(),
                              [x, lin.weight, lin.bias])
    for name, a, b in zip(("input", "weight", "bias"), got, ref):
        assert rel_err(a, b) < REL_TOL, (name, rel_err(a, b))


def test_mean_of_many_conv_weight_gradients_converges_to_the_exact_one():
    """Input and gradient are both stochastically rounded and independent, so the weight
    gradient g_q * x_q is unbiased: its average over draws approaches the fp32 one."""
    conv = nn.Conv2d(4, 4, 3, padding=1, groups=2)
    x = torch.randn(2, 4, 8, 8)
    w_out = torch.randn(2, 4, 8, 8)
    (exact,) = torch.autograd.grad((conv(x) * w_out).sum(), [conv.weight])

    def one():
        out = conv2d_act8(x, conv.weight, conv.bias, (1, 1), (1, 1), (1, 1), 2)
        return torch.autograd.grad((out * w_out).sum(), [conv.weight])[0]

    single = rel_err(one(), exact)
    mean = rel_err(torch.stack([one() for _ in range(256)]).mean(0), exact)
    assert mean < single / 6, (single, mean)  # sqrt(256) = 16 in theory


MODULES = {
    "batchnorm_train": lambda: nn.BatchNorm2d(6).train(),
    "batchnorm_eval": lambda: _eval_bn(),
    "layernorm": lambda: nn.LayerNorm(16),
    "gelu": lambda: nn.GELU(),
    "silu_inplace": lambda: nn.SiLU(inplace=True),
    "relu_inplace": lambda: nn.ReLU(inplace=True),
    "sigmoid": lambda: nn.Sigmoid(),
    "maxpool": lambda: nn.MaxPool2d(3, 2, 1),
    "maxpool_dilated_ceil": lambda: nn.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True),
    "maxpool_rect": lambda: nn.MaxPool2d((2, 3), (1, 2)),
    "avgpool": lambda: nn.AvgPool2d(2),
    "adaptive_avgpool": lambda: nn.AdaptiveAvgPool2d(1),
}


def _eval_bn() -> nn.Module:
    bn = nn.BatchNorm2d(6)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    return bn.eval()


@pytest.mark.parametrize("kind", sorted(MODULES))
def test_saved_input_modules_match_fp32_autograd(kind):
    torch.manual_seed(1)
    ref_mod = MODULES[kind]()
    for p in ref_mod.parameters():
        p.data.uniform_(0.5, 1.5)
    q_mod = MODULES[kind]()
    q_mod.load_state_dict(ref_mod.state_dict())
    q_mod.train(ref_mod.training)
    quantize_model(q_mod)
    assert type(q_mod).__name__.startswith("Act8"), type(q_mod)
    x0 = torch.randn(4, 6, 16, 16)
    w_out = None
    results = []
    for mod in (ref_mod, q_mod):
        x = x0.clone().requires_grad_(True)
        out = mod(x * 1.0)  # a non-leaf input, as inside a network (in-place allowed)
        if w_out is None:
            w_out = torch.randn_like(out)
        results.append((out.detach(), torch.autograd.grad((out * w_out).sum(),
                                                          [x, *mod.parameters()])))
    (ref_out, ref_g), (q_out, q_g) = results
    assert torch.allclose(q_out, ref_out, atol=1e-6)
    for a, b in zip(q_g, ref_g):
        assert rel_err(a, b) < REL_TOL, (kind, rel_err(a, b))
    if kind.startswith(("maxpool", "relu")):  # these keep exact information
        assert torch.equal(q_g[0], ref_g[0])
    if kind == "batchnorm_train":  # running stats updated once, as by the original
        assert torch.allclose(q_mod.running_mean, ref_mod.running_mean)
        assert q_mod.num_batches_tracked.item() == ref_mod.num_batches_tracked.item() == 1


# --- whole models ----------------------------------------------------------------------

def _small_densenet() -> nn.Module:
    timm = pytest.importorskip("timm")
    # num_init_features is growth_rate * 2 = 16 in this timm (no such kwarg any more)
    return timm.create_model("densenet121", growth_rate=8, block_config=(2, 2, 2, 2),
                             in_chans=1, num_classes=1)


def _small_efficientnet() -> nn.Module:
    timm = pytest.importorskip("timm")
    # EfficientNet-B0's blocks (depthwise conv, squeeze-excite, SiLU), 0.8 M parameters
    return timm.create_model("tinynet_e", in_chans=1, num_classes=1)


def _small_vit() -> nn.Module:
    timm = pytest.importorskip("timm")
    # two blocks: every layer type of the twelve, a sixth of the time
    return timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, in_chans=1,
                             num_classes=1, depth=2)


def _small_swin(arch: str = "swinv2_tiny_window8_256") -> nn.Module:
    timm = pytest.importorskip("timm")
    return timm.create_model(arch, img_size=32, window_size=4, embed_dim=24, depths=(1, 1),
                             num_heads=(2, 4), in_chans=1, num_classes=1)


def _small_swin_cr() -> nn.Module:
    return _small_swin("swinv2_cr_tiny_ns_224")


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(256, 64), nn.ReLU(), nn.Dropout(0.1),
                         nn.Linear(64, 1))


MODEL_FACTORIES = {"densenet": _small_densenet, "efficientnet": _small_efficientnet,
                   "vit": _small_vit, "swin": _small_swin, "swin_cr": _small_swin_cr,
                   "mlp": _mlp}


@pytest.mark.parametrize("name", sorted(MODEL_FACTORIES))
def test_quantised_model_keeps_parameters_state_dict_and_exact_forward(name):
    factory = MODEL_FACTORIES[name]
    ref = factory().eval()
    model = factory()
    model.load_state_dict(ref.state_dict())
    params_before = [id(p) for p in model.parameters()]
    keys_before = list(model.state_dict())
    assert quantize_model(model) is model
    assert model.act8_swapped and not model.act8_skipped
    assert list(model.state_dict()) == keys_before
    assert [id(p) for p in model.parameters()] == params_before
    model.load_state_dict(ref.state_dict())  # checkpoints of the plain model load
    x = torch.randn(2, 1, 16, 16) if name == "mlp" else torch.randn(2, 1, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), ref(x))
    with torch.enable_grad():  # grad mode: the act8 path, whose forward is exact too
        assert torch.allclose(model(x), ref(x), atol=1e-5)


@pytest.mark.parametrize("family", ["matmul", "norm", "activation", "attention"])
def test_each_layer_family_alone_trains_swin(family):
    """Partial swaps leave in-place ops of untouched layers (ReLU(inplace=True) in Swin
    V2's position MLP) acting on act8 outputs: these must not be views (autograd then raises
    in backward, or the gradients silently go wrong). Only the chosen family is swapped, and
    the gradients still point where fp32's do."""
    from frugalmed.quant.act8 import LAYER_FAMILIES

    ref = _small_swin().train()
    model = _small_swin().train()
    model.load_state_dict(ref.state_dict())
    quantize_model(model, layers=(family,))
    family_names = {t.__name__ for t in LAYER_FAMILIES[family]}
    assert model.act8_swapped and set(model.act8_swapped) <= family_names, model.act8_swapped
    x = torch.randn(2, 1, 32, 32)
    for m in (ref, model):
        m(x).sum().backward()
    got = torch.cat([p.grad.flatten() for p in model.parameters()]).double()
    want = torch.cat([p.grad.flatten() for p in ref.parameters()]).double()
    assert torch.isfinite(got).all()
    assert F.cosine_similarity(got, want, dim=0).item() > 0.99


# one-step gradient of all parameters vs fp32: (min cosine, max relative L2 error)
MODEL_GRAD_TOL = {"densenet": (0.995, 0.06), "efficientnet": (0.99, 0.15),
                  "vit": (0.995, 0.06), "swin": (0.995, 0.06), "swin_cr": (0.995, 0.06)}


@pytest.mark.parametrize("name", sorted(MODEL_GRAD_TOL))
def test_quantised_model_parameter_gradients_match_fp32(name):
    factory = MODEL_FACTORIES[name]
    ref = factory().train()
    model = factory().train()
    model.load_state_dict(ref.state_dict())
    quantize_model(model)
    assert not model.act8_skipped
    x = torch.randn(4, 1, 32, 32)
    for m in (ref, model):
        m(x).sum().backward()
    ref_g = torch.cat([p.grad.flatten() for p in ref.parameters()]).double()
    got_g = torch.cat([p.grad.flatten() for p in model.parameters()]).double()
    cosine = F.cosine_similarity(ref_g, got_g, dim=0).item()
    min_cos, max_err = MODEL_GRAD_TOL[name]
    assert cosine > min_cos, cosine
    assert rel_err(got_g, ref_g) < max_err


def test_saved_bytes_of_a_linear_layer_are_its_input():
    lin = nn.Linear(64, 10)
    x = torch.randn(8, 64, requires_grad=True)  # so that backward also needs the weight
    base = saved_tensor_bytes(lin, x)
    assert base.activation_bytes == 8 * 64 * 4  # the input; the weight is not counted
    assert base.param_bytes == 64 * 10 * 4
    quantize_model(lin)
    q = saved_tensor_bytes(lin, x)
    # int8 codes (512 values = 4 groups of 128) + 4 fp32 scales
    assert q.activation_bytes == 512 + 4 * 4
    assert q.by_dtype == {"int8": 512, "float32": 16}


@pytest.mark.parametrize("name", sorted(MODEL_FACTORIES))
def test_saved_bytes_drop_for_every_model_family(name):
    model = MODEL_FACTORIES[name]().train()
    x = torch.randn(4, 1, 16, 16) if name == "mlp" else torch.randn(4, 1, 32, 32)
    base = saved_tensor_bytes(model, x)
    q = saved_tensor_bytes(quantize_model(model), x)
    ratio = base.activation_bytes / q.activation_bytes
    print(f"{name}: {base.activation_bytes} -> {q.activation_bytes} bytes ({ratio:.2f}x)")
    assert ratio >= 3.0, (name, ratio, q.by_dtype)


def test_saved_bytes_of_small_densenet_drop_at_least_3x():
    model = _small_densenet().train()
    x = torch.randn(8, 1, 64, 64)
    base = saved_tensor_bytes(model, x)
    quantize_model(model)
    q = saved_tensor_bytes(model, x)
    ratio = base.activation_bytes / q.activation_bytes
    assert ratio >= 3.0, (base, q)
    only_matmul = saved_tensor_bytes(quantize_model(_small_densenet().train(),
                                                    layers=("matmul",)), x)
    # conv/linear alone cannot do it: BatchNorm inputs and ReLU outputs stay fp32
    assert only_matmul.activation_bytes > base.activation_bytes / 2


# --- mixed precision -------------------------------------------------------------------

def _tiny_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.SiLU(),
        nn.Conv2d(8, 16, 1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 1),
    )


def test_cpu_autocast_bf16_runs_and_keeps_fp32_weight_grads():
    model = quantize_model(_tiny_net())
    x = torch.randn(4, 1, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
        loss = F.binary_cross_entropy_with_logits(out.float().squeeze(1), torch.ones(4))
    assert out.dtype == torch.bfloat16
    loss.backward()
    for p in model.parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32
        assert torch.isfinite(p.grad).all()


def test_bf16_weights_run_forward_and_backward():
    ref = _tiny_net()
    model = _tiny_net()
    model.load_state_dict(ref.state_dict())
    quantize_model(model).to(torch.bfloat16)
    ref.to(torch.bfloat16)
    x = torch.randn(4, 1, 32, 32, dtype=torch.bfloat16)
    model(x).float().sum().backward()
    ref(x).float().sum().backward()
    for p, r in zip(model.parameters(), ref.parameters()):
        assert p.grad.dtype == torch.bfloat16 and torch.isfinite(p.grad).all()
    got = torch.cat([p.grad.float().flatten() for p in model.parameters()])
    want = torch.cat([p.grad.float().flatten() for p in ref.parameters()])
    assert F.cosine_similarity(got, want, dim=0) > 0.98


# --- it learns -------------------------------------------------------------------------

def _blobs(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """32 px noise images; label 1 images carry a bright Gaussian blob somewhere."""
    labels = (torch.rand(n, generator=generator) < 0.5).float()
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    centres = torch.randint(6, 26, (n, 2), generator=generator).float()
    blob = torch.exp(-((yy - centres[:, 0, None, None]) ** 2
                       + (xx - centres[:, 1, None, None]) ** 2) / (2 * 2.5 ** 2))
    images = torch.randn(n, 32, 32, generator=generator) * 0.5 + labels[:, None, None] * blob
    return images[:, None], labels


def test_act8_training_learns_a_synthetic_task():
    from sklearn.metrics import roc_auc_score

    gen = torch.Generator().manual_seed(0)
    x_train, y_train = _blobs(256, gen)
    x_test, y_test = _blobs(128, gen)
    model = quantize_model(_tiny_net())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _epoch in range(2):
        for i in range(0, len(x_train), 32):
            loss = F.binary_cross_entropy_with_logits(model(x_train[i:i + 32]).squeeze(1),
                                                      y_train[i:i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        scores = model(x_test).squeeze(1)
    auc = roc_auc_score(y_test.numpy(), scores.numpy())
    print(f"act8 tiny-net test AUC: {auc:.3f}")
    assert auc > 0.9, auc


def test_attention_gradients_match_sdpa():
    from frugalmed.quant.functions import attention_act8

    q, k, v = (torch.randn(2, 3, 10, 16, requires_grad=True) for _ in range(3))
    w_out = torch.randn(2, 3, 10, 16)
    ref = torch.autograd.grad((F.scaled_dot_product_attention(q, k, v) * w_out).sum(),
                              [q, k, v])
    out = attention_act8(q, k, v)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v))
    got = torch.autograd.grad((out * w_out).sum(), [q, k, v])
    for a, b in zip(got, ref):
        assert rel_err(a, b) < REL_TOL


def test_unsupported_layers_are_reported_not_swapped():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"),
                          nn.Conv2d(2, 2, 3, padding="same"), nn.Conv2d(2, 2, 1))
    quantize_model(model)
    assert model.act8_skipped == {"0": "padding_mode='reflect'", "1": "padding='same'"}
    assert [type(m).__name__ for m in model] == ["Conv2d", "Conv2d", "Act8Conv2d"]
    assert model.act8_swapped == {"Conv2d": 1}


def test_quantised_model_deepcopies_and_pickles(tmp_path):
    import copy

    model = quantize_model(_small_densenet())
    clone = copy.deepcopy(model)
    path = tmp_path / "model.pt"
    torch.save(model, path)
    loaded = torch.load(path, weights_only=False)
    x = torch.randn(2, 1, 32, 32)
    for other in (clone, loaded):
        assert type(other.features.conv0).__name__ == "Act8Conv2d"
        other(x).sum().backward()  # still trains


def test_catch_all_hooks_quantise_inside_and_stay_visible_to_the_byte_count():
    from frugalmed.quant.hooks import int8_saved_tensors

    class ExpBlock(nn.Module):
        def forward(self, x):
            with int8_saved_tensors():
                return x.exp()  # exp saves its output for backward

    x = torch.randn(8, 256, requires_grad=True)
    saved = saved_tensor_bytes(ExpBlock(), x)
    # seen through the outer (measuring) hooks: 2048 int8 codes + 16 fp32 scales
    assert saved.by_dtype == {"int8": 2048, "float32": 16 * 4}
    out = ExpBlock()(x)
    (grad,) = torch.autograd.grad(out.sum(), [x])
    assert rel_err(grad, x.exp()) < REL_TOL + 0.02  # exp is heavy-tailed: coarse groups
