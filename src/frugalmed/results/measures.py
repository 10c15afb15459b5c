"""Per-run figures the comparisons rest on: which memory number to compare, and whether a run
was measured on a busy host.

Memory. On a CPU, peak RSS is dominated by the torch libraries, so it cannot
show what a setting changes; the training job measures the pieces a setting does change from
the tensors themselves (`tensor_memory_bytes` = params + grads + optimizer state + saved
activations). On CUDA, torch.cuda.max_memory_allocated is the established figure. The memory
axis of every comparison, table and figure is therefore: `cuda_max_allocated` on CUDA runs,
tensor memory on the other runs, and — for metrics.json files from before tensor memory was
recorded — the run's own peak memory with its source named. Both figures stay in the tables.

Host load. Wall time and estimated energy of a run include its neighbours' load when other
processes share the host. `host_load.cpu_other_share` (and on CUDA `gpu_other_util`, a share
in [0, 1]) above `study.max_host_load` marks the run as contended.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from frugalmed.results.labels import run_label

AXIS_SOURCES = {
    "tensor_memory": "tensor memory, measured from tensors (params + grads + optimizer state + "
                     "saved activations)",
    "cuda_max_allocated": "CUDA max allocated (torch.cuda.max_memory_allocated)",
    "cpu_max_rss": "peak RSS of the training process (includes the framework; tensor memory "
                   "not recorded by this older run)",
}
AXIS_SHORT = {
    "tensor_memory": "tensor memory",
    "cuda_max_allocated": "CUDA max allocated",
    "cpu_max_rss": "peak RSS",
}
HOST_LOAD_COLUMNS = ("host_load.cpu_other_share", "host_load.gpu_other_util")


def _numeric(summary: pd.DataFrame, column: str) -> pd.Series:
    if column not in summary.columns:
        return pd.Series(np.nan, index=summary.index, dtype=float)
    return pd.to_numeric(summary[column], errors="coerce").astype(float)


def add_measures(summary: pd.DataFrame, max_host_load: float) -> pd.DataFrame:
    """The summary with the derived per-run columns:

    tensor_memory_gb, axis_memory_gb, axis_memory_source (a key of AXIS_SOURCES, or the run's
    memory_source), host_other_share (the larger of the CPU and GPU other-process shares; NaN
    when not recorded), host_load_recorded, contended (bool; False when not recorded),
    run_label (the setting named with the precision that really ran, frugalmed.results.labels).
    """
    out = summary.copy()
    tensor = _numeric(out, "tensor_memory_bytes") / 1e9
    peak = _numeric(out, "peak_memory_gb")
    on_cuda = out["memory_source"].astype(str) == "cuda_max_allocated"
    has_tensor = np.isfinite(tensor)
    out["tensor_memory_gb"] = tensor
    out["axis_memory_gb"] = np.where(on_cuda, peak, np.where(has_tensor, tensor, peak))
    out["axis_memory_source"] = np.where(
        on_cuda, "cuda_max_allocated",
        np.where(has_tensor, "tensor_memory", out["memory_source"].astype(str)))
    shares = pd.concat([_numeric(out, c) for c in HOST_LOAD_COLUMNS], axis=1)
    out["host_other_share"] = shares.max(axis=1, skipna=True)
    out["host_load_recorded"] = np.isfinite(out["host_other_share"])
    out["contended"] = out["host_load_recorded"] & (out["host_other_share"] > max_host_load)
    out["run_label"] = [run_label(r) for r in _label_records(out)]
    return out


def _label_records(summary: pd.DataFrame) -> list[dict]:
    wanted = [c for c in summary.columns if c in ("setting", "device") or c.startswith("precision.")]
    return summary[wanted].to_dict("records")


def axis_source_text(sources) -> str:
    """The memory axis' sources in words, e.g. 'tensor memory, measured from tensors (...)'."""
    names = sorted({str(s) for s in sources})
    return "; ".join(AXIS_SOURCES.get(s, s) for s in names)


def axis_short(sources) -> str:
    names = sorted({str(s) for s in sources})
    return " / ".join(AXIS_SHORT.get(s, s) for s in names)
