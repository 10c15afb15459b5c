"""The study's run grid: the union of every experiment's dataset x scale x model x setting x seed."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

RUN_DIR = "results/runs/{dataset}/s{scale}/{model}/{setting}/seed{seed}"


@dataclass(frozen=True, order=True)
class Run:
    """One training job."""

    dataset: str
    scale: int
    model: str
    setting: str
    seed: int

    @property
    def directory(self) -> str:
        return RUN_DIR.format(**self.__dict__)

    @property
    def metrics_path(self) -> str:
        return f"{self.directory}/metrics.json"


def expand_runs(experiments: Mapping[str, Mapping[str, Any]]) -> list[Run]:
    """Every run of every experiment, each once, in a stable order."""
    runs: set[Run] = set()
    for exp in experiments.values():
        for dataset, scale, model, setting, seed in itertools.product(
            exp["datasets"], exp.get("scales", [1]), exp["models"], exp["settings"], exp["seeds"]
        ):
            runs.add(Run(dataset, int(scale), model, setting, int(seed)))
    return sorted(runs)


def select(runs: Iterable[Run], **fields: Any) -> list[Run]:
    """The runs whose fields equal every given value (e.g. model='densenet')."""
    return [r for r in runs if all(getattr(r, k) == v for k, v in fields.items())]
