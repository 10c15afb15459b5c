"""The `study.*` config block: how the results stage turns runs into conclusions."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

RESOURCES = {"energy": "energy_kwh", "memory": "axis_memory_gb", "time": "train_time_s"}


@dataclass(frozen=True)
class Study:
    """Defaults are config/schema.yaml's."""

    bootstrap: int = 2000
    bootstrap_seed: int = 0
    noninferiority_margin: float = 0.02
    rank_by: str = "energy"
    confound_auc: float = 0.6
    max_host_load: float = 0.25

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> "Study":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in dict(block or {}).items() if k in known}
        study = cls(**values)
        if study.rank_by not in RESOURCES:
            raise ValueError(f"study.rank_by must be one of {list(RESOURCES)}, got {study.rank_by!r}")
        return study
