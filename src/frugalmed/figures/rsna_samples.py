"""Figure: a grid of preprocessed RSNA mammograms across sites/machines, views and both labels.

The choice of images is deterministic (seeded) and greedy-diverse, so the grid shows the cohort's
variety rather than whichever rows come first: labels alternate, and each pick favours a view,
site, machine and laterality not yet shown.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

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

#: Columns of the manifest this figure reads (CONTRACT: RSNA manifest).
REQUIRED_COLUMNS = ["image_id", "patient_id", "label", "view", "laterality", "age"]

#: Attributes whose variety the selection maximises, with their weights (view matters most).
DIVERSITY_WEIGHTS = {"view": 4.0, "site_id": 2.0, "machine_id": 2.0, "laterality": 1.0}

LABEL_MEANINGS = {
    "birads_followup": {0: "no follow-up", 1: "BI-RADS 0: follow-up"},
    "cancer": {0: "no cancer", 1: "cancer"},
}


def add_site_machine(manifest: pd.DataFrame, raw_table: pd.DataFrame | None) -> pd.DataFrame:
    """Bring site_id/machine_id into the manifest from the raw train.csv when it lacks them."""
    wanted = [c for c in ("site_id", "machine_id") if c not in manifest.columns]
    if not wanted or raw_table is None:
        return manifest
    missing_in_raw = [c for c in ["image_id", *wanted] if c not in raw_table.columns]
    if missing_in_raw:
        raise FrugalmedError(f"raw train.csv lacks column(s) {missing_in_raw}")
    lookup = raw_table[["image_id", *wanted]].drop_duplicates("image_id")
    lookup = lookup.astype({"image_id": manifest["image_id"].dtype})
    merged = manifest.merge(lookup, on="image_id", how="left", validate="many_to_one")
    return merged.set_axis(manifest.index)


def choose_samples(manifest: pd.DataFrame, n: int, seed: int) -> list[int]:
    """Row positions of n images: both labels balanced, views/sites/machines as varied as possible.

    Deterministic for a given manifest and seed: ties are broken by a seeded permutation.
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    n = min(n, len(manifest))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(manifest))
    pool = manifest.reset_index(drop=True).iloc[order].reset_index(drop=False, names="row")
    attributes = [a for a in DIVERSITY_WEIGHTS if a in pool.columns]
    labels = sorted(pool["label"].unique().tolist())
    chosen: list[int] = []
    per_label = {label: 0 for label in labels}
    available = np.ones(len(pool), dtype=bool)
    label_values = pool["label"].to_numpy()
    while len(chosen) < n:
        # the label shown least so far goes next (so both labels appear, balanced)
        candidates_by_label = {lab: available & (label_values == lab) for lab in labels}
        open_labels = [lab for lab in labels if candidates_by_label[lab].any()]
        label = min(open_labels, key=lambda lab: (per_label[lab], labels.index(lab)))
        mask = candidates_by_label[label]
        score = np.zeros(len(pool))
        shown = pool[~available]
        for attr in attributes:
            counts = shown[attr].value_counts(dropna=False)
            seen = pool[attr].map(counts).fillna(0).to_numpy(dtype=float)
            score += DIVERSITY_WEIGHTS[attr] / (1.0 + seen)
        score[~mask] = -np.inf
        pick = int(np.argmax(score))  # first maximum = earliest in the seeded permutation
        chosen.append(int(pool.at[pick, "row"]))
        available[pick] = False
        per_label[label] += 1
    return chosen


def _title(row: pd.Series, label_meanings: dict[int, str]) -> str:
    age = row["age"]
    age_text = "age ?" if pd.isna(age) else f"{age:.0f} y"
    label = int(row["label"])
    meaning = label_meanings.get(label, "")
    first = f"{row['view']} {row['laterality']}, {age_text}"
    where = [f"{k.split('_')[0]} {row[k]}" for k in ("site_id", "machine_id") if k in row and pd.notna(row[k])]
    second = f"label {label}" + (f" ({meaning})" if meaning else "")
    return "\n".join([first, second] + ([", ".join(where)] if where else []))


def plot_samples(
    images: np.ndarray,
    manifest: pd.DataFrame,
    rows: list[int],
    label_name: str = "birads_followup",
    max_cols: int = 6,
) -> Figure:
    """A grid of the chosen images, each titled with view, laterality, age and label."""
    import matplotlib.pyplot as plt

    n_rows, n_cols = grid_shape(len(rows), max_cols)
    height, width = images.shape[1:]
    panel_w = 2.0
    panel_h = panel_w * height / width + 0.75
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(panel_w * n_cols, panel_h * n_rows), squeeze=False)
    meanings = LABEL_MEANINGS.get(label_name, {})
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, row in zip(axes.flat, rows):
        ax.set_axis_on()
        show_grey(ax, np.asarray(images[row]))
        record = manifest.iloc[row]
        colour = "tab:red" if int(record["label"]) == 1 else "black"
        ax.set_title(_title(record, meanings), fontsize=7.5, color=colour, linespacing=1.2)
    fig.suptitle(
        f"RSNA: preprocessed images at the base size ({height}×{width} px)", fontsize=10
    )
    fig.tight_layout()
    return fig


def make_rsna_samples(
    manifest_path: PathLike,
    images_path: PathLike,
    pdf_path: PathLike,
    png_path: PathLike,
    raw_table_path: PathLike | None = None,
    n: int = 12,
    seed: int = 0,
    label_name: str = "birads_followup",
) -> list[int]:
    """Build the figure from the contract's files; returns the chosen manifest rows."""
    manifest = load_manifest(manifest_path, REQUIRED_COLUMNS)
    images = load_images(images_path, len(manifest))
    raw = None
    if raw_table_path is not None and Path(raw_table_path).is_file():
        raw = pd.read_csv(raw_table_path)
    elif raw_table_path is not None:
        log.warning("%s not found: titles and the choice of images go without site/machine", raw_table_path)
    manifest = add_site_machine(manifest, raw)
    rows = choose_samples(manifest, n, seed)
    log.info("chose rows %s (sample_ids %s)", rows, manifest.iloc[rows].get("sample_id", pd.Series()).tolist())
    fig = plot_samples(images, manifest, rows, label_name=label_name)
    save_figure(fig, pdf_path, png_path)
    return rows
