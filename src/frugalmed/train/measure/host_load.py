"""Contention during the measured passes: how much of the host (and GPU) other processes used.

Time and energy of a run are only comparable with another run's when nothing else competed
for the machine. A training job measures, over exactly the windows its time and energy cover
(every epoch's training and validation passes):

- CPU: the host's busy CPU time from /proc/stat (user, nice, system, irq, softirq, steal)
  minus the CPU time of this job's own process tree (this process with its threads, its
  DataLoader workers, and workers already reaped), as a share of the host's CPU capacity
  (elapsed time x CPUs in /proc/stat). `steal` counts: on a virtual machine it is time the
  hypervisor gave to other guests while this one wanted to run.
- GPU (CUDA only): the mean SM utilisation NVML attributes to processes other than this job
  on this job's GPU, sampled about once a second; null when NVML cannot attribute
  utilisation to processes (e.g. MIG, or a container whose PIDs NVML does not show).

The share is of the whole host, whatever CPUs the job was given: on a shared node the
package-level energy counters (RAPL) and memory bandwidth are shared too.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

_PROC_STAT = Path("/proc/stat")
# /proc/stat "cpu" columns: user nice system idle iowait irq softirq steal guest guest_nice.
# guest time is already inside user (and guest_nice inside nice), so it is not added again.
_BUSY = (0, 1, 2, 5, 6, 7)
_IDLE = (3, 4)


@dataclass
class CpuSample:
    """A reading: host busy and total CPU seconds, and this process tree's CPU seconds."""

    host_busy_s: float
    host_total_s: float
    own_s: float


def read_host_cpu() -> tuple[float, float, int] | None:
    """(busy seconds, total seconds, CPUs) summed over the host's CPUs; None without /proc/stat."""
    try:
        lines = _PROC_STAT.read_text().splitlines()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    fields = [int(v) for v in lines[0].split()[1:]]
    fields += [0] * (10 - len(fields))
    busy = sum(fields[i] for i in _BUSY)
    total = busy + sum(fields[i] for i in _IDLE)
    return busy / ticks, total / ticks, cpus


def own_cpu_seconds(process: psutil.Process | None = None) -> float:
    """CPU seconds of this process tree: itself, its live descendants, and reaped children.

    A DataLoader worker that exits between two readings is counted in its parent's
    children_user/children_system once joined, so the difference of two readings is the
    tree's CPU time in between.
    """
    process = process or psutil.Process()
    times = process.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in process.children(recursive=True):
        try:
            t = child.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        total += t.user + t.system
    return total


@dataclass
class HostLoad:
    """Accumulates other processes' CPU (and GPU) use over measured windows; resumable."""

    cpu_busy_other_s: float = 0.0
    cpu_capacity_s: float = 0.0
    cpu_count: int | None = None
    gpu_other_util_sum: float = 0.0
    gpu_samples: int = 0
    gpu_method: str | None = None
    _start: CpuSample | None = field(default=None, repr=False)
    _gpu: "GpuLoadSampler | None" = field(default=None, repr=False)

    def attach_gpu(self, sampler: "GpuLoadSampler | None") -> None:
        self._gpu = sampler
        if sampler is not None:
            self.gpu_method = sampler.method

    def begin(self) -> None:
        """Start of a measured window (an epoch's passes)."""
        host = read_host_cpu()
        self._start = None if host is None else CpuSample(host[0], host[1], own_cpu_seconds())
        if host is not None:
            self.cpu_count = host[2]
        if self._gpu is not None:
            self._gpu.resume()

    def end(self) -> float | None:
        """End of the window: add what other processes used during it; returns the window's
        CPU share of other processes (None when /proc/stat cannot be read, or when the window was
        shorter than one tick of its CPU clock)."""
        if self._gpu is not None:
            util, samples = self._gpu.pause()
            self.gpu_other_util_sum += util
            self.gpu_samples += samples
            self.gpu_method = self._gpu.method
        if self._start is None:
            return None
        host = read_host_cpu()
        if host is None:
            return None
        own = own_cpu_seconds()
        busy = host[0] - self._start.host_busy_s
        capacity = host[1] - self._start.host_total_s
        other = busy - (own - self._start.own_s)
        # tick granularity (10 ms per CPU) can make a short window's difference slightly negative
        other, capacity = max(other, 0.0), max(capacity, 0.0)
        self.cpu_busy_other_s += other
        self.cpu_capacity_s += capacity
        self._start = None
        return other / capacity if capacity > 0 else None

    def close(self) -> None:
        if self._gpu is not None:
            self._gpu.close()

    def state(self) -> dict:
        """What a checkpoint keeps, so a resumed run reports the load over all its epochs."""
        return {"cpu_busy_other_s": self.cpu_busy_other_s, "cpu_capacity_s": self.cpu_capacity_s,
                "gpu_other_util_sum": self.gpu_other_util_sum, "gpu_samples": self.gpu_samples}

    def restore(self, state: dict | None) -> None:
        for key, value in (state or {}).items():
            setattr(self, key, value)

    def summary(self) -> dict:
        """metrics.json's host_load."""
        share = (self.cpu_busy_other_s / self.cpu_capacity_s) if self.cpu_capacity_s > 0 else None
        gpu = (self.gpu_other_util_sum / self.gpu_samples / 100.0) if self.gpu_samples else None
        method = ("cpu: (host busy CPU time from /proc/stat - this job's process tree CPU time) / "
                  "(elapsed x host CPUs), over the epochs' training and validation passes")
        if share is None:
            method = "cpu: /proc/stat not readable on this host, share unknown"
        method += f"; gpu: {self.gpu_method or 'not measured (no CUDA device)'}"
        return {"cpu_other_share": share, "gpu_other_util": gpu, "cpu_count": self.cpu_count,
                "method": method}


