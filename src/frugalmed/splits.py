"""Patient-level, label-stratified train/val/test splits.

A patient's images (or a patient's several CT scans) always land in one split, so no
patient leaks between training and evaluation. Patients are stratified by whether any of
their samples is positive, so every split sees both labels where the cohort allows.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

SPLIT_NAMES = ("train", "val", "test")


def assign_patient_splits(
    patient_ids: pd.Series,
    labels: pd.Series,
    fractions: Mapping[str, float],
    seed: int,
) -> pd.Series:
    """Return the split name ('train'|'val'|'test') of every sample, aligned with `patient_ids`."""
    per_patient = pd.DataFrame({"patient": patient_ids.astype(str).values, "label": labels.values})
    patient_label = per_patient.groupby("patient", sort=True)["label"].max()
    rng = np.random.default_rng(seed)
    split_of: dict[str, str] = {}
    for _, patients in patient_label.groupby(patient_label, sort=True):
        names = rng.permutation(patients.index.to_numpy())
        for patient, split in zip(names, _allocate(len(names), fractions)):
            split_of[patient] = split
    _fill_empty_splits(split_of, fractions)
    return pd.Series(
        [split_of[p] for p in per_patient["patient"]], index=patient_ids.index, name="split"
    )


def _fill_empty_splits(split_of: dict[str, str], fractions: Mapping[str, float]) -> None:
    """Give every split at least one patient when there are enough patients.

    Per-stratum rounding can leave a small cohort (a demo, a pilot) without a test or
    validation patient; training then has nothing to select or report on. Move the last
    patient of the largest split into each empty one instead.
    """
    wanted = [name for name in SPLIT_NAMES if fractions[name] > 0]
    for empty in [name for name in wanted if name not in split_of.values()]:
        members = {name: [p for p, s in split_of.items() if s == name] for name in wanted}
        donor = max(members, key=lambda name: len(members[name]))
        if len(members[donor]) < 2:
            return
        split_of[members[donor][-1]] = empty


def _allocate(n: int, fractions: Mapping[str, float]) -> list[str]:
    """Split names for n shuffled patients, by largest remainder so the counts sum to n."""
    wanted = np.array([fractions[s] for s in SPLIT_NAMES], dtype=float) * n
    counts = np.floor(wanted).astype(int)
    for i in np.argsort(-(wanted - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    return [name for name, c in zip(SPLIT_NAMES, counts) for _ in range(c)]
