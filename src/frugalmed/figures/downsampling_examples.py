"""Figure: one RSNA image at every configured scale, side by side, to show what downsampling costs.

Each panel is drawn over the same physical extent (the base image's), so a coarser scale shows
bigger pixels rather than a smaller picture.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from frugalmed.errors import FrugalmedError
from frugalmed.figures.common import PathLike, load_images, load_manifest, show_grey
from frugalmed.plotting import save_figure

log = logging.getLogger(__name__)

#: Optional manifest column with the base image's pixel size in mm; used in titles when present.
PIXEL_MM_COLUMN = "pixel_spacing_mm"


def choose_example(manifest: pd.DataFrame, seed: int) -> int:
    """Row of the example image: a seeded pick among label-1 images (the finding of interest)."""
    positives = np.flatnonzero(manifest["label"].to_numpy() == 1)
    candidates = positives if positives.size else np.arange(len(manifest))
    if candidates.size == 0:
        raise FrugalmedError("manifest is empty: no image to show")
    return int(np.random.default_rng(seed).choice(candidates))


def pixel_title(scale: int, shape: tuple[int, int], base_pixel_mm: float | None) -> str:
    """Panel title: scale, array size and pixel size (in mm when known, else in base pixels)."""
    size = f"{shape[0]}×{shape[1]} px"
    if base_pixel_mm is not None and np.isfinite(base_pixel_mm):
        pixel = f"pixel {base_pixel_mm * scale:.2f} mm"
    else:
        pixel = "pixel = base" if scale == 1 else f"pixel = {scale}×{scale} base pixels"
    return f"scale {scale}: {size}\n{pixel}"


def plot_scales(
    images_by_scale: dict[int, np.ndarray], row: int, base_pixel_mm: float | None = None
) -> Figure:
    """One panel per scale, all spanning the base image's extent."""
    import matplotlib.pyplot as plt

    scales = sorted(images_by_scale)
    fig, axes = plt.subplots(1, len(scales), figsize=(2.3 * len(scales), 2.9), squeeze=False)
    for ax, scale in zip(axes.flat, scales):
        image = np.asarray(images_by_scale[scale][row])
        h, w = image.shape
        # extent in base pixels: every panel covers the same area
        show_grey(ax, image, extent=(0, w * scale, h * scale, 0))
        ax.set_title(pixel_title(scale, (h, w), base_pixel_mm), fontsize=8.5)
    fig.suptitle("RSNA: one image at every configured scale", fontsize=10)
    fig.tight_layout()
    return fig


def make_downsampling_examples(
    manifest_path: PathLike,
    images_paths: dict[int, PathLike],
    pdf_path: PathLike,
    png_path: PathLike,
    seed: int = 0,
) -> int:
    """Build the figure from the manifest and one images_s{scale}.npy per scale; returns the row shown."""
    manifest = load_manifest(manifest_path, ["label"])
    images = {int(s): load_images(p, len(manifest)) for s, p in images_paths.items()}
    row = choose_example(manifest, seed)
    base_mm = None
    if PIXEL_MM_COLUMN in manifest.columns:
        base_mm = float(pd.to_numeric(manifest[PIXEL_MM_COLUMN], errors="coerce").iloc[row])
    log.info("showing row %d (%s) at scales %s", row, manifest.iloc[row].get("sample_id", ""), sorted(images))
    fig = plot_scales(images, row, base_mm)
    save_figure(fig, pdf_path, png_path)
    return row
