"""Figure: age of the RSNA subjects kept, one value per patient, with the age cut-off marked.

The paper keeps women aged <= max_age. The figure shows every patient of the raw train.csv
behind the patients in the manifest (those actually used), so the reader sees what the cut-off
and the rejects removed; the legend gives the counts before and after.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from frugalmed.errors import FrugalmedError
from frugalmed.figures.common import PathLike, load_manifest
from frugalmed.plotting import save_figure

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ["patient_id", "age"]


def patient_ages(table: pd.DataFrame, source: str = "table") -> pd.Series:
    """One age per patient (the first recorded one), indexed by patient_id; NaN if none recorded.

    The Kaggle table repeats the age on each of a patient's images; where they differ the
    first is used and the number of such patients is logged.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise FrugalmedError(f"{source}: lacks column(s) {missing}")
    ages = pd.to_numeric(table["age"], errors="coerce")
    grouped = ages.groupby(table["patient_id"], sort=True)
    per_patient = grouped.first()  # first non-missing value
    inconsistent = int((grouped.nunique() > 1).sum())
    if inconsistent:
        log.warning("%s: %d patients have more than one recorded age; using the first", source, inconsistent)
    return per_patient.astype(float)


def age_bin_edges(ages: np.ndarray, max_age: float, width: float = 2.0) -> np.ndarray:
    """Bin edges of the given width, one of them just above the cut-off (max_age + 0.5).

    Ages are whole years, so the edge at max_age + 0.5 splits kept from removed exactly.
    """
    finite = ages[np.isfinite(ages)]
    low = float(finite.min()) if finite.size else max_age
    high = float(finite.max()) if finite.size else max_age
    anchor = max_age + 0.5
    start = anchor - width * np.ceil((anchor - low) / width + 1e-9)
    stop = anchor + width * max(1.0, np.ceil((high - anchor) / width + 1e-9))
    return np.arange(start, stop + width / 2, width)


def age_histogram(manifest: pd.DataFrame, edges: np.ndarray) -> np.ndarray:
    """Counts of the manifest's patients per age bin, one age per patient (missing ages skipped)."""
    ages = patient_ages(manifest, "manifest").to_numpy()
    counts, _ = np.histogram(ages[np.isfinite(ages)], bins=edges)
    return counts


@dataclass(frozen=True)
class CohortCounts:
    """Images and patients before (raw table) and after (manifest) selection."""

    raw_images: int
    raw_patients: int
    raw_patients_no_age: int
    kept_images: int
    kept_patients: int


def cohort_counts(raw: pd.DataFrame, manifest: pd.DataFrame) -> CohortCounts:
    raw_ages = patient_ages(raw, "train.csv")
    return CohortCounts(
        raw_images=len(raw),
        raw_patients=int(raw["patient_id"].nunique()),
        raw_patients_no_age=int(raw_ages.isna().sum()),
        kept_images=len(manifest),
        kept_patients=int(manifest["patient_id"].nunique()),
    )


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def selection_summary(selection: Mapping[str, Any]) -> str:
    """The preprocessing's image counts (selection.json) as one line per step, for the figure."""
    labels = {
        "age_missing": "age missing",
        "age_above_max_age": f"age > {_number(selection.get('max_age', 'max_age'))}",
        "birads_missing": "BI-RADS missing",
        "cancer_missing": "cancer missing",
    }
    lines = []
    if "rows_in_train_csv" in selection:
        lines.append(f"images in train.csv: {selection['rows_in_train_csv']:,}")
    for key, n in (selection.get("removed") or {}).items():
        lines.append(f"  removed, {labels.get(key, key.replace('_', ' '))}: {n:,}")
    if selection.get("rejected"):
        lines.append(f"  rejected (file missing/unreadable): {selection['rejected']:,}")
    if "kept" in selection:
        lines.append(f"images kept: {selection['kept']:,}")
    return "\n".join(lines)


def plot_age_histogram(
    raw: pd.DataFrame,
    manifest: pd.DataFrame,
    max_age: float,
    bin_width: float = 2.0,
    selection: Mapping[str, Any] | None = None,
) -> tuple[Figure, np.ndarray, np.ndarray]:
    """Histogram of the raw patients' ages behind the kept patients'; returns (fig, kept counts, edges)."""
    import matplotlib.pyplot as plt

    raw_ages = patient_ages(raw, "train.csv").to_numpy()
    kept_ages = patient_ages(manifest, "manifest").to_numpy()
    edges = age_bin_edges(np.concatenate([raw_ages, kept_ages]), max_age, bin_width)
    raw_counts, _ = np.histogram(raw_ages[np.isfinite(raw_ages)], bins=edges)
    kept_counts = age_histogram(manifest, edges)
    counts = cohort_counts(raw, manifest)

    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    no_age = f", {counts.raw_patients_no_age:,} without age" if counts.raw_patients_no_age else ""
    ax.stairs(
        raw_counts, edges, fill=True, color="0.82",
        label=f"train.csv: {counts.raw_patients:,} patients, {counts.raw_images:,} images{no_age}",
    )
    ax.stairs(
        kept_counts, edges, fill=True, color="tab:blue", alpha=0.85,
        label=f"kept: {counts.kept_patients:,} patients, {counts.kept_images:,} images",
    )
    ax.axvline(max_age + 0.5, color="tab:red", linestyle="--", linewidth=1.2,
               label=f"cut-off: age ≤ {max_age:g}")
    ax.set_xlabel("age at screening (years), one value per patient")
    ax.set_ylabel("patients")
    ax.set_title("RSNA: age of the subjects before and after selection", fontsize=10)
    ax.legend(fontsize=7.5, frameon=False, loc="upper right")
    if selection:
        ax.text(0.015, 0.97, selection_summary(selection), transform=ax.transAxes, va="top",
                ha="left", fontsize=6.5, family="monospace", color="0.25")
    ax.spines[["top", "right"]].set_visible(False)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max(1, int(raw_counts.max(initial=0))) * 1.4)  # headroom for the legend
    ax.margins(x=0)
    fig.tight_layout()
    return fig, kept_counts, edges


def make_rsna_age(
    raw_table_path: PathLike,
    manifest_path: PathLike,
    pdf_path: PathLike,
    png_path: PathLike,
    max_age: float,
    bin_width: float = 2.0,
    selection_path: PathLike | None = None,
) -> CohortCounts:
    """Build the figure from train.csv and the manifest (and the preprocessing's selection.json,
    whose per-step image counts are printed on it); returns the before/after counts."""
    manifest = load_manifest(manifest_path, REQUIRED_COLUMNS)
    try:
        raw = pd.read_csv(raw_table_path)
    except FileNotFoundError:
        raise FrugalmedError(
            f"{raw_table_path}: raw train.csv not found; the RSNA raw_dir must hold Kaggle's train.csv"
        ) from None
    kept_over = patient_ages(manifest, "manifest")
    if (kept_over > max_age).any():
        log.warning("%d manifest patients are older than max_age=%s", int((kept_over > max_age).sum()), max_age)
    selection = None
    if selection_path is not None:
        try:
            selection = json.loads(Path(selection_path).read_text())
        except (OSError, ValueError) as err:
            raise FrugalmedError(f"{selection_path}: cannot read the RSNA selection counts: {err}") from None
    fig, kept_counts, edges = plot_age_histogram(raw, manifest, max_age, bin_width, selection)
    save_figure(fig, pdf_path, png_path)
    counts = cohort_counts(raw, manifest)
    log.info("counts %s; kept histogram %s over edges %s", counts, kept_counts.tolist(), edges.tolist())
    return counts
