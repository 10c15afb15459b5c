"""The paper's five training settings and frugalmed's act8 pair, in one torch-free table.

Every other module (the loop, the config check, the README) reads this table, so a setting
means the same thing everywhere. Kept free of torch so that parsing the Snakefile stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Setting:
    """How one setting trains.

    weights_dtype: 'fp32', or 'half' = model.half() on CUDA, bfloat16 weights on the CPU
        (CPU kernels for float16 training are missing or very slow).
    optimizer: 'adam' = torch.optim.Adam; 'adam8bit' = bitsandbytes.optim.Adam8bit
        (block-wise 8-bit state; bitsandbytes keeps tensors under `min_8bit_size`
        elements, 4096 by default, at 32 bit).
    autocast: mixed precision; float16 autocast + GradScaler on CUDA, bfloat16 autocast on CPU.
    quantize_activations: wrap the model with frugalmed.quant.act8.quantize_model
        (int8 saved activations + 8-bit gradient quantisation).
    """

    name: str
    weights_dtype: Literal["fp32", "half"]
    optimizer: Literal["adam", "adam8bit"]
    autocast: bool
    quantize_activations: bool = False
    description: str = ""


SETTING_TABLE: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("baseline", "fp32", "adam", False, description="fp32 weights, torch Adam"),
        Setting("amp", "fp32", "adam", True, description="automatic mixed precision, torch Adam"),
        Setting("bnb8", "fp32", "adam8bit", False, description="fp32 weights, 8-bit Adam"),
        Setting("bnb8_half", "half", "adam8bit", False, description="half-precision weights, 8-bit Adam"),
        Setting("amp_bnb8", "fp32", "adam8bit", True, description="mixed precision + 8-bit Adam"),
        # beyond the paper: activation-compressed training (frugalmed.quant)
        Setting("act8", "fp32", "adam", False, quantize_activations=True,
                description="fp32 weights, torch Adam, 8-bit saved activations and gradients"),
        Setting("act8_bnb8", "fp32", "adam8bit", False, quantize_activations=True,
                description="act8 + 8-bit Adam"),
    )
}

SETTING_NAMES: tuple[str, ...] = tuple(SETTING_TABLE)


def get_setting(name: str) -> Setting:
    """The setting called `name`; a KeyError naming the known ones otherwise."""
    try:
        return SETTING_TABLE[name]
    except KeyError:
        raise KeyError(f"unknown setting '{name}' (known: {list(SETTING_NAMES)})") from None
