"""Peak memory of the training phase: CUDA allocator peak, or the process's peak RSS on the CPU."""

from __future__ import annotations

import re
import resource
from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


class PeakMemory:
    """Reset the peak counter when training starts (model + optimizer exist); read it after.

    CUDA: torch.cuda.max_memory_allocated (and the reserved peak) after reset_peak_memory_stats.
    CPU: Linux's VmHWM (peak resident set), reset by writing 5 to /proc/self/clear_refs, so the
    peak is that of training, not of imports; where that is not possible, ru_maxrss of the whole
    process (then `detail` says so).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.detail = ""

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.detail = "torch.cuda.max_memory_allocated since model and optimizer were built"
            return
        try:
            _CLEAR_REFS.write_text("5")
            self.detail = "VmHWM (peak RSS) since model and optimizer were built"
        except OSError:
            self.detail = "ru_maxrss of the whole process (peak RSS could not be reset)"
        self.baseline_gb = current_rss_gb()

    def read(self) -> dict[str, float | str | None]:
        """peak_memory_gb and its source; also the reserved CUDA peak / the RSS at reset."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            allocated = int(torch.cuda.max_memory_allocated(self.device))
            return {
                "peak_memory_gb": allocated / 1e9,
                "cuda_max_allocated_bytes": allocated,
                "peak_memory_reserved_gb": torch.cuda.max_memory_reserved(self.device) / 1e9,
                "memory_source": "cuda_max_allocated",
                "memory_detail": self.detail,
            }
        peak = _vm_hwm_gb() if "VmHWM" in self.detail else None
        if peak is None:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
        return {
            "peak_memory_gb": peak,
            "rss_at_start_gb": getattr(self, "baseline_gb", None),
            "memory_source": "cpu_max_rss",
            "memory_detail": self.detail,
        }


def current_rss_gb() -> float | None:
    match = re.search(r"VmRSS:\s+(\d+) kB", _read_status())
    return int(match.group(1)) * 1024 / 1e9 if match else None


def _vm_hwm_gb() -> float | None:
    match = re.search(r"VmHWM:\s+(\d+) kB", _read_status())
    return int(match.group(1)) * 1024 / 1e9 if match else None


def _read_status() -> str:
    try:
        return _STATUS.read_text()
    except OSError:
        return ""
