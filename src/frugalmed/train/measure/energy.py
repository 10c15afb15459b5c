"""Energy of training and inference phases, measured by codecarbon's offline tracker.

codecarbon reads GPU energy counters through NVML, CPU package energy through RAPL where the
kernel exposes it, and otherwise estimates CPU power from its TDP and the process's CPU load;
RAM power is always its model (watts per GB resident). After the run we look at which of these
the tracker actually used and report it, instead of assuming.

On a GPU node only the job's own GPU is tracked (`gpu_ids`, NVML's index of the device the
job trains on), so idle GPUs and other jobs' GPUs are not summed in. codecarbon also converts
each task's energy to CO2-equivalent emissions with the offline carbon intensity of the
configured country (`train.energy_country`): the run reports that as `emissions_kg_co2eq`.

Setting the tracker up costs a fresh process a noticeable time (codecarbon identifies the CPU
through py-cpuinfo in a subprocess and reads its TDP table; benchmarks/README.md, row "codecarbon
import + start in a fresh process"), so a training job starts it in a
background thread while it loads data and builds the model (`start_in_background`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field
from typing import Iterator, Sequence

log = logging.getLogger(__name__)

CPU_MODES = {
    "intel_rapl": "rapl",
    "cpu_load": "estimated-tdp",
    "constant": "estimated-tdp",
    "intel_power_gadget": "intel-power-gadget",
    "windows_emi": "windows-emi",
}


@dataclass
class Energy:
    """kWh by component; adds up across epochs and resumed sessions."""

    gpu: float = 0.0
    cpu: float = 0.0
    ram: float = 0.0
    co2_kg: float = 0.0  # codecarbon's emissions of this energy at the country's carbon intensity

    @property
    def total(self) -> float:
        return self.gpu + self.cpu + self.ram

    def __add__(self, other: "Energy") -> "Energy":
        return Energy(self.gpu + other.gpu, self.cpu + other.cpu, self.ram + other.ram,
                      self.co2_kg + other.co2_kg)


@dataclass
class Phase:
    """Filled in when a measured block ends."""

    energy: Energy | None = None
    cpu_power_w: float | None = None
    ram_power_w: float | None = None
    gpu_power_w: float | None = None


@dataclass
class EnergyMeter:
    """One codecarbon OfflineEmissionsTracker per process; one codecarbon task per measured phase.

    tracking_mode 'process' attributes CPU load and RAM to this job (and its DataLoader workers),
    not to whatever else runs on the machine. No network, no files written.
    """

    country: str
    tracking_mode: str = "process"
    gpu_ids: Sequence[int] | None = None
    tracker: object | None = None
    error: str | None = None
    _tasks: int = field(default=0, repr=False)
    _starting: threading.Thread | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def start(self) -> None:
        try:
            from codecarbon import OfflineEmissionsTracker

            # codecarbon logs to stderr before its log_level applies (and sets its level when
            # imported); what it chose is reported in energy_detail instead.
            logging.getLogger("codecarbon").setLevel(logging.ERROR)

            options = {}
            if self.gpu_ids is not None:
                options["gpu_ids"] = list(self.gpu_ids)
            tracker = OfflineEmissionsTracker(
                country_iso_code=self.country, output_methods=[], log_level="error",
                tracking_mode=self.tracking_mode, allow_multiple_runs=True, **options,
            )
            tracker.start()
            # the first task imports codecarbon's emissions engine: pay that here, not in epoch 1
            tracker.start_task("warm-up")
            tracker.stop_task()
            self.tracker = tracker
        except Exception as err:  # noqa: BLE001 - energy is reported as missing, training goes on
            self.error = f"codecarbon failed to start: {err!r}"
            self.tracker = None
            log.warning("%s; energy will be reported as null", self.error)

    def start_in_background(self) -> None:
        """start() in a thread, so its set-up overlaps with loading data and building the model."""
        self._starting = threading.Thread(target=self.start, name="frugalmed-codecarbon", daemon=True)
        self._starting.start()

    def ready(self) -> None:
        """Wait for a background start to finish (call before the first measured phase)."""
        if self._starting is not None:
            self._starting.join()
            self._starting = None

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        """Measure the energy of the block; the Phase gets its numbers when the block ends."""
        result = Phase()
        self.ready()
        if self.tracker is None:
            yield result
            return
        self._tasks += 1
        self.tracker.start_task(f"{name}-{self._tasks}")
        try:
            yield result
        finally:
            data = self.tracker.stop_task()
            result.energy = Energy(float(data.gpu_energy), float(data.cpu_energy),
                                   float(data.ram_energy), float(data.emissions))
            result.cpu_power_w, result.ram_power_w = float(data.cpu_power), float(data.ram_power)
            result.gpu_power_w = float(data.gpu_power)

    def stop(self) -> None:
        """Stop the tracker's measuring threads (idempotent)."""
        self.ready()
        if self.tracker is not None and not self._stopped:
            self._stopped = True
            with contextlib.suppress(Exception):
                self.tracker.stop()

    def sources(self) -> dict[str, object]:
        """What the tracker really used: energy_source and a per-component breakdown."""
        if self.tracker is None:
            return {"energy_source": "unavailable", "energy_detail": {"error": self.error}}
        parts: dict[str, str] = {}
        detail: dict[str, object] = {"tracking_mode": self.tracking_mode, "country": self.country,
                                     "gpu_ids": list(self.gpu_ids) if self.gpu_ids is not None else None}
        for hw in getattr(self.tracker, "_hardware", []):
            kind = type(hw).__name__
            if kind == "GPU":
                vendors = {type(d).__name__ for d in getattr(hw.devices, "devices", [])}
                parts["gpu"] = "nvml" if "NvidiaGPUDevice" in vendors else (
                    "amdsmi" if "AMDGPUDevice" in vendors else "unknown")
                detail["gpu_count"] = getattr(hw, "num_gpus", None)
                detail["gpu_ids_tracked"] = list(getattr(hw, "gpu_ids", None) or []) or None
            elif kind == "CPU":
                mode = getattr(hw, "_mode", "unknown")
                parts["cpu"] = CPU_MODES.get(mode, mode)
                detail["cpu_mode"] = mode
                detail["cpu_tdp_w"] = getattr(hw, "_tdp", None)
                detail["cpu_tdp_generic"] = getattr(hw, "_is_generic_tdp", None)
                detail["cpu_model"] = getattr(hw, "_model", None)
            elif kind == "AppleSiliconChip":
                parts.setdefault("cpu", "powermetrics")
            elif kind == "RAM":
                parts["ram"] = "estimated-per-gb"
        detail["components"] = parts
        # every component the total includes: RAM energy is always codecarbon's model, so a
        # total with metered GPU/CPU parts is still partly an estimate, and says so
        main = [parts[k] for k in ("gpu", "cpu", "ram") if k in parts]
        return {"energy_source": "+".join(dict.fromkeys(main)) or "unknown", "energy_detail": detail}