class GpuLoadSampler:
    """Samples NVML's per-process utilisation of one GPU in a thread while resumed.

    nvmlDeviceGetProcessUtilization returns, per process, the SM utilisation of the samples
    NVML took since a timestamp; processes outside this job's tree count as other. Each poll
    adds the summed utilisation of other processes (percent); pause() returns the sum and the
    number of polls of the window. Create it after this process has a CUDA context, so NVML
    can be asked whether it sees this process at all.
    """

    def __init__(self, nvml, handle, interval_s: float = 1.0) -> None:
        self.nvml, self.handle, self.interval_s = nvml, handle, interval_s
        self.method = ("mean SM utilisation NVML attributes to processes outside this job's "
                       f"process tree on this job's GPU, polled every {interval_s:g} s")
        self._sum, self._n = 0.0, 0
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._stop = threading.Event()
        self._last_ts = 0
        self._broken = False
        if _nvml_sees_this_process(nvml, handle) is False:
            self._broken = True
            self.method = ("not measured: NVML does not list this process on its GPU (a "
                           "container's PID namespace, or MIG), so other processes cannot be "
                           "told apart")
        self._thread = threading.Thread(target=self._run, name="frugalmed-gpu-load", daemon=True)
        self._thread.start()

    @property
    def usable(self) -> bool:
        return not self._broken

    def resume(self) -> None:
        self._last_ts = int(time.time() * 1e6)
        self._running.set()

    def pause(self) -> tuple[float, int]:
        self._running.clear()
        self.poll()
        with self._lock:
            result = (self._sum, self._n)
            self._sum, self._n = 0.0, 0
        return result

    def close(self) -> None:
        self._stop.set()
        self._running.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._running.wait()
            if self._stop.wait(self.interval_s):
                return
            if self._running.is_set():
                self.poll()

    def poll(self) -> None:
        """Add one reading: other processes' utilisation since the previous reading."""
        if self._broken:
            return
        not_found = getattr(self.nvml, "NVMLError_NotFound", ())
        try:
            samples = self.nvml.nvmlDeviceGetProcessUtilization(self.handle, self._last_ts)
        except not_found:
            samples = []  # no process used the GPU since the last reading
        except Exception as err:  # noqa: BLE001 - unsupported device or driver: say so
            self._broken = True
            self.method = f"not measured: NVML per-process utilisation unavailable ({err!r})"
            return
        own = _own_pids()
        by_pid: dict[int, list[float]] = {}
        for sample in samples:
            self._last_ts = max(self._last_ts, int(sample.timeStamp))
            by_pid.setdefault(int(sample.pid), []).append(float(sample.smUtil))
        other = sum(sum(v) / len(v) for pid, v in by_pid.items() if pid not in own)
        with self._lock:
            self._sum += other
            self._n += 1


def _own_pids() -> set[int]:
    process = psutil.Process()
    pids = {process.pid}
    try:
        pids |= {child.pid for child in process.children(recursive=True)}
    except psutil.Error:
        pass
    return pids


def _nvml_sees_this_process(nvml, handle) -> bool | None:
    """Whether NVML lists this process among the GPU's compute processes (None: cannot tell)."""
    try:
        running = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
    except Exception:  # noqa: BLE001
        return None
    return any(int(p.pid) in _own_pids() for p in running)
