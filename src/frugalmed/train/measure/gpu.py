"""Which physical GPU a CUDA job runs on, as NVML (and so codecarbon) numbers it.

CUDA numbers the devices a process can see (CUDA_VISIBLE_DEVICES, a SLURM allocation), NVML
numbers every GPU of the node: `cuda:0` of a job may be NVML's GPU 3. The two are matched by
PCI bus id, which a MIG slice shares with its parent GPU (so a MIG job resolves to the whole
GPU, whose power NVML reports: see docs/training.md).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import torch

log = logging.getLogger(__name__)


@dataclass
class NvmlGpu:
    """One GPU as NVML sees it."""

    nvml: object
    handle: object
    index: int


def load_nvml():
    """pynvml (nvidia-ml-py), initialised; None where there is no NVIDIA driver."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception as err:  # noqa: BLE001 - no driver / no library: nothing to read
        log.info("NVML unavailable (%r)", err)
        return None


def pci_bus_id(device: torch.device) -> str:
    """The device's PCI bus id in NVML's format, e.g. 00000000:3B:00.0."""
    props = torch.cuda.get_device_properties(device)
    return f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"


def nvml_gpu(device: torch.device, nvml=None) -> NvmlGpu | None:
    """NVML's handle and index of a CUDA device; None when NVML is unavailable or disagrees."""
    if device.type != "cuda":
        return None
    nvml = nvml or load_nvml()
    if nvml is None:
        return None
    bus = pci_bus_id(device)
    try:
        handle = nvml.nvmlDeviceGetHandleByPciBusId(bus)
        return NvmlGpu(nvml, handle, int(nvml.nvmlDeviceGetIndex(handle)))
    except Exception as err:  # noqa: BLE001
        log.warning("NVML has no GPU at PCI bus id %s (%r); energy will cover every GPU "
                    "codecarbon finds", bus, err)
        return None


@dataclass
class GpuInfo:
    """What environment.gpu records: enough to tell two GPUs (and a shared one) apart."""

    name: str
    memory_total_gb: float
    driver_version: str | None
    cuda_index: int
    nvml_index: int | None
    pci_bus_id: str
    uuid: str | None
    mig_mode: bool | None
    compute_mode: str | None
    processes_at_start: int | None

    def as_dict(self) -> dict:
        return asdict(self)


def gpu_info(device: torch.device, gpu: NvmlGpu | None) -> GpuInfo:
    """Name, memory and driver of the job's GPU; NVML's view where available."""
    props = torch.cuda.get_device_properties(device)
    info = GpuInfo(name=props.name, memory_total_gb=props.total_memory / 1e9, driver_version=None,
                   cuda_index=device.index if device.index is not None else torch.cuda.current_device(),
                   nvml_index=None, pci_bus_id=pci_bus_id(device),
                   uuid=str(getattr(props, "uuid", "")) or None, mig_mode=None, compute_mode=None,
                   processes_at_start=None)
    if gpu is None:
        return info
    nvml, handle = gpu.nvml, gpu.handle
    info.nvml_index = gpu.index
    info.driver_version = _try(lambda: _text(nvml.nvmlSystemGetDriverVersion()))
    info.uuid = _try(lambda: _text(nvml.nvmlDeviceGetUUID(handle))) or info.uuid
    current = _try(lambda: nvml.nvmlDeviceGetMigMode(handle)[0])
    info.mig_mode = None if current is None else bool(current)
    mode = _try(lambda: nvml.nvmlDeviceGetComputeMode(handle))
    names = {0: "default (shared)", 1: "exclusive_thread", 2: "prohibited", 3: "exclusive_process"}
    info.compute_mode = None if mode is None else names.get(int(mode), str(mode))
    running = _try(lambda: nvml.nvmlDeviceGetComputeRunningProcesses(handle))
    info.processes_at_start = None if running is None else len(running)
    return info


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _try(read):
    try:
        return read()
    except Exception:  # noqa: BLE001 - an NVML query the driver or device does not support
        return None
