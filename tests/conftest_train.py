"""Helpers for the training tests: a tiny fake dataset in the contract's layout, and run specs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from frugalmed.train.run import RunSpec

# Parameters of the tiny MLP are in tensors >= 4096 elements (24*24*256), so bitsandbytes
# quantises most of its Adam state; the biases (< 4096) stay at 32 bit.
TINY_MLP = {"hidden_sizes": [256]}


def make_fake_dataset(directory: Path, n: int = 60, size: int = 24, seed: int = 0) -> tuple[Path, Path]:
    """manifest.csv + a uint8 (N, H, W) array; positives carry a bright disc, so AUC is learnable."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = np.tile([0, 1], n // 2 + 1)[:n]
    rng.shuffle(labels)
    images = rng.integers(0, 150, (n, size, size)).astype(np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for i in np.flatnonzero(labels):
        cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
        images[i][(yy - cy) ** 2 + (xx - cx) ** 2 < (size // 6) ** 2] += 100
    patients = np.arange(n)
    split = np.array(["train", "train", "train", "val", "test"])[patients % 5]
    manifest = directory / "manifest.csv"
    pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "patient_id": [f"p{i}" for i in patients],
                  "split": split, "label": labels}).to_csv(manifest, index=False)
    array = directory / "images_s1.npy"
    np.save(array, images)
    return manifest, array


def make_spec(root: Path, data: tuple[Path, Path], setting: str = "baseline", name: str = "run",
              **overrides) -> RunSpec:
    """A RunSpec writing under root/name; the tiny MLP, 2 epochs, batch 16, unless overridden."""
    out = root / name
    fields = dict(
        dataset="rsna", scale=1, model="mlp", setting=setting, seed=1, arch="mlp",
        manifest=str(data[0]), images=str(data[1]), metrics_path=str(out / "metrics.json"),
        epochs_path=str(out / "epochs.csv"), checkpoint_path=str(out / "ckpt" / "last.pt"),
        model_kwargs=dict(TINY_MLP), epochs=2, batch_size=16, lr=1e-3, patience=5,
        energy_country="DNK",
    )
    fields.update(overrides)
    return RunSpec(**fields)
