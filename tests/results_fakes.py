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


# --- second round: manifests, predictions.csv and epochs.csv beside the metrics -------------


def write_manifest(root: Path, dataset: str, n_patients: int = 40, seed: int = 0,
                   test_share: float = 0.5, prevalence: float = 0.4) -> Path:
    """results/data/{dataset}/manifest.csv: 1-3 images per patient, whole patients per split,
    labels mixed within some patients (as in LIDC, several nodules per patient)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        split = "test" if p < int(n_patients * test_share) else ("val" if p % 3 == 0 else "train")
        for _ in range(int(rng.integers(1, 4))):
            rows.append({"sample_id": f"s{len(rows)}", "patient_id": f"P{p:03d}", "split": split,
                         "label": int(rng.random() < prevalence), "source_file": f"f{len(rows)}.dcm"})
    frame = pd.DataFrame(rows)
    # a test split with both labels, whatever the draw
    test = frame.index[frame["split"] == "test"]
    frame.loc[test[0], "label"], frame.loc[test[1], "label"] = 0, 1
    path = Path(root) / f"results/data/{dataset}/manifest.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def manifest_test_rows(manifest: Path):
    """The manifest's test rows as a frame with columns row, patient_id, label."""
    import pandas as pd

    frame = pd.read_csv(manifest, dtype={"patient_id": str})
    test = frame[frame["split"] == "test"]
    return pd.DataFrame({"row": test.index, "patient_id": test["patient_id"].to_numpy(),
                         "label": test["label"].to_numpy()})


def scores_for(test, separation: float, seed: int):
    """Probabilities that separate the labels by `separation` (0: chance), seeded."""
    import numpy as np

    rng = np.random.default_rng(seed)
    logits = separation * (test["label"].to_numpy() - 0.5) + rng.normal(0, 1, len(test))
    return np.round(1 / (1 + np.exp(-logits)), 6)


def write_predictions(root: Path, dataset: str, scale: int, model: str, setting: str, seed: int,
                      test, probs) -> Path:
    import pandas as pd

    path = Path(root) / Run(dataset, scale, model, setting, seed).directory / "predictions.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"row": test["row"], "patient_id": test["patient_id"], "label": test["label"],
                  "prob": probs}).to_csv(path, index=False)
    return path


def write_epochs(root: Path, dataset: str, scale: int, model: str, setting: str, seed: int,
                 n_epochs: int = 4, best: int = 2) -> Path:
    import pandas as pd

    path = Path(root) / Run(dataset, scale, model, setting, seed).directory / "epochs.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    epochs = range(1, n_epochs + 1)
    pd.DataFrame({"epoch": list(epochs),
                  "train_loss": [0.7 / e + 0.01 * seed % 3 for e in epochs],
                  "val_loss": [0.7 / e ** 0.5 for e in epochs],
                  "val_auc": [min(0.55 + 0.08 * e - 0.001 * seed % 5, 0.95) for e in epochs],
                  "is_best": [e == best for e in epochs]}).to_csv(path, index=False)
    return path


def cpu_precision(setting: str) -> dict[str, Any]:
    """metrics.json `precision` as frugalmed's training job records it on a CPU."""
    half = setting == "bnb8_half"
    autocast = setting in ("amp", "amp_bnb8")
    return {"weights_dtype": "bfloat16" if half else "float32",
            "autocast_dtype": "bfloat16" if autocast else None, "grad_scaler": False,
            "setting": {"name": setting, "weights_dtype": "half" if half else "fp32",
                        "optimizer": "adam8bit" if "bnb8" in setting else "adam",
                        "autocast": autocast,
                        "quantize_activations": setting.startswith("act8")}}


def write_run(root: Path, dataset: str, scale: int, model: str, setting: str, seed: int,
              test, probs=None, separation: float = 1.5, **values: Any) -> Path:
    """metrics.json + predictions.csv + epochs.csv of one run; test_auc from the predictions."""
    from sklearn.metrics import roc_auc_score

    if probs is None:
        probs = scores_for(test, separation, seed * 1000 + len(setting))
    write_predictions(root, dataset, scale, model, setting, seed, test, probs)
    write_epochs(root, dataset, scale, model, setting, seed)
    values.setdefault("test_auc", float(roc_auc_score(test["label"], probs)))
    values.setdefault("precision", cpu_precision(setting))
    values.setdefault("tensor_memory_bytes", 2_000_000)
    values.setdefault("host_load", {"cpu_other_share": 0.05, "gpu_other_util": None,
                                    "cpu_count": 2, "method": "test"})
    return write_metrics(root, dataset, scale, model, setting, seed, **values)
