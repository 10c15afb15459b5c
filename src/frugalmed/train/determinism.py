"""train.deterministic: the same seed gives the same numbers on a GPU too (at some speed cost).

The original study's code sets `torch.backends.cudnn.deterministic = True` and
`cudnn.benchmark = False`; `true` here does that and also asks torch for deterministic
algorithms wherever it has them (`torch.use_deterministic_algorithms(True, warn_only=True)`:
an op without a deterministic implementation warns in the job log instead of failing), with
the cuBLAS workspace setting that deterministic cuBLAS needs. On the CPU, training is
deterministic for a seed either way.
"""

from __future__ import annotations

import os

import torch

CUBLAS_WORKSPACE = ":4096:8"


def apply_determinism(enabled: bool) -> dict[str, object]:
    """Set torch's global switches for this process; returns what was applied (for metrics)."""
    if enabled:
        # read by cuBLAS when its handle is created, i.e. at the first CUDA matmul of the job
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = False  # autotuning picks kernels by timing: never reproducible
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    return {
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled() if enabled else None,
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }
