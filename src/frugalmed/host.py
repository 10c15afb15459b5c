"""Facts about the machine Snakemake plans on, cheap enough to ask while parsing the Snakefile."""

from __future__ import annotations

import glob


def has_nvidia_gpu() -> bool:
    """Whether this host shows an NVIDIA device node; no torch import (that costs seconds)."""
    return bool(glob.glob("/dev/nvidia[0-9]*"))
