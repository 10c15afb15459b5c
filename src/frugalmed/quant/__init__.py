"""Activation-compressed training (the ``act8`` setting, beyond the paper).

``quantize_model(model)`` makes a model keep 8-bit copies of what it saves for
backward and use 8-bit stochastically rounded output gradients in its conv/linear
layers; ``saved_tensor_bytes`` measures what the autograd graph holds.
"""

from frugalmed.quant.act8 import LAYER_FAMILIES, quantize_model
from frugalmed.quant.hooks import int8_saved_tensors
from frugalmed.quant.measure import SavedBytes, saved_tensor_bytes
from frugalmed.quant.quantize import (
    DEFAULT_GROUP_SIZE,
    dequantize_groups,
    fake_quantize_stochastic,
    quantize_groups,
)

__all__ = [
    "DEFAULT_GROUP_SIZE",
    "LAYER_FAMILIES",
    "SavedBytes",
    "dequantize_groups",
    "fake_quantize_stochastic",
    "int8_saved_tensors",
    "quantize_groups",
    "quantize_model",
    "saved_tensor_bytes",
]
