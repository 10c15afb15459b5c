"""Hand-made metrics.json files in the contract's layout, for the results-stage tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from frugalmed.grid import Run


def metrics_record(dataset: str, scale: int, model: str, setting: str, seed: int,
                   **values: Any) -> dict[str, Any]:
    """A complete metrics.json record; `values` override the defaults or add keys."""
    record: dict[str, Any] = {
        "dataset": dataset, "scale": scale, "model": model, "setting": setting, "seed": seed,
        "device": "cpu", "test_auc": 0.75, "test_accuracy": 0.7, "best_val_auc": 0.76,
        "best_epoch": 2, "epochs_run": 4, "diverged": False, "train_time_s": 10.0,
        "energy_kwh": 0.001, "energy_source": "rapl", "peak_memory_gb": 1.0,
        "memory_source": "cpu_max_rss",
        "state_bytes": {"params": 4000, "grads": 4000, "optimizer": 8000},
        "environment": {"torch": "2.14.1", "python": "3.11.9"},
    }
    record.update(values)
    return record


def write_metrics(root: Path, dataset: str, scale: int, model: str, setting: str, seed: int,
                  **values: Any) -> Path:
    """Write one run's metrics.json under root at the contract's path; return the path."""
    path = Path(root) / Run(dataset, scale, model, setting, seed).metrics_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics_record(dataset, scale, model, setting, seed, **values)))
    return path


def assert_pdf(path: Path) -> None:
    data = Path(path).read_bytes()
    assert data.startswith(b"%PDF"), f"{path} is not a PDF"
    assert len(data) > 5_000, f"{path} is suspiciously small ({len(data)} bytes)"


def assert_png(path: Path) -> None:
    data = Path(path).read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), f"{path} is not a PNG"
    assert len(data) > 10_000, f"{path} is suspiciously small ({len(data)} bytes)"
