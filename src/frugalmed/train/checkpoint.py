"""Per-epoch checkpoints, so a killed training job continues where it stopped.

Checkpoints live under results/checkpoints/, outside the rule's declared outputs, so Snakemake
does not delete them when a job fails. Written atomically: a kill during the write leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from frugalmed.atomic import atomic_path

log = logging.getLogger(__name__)


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint at `path` if it belongs to this exact run; None to start afresh.

    A checkpoint written for other settings, data or code inputs (its fingerprint differs) or
    one that cannot be read is ignored, with a warning in the job log.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        # Our own file; it holds Python/NumPy RNG states, which weights_only cannot load.
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - a broken checkpoint only costs a restart
        log.warning("ignoring unreadable checkpoint %s (%r); training from scratch", path, err)
        return None
    if payload.get("fingerprint") != fingerprint:
        log.warning("ignoring checkpoint %s: written for another configuration or data; "
                    "training from scratch", path)
        return None
    return payload


def rng_states() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) generator states."""
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
