"""Shared plumbing for the data figures: loading the contract's arrays, drawing grey images."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are built headless, on cluster nodes too

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from frugalmed.errors import FrugalmedError  # noqa: E402

PathLike = str | os.PathLike[str]



def load_manifest(path: PathLike, required: list[str]) -> pd.DataFrame:
    """Read a manifest.csv and check it has the columns a figure needs."""
    path = Path(path)
    if not path.is_file():
        raise FrugalmedError(f"{path}: manifest not found; run the dataset's preprocessing rule first")
    manifest = pd.read_csv(path, dtype={"patient_id": str})
    missing = [c for c in required if c not in manifest.columns]
    if missing:
        raise FrugalmedError(
            f"{path}: manifest lacks column(s) {missing}; it has {list(manifest.columns)}. "
            "Rebuild it with the current preprocessing rule."
        )
    return manifest


def load_images(path: PathLike, n_rows: int) -> np.ndarray:
    """Memory-map an images_s{scale}.npy and check it is row-aligned with its manifest."""
    path = Path(path)
    if not path.is_file():
        raise FrugalmedError(f"{path}: image array not found; run the dataset's preprocessing rule first")
    images = np.load(path, mmap_mode="r")
    if images.ndim != 3 or images.dtype != np.uint8:
        raise FrugalmedError(f"{path}: expected a uint8 (N, H, W) array, got {images.dtype} {images.shape}")
    if images.shape[0] != n_rows:
        raise FrugalmedError(
            f"{path}: {images.shape[0]} images but the manifest has {n_rows} rows; "
            "the two must be rebuilt together"
        )
    return images


def show_grey(ax: Axes, image: np.ndarray, extent: tuple[float, float, float, float] | None = None) -> None:
    """Draw a uint8 image with its true polarity (0 = black, 255 = white), no axes clutter."""
    ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest", extent=extent)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def grid_shape(n: int, max_cols: int) -> tuple[int, int]:
    """Rows and columns of a near-square grid holding n panels."""
    cols = max(1, min(max_cols, n))
    rows = max(1, -(-n // cols))
    return rows, cols
