"""Patient-level, label-stratified train/val/test splits, optionally also by site.

A patient's images (or a patient's several CT scans) always land in one split, so no
patient leaks between training and evaluation. Patients are stratified by whether any of
their samples is positive, so every split sees both labels where the cohort allows. Given a
grouping column (a site), patients are stratified by label x site instead, so every split sees
every site (and a site's label mix) where the cohort allows, and a test AUC is not a
comparison of sites the model never trained on.
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
    groups: pd.Series | None = None,
) -> pd.Series:
    """Return the split name ('train'|'val'|'test') of every sample, aligned with `patient_ids`.

    `groups` (optional, aligned with `patient_ids`, e.g. site_id): stratify by label x group
    (see :func:`_stratified_by_group`). Without it the splits are exactly those of the
    label-only stratification.
    """
    if groups is not None:
        return _stratified_by_group(patient_ids, labels, groups, fractions, seed)
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


#: Sites with fewer patients than this are pooled for the label x site stratification.
MIN_SITE_PATIENTS = 3
SMALL_SITES = "\0small sites"


def _stratified_by_group(
    patient_ids: pd.Series,
    labels: pd.Series,
    groups: pd.Series,
    fractions: Mapping[str, float],
    seed: int,
) -> pd.Series:
    """Split patients within every label x group stratum, then repair what rounding broke.

    A patient's group is the commonest among its samples (missing values form their own
    group); groups of fewer than MIN_SITE_PATIENTS patients are pooled into one. Rounding
    each small stratum separately can (1) leave a group out of a split and (2) let the overall counts drift from the fractions, so two repairs follow, each moving a
    whole patient: every group with at least one patient per split appears in every split,
    then patients move from over- to under-filled splits (taken from the stratum most
    over-represented there, never emptying a group from a split) until the split sizes are the
    largest-remainder rounding of the fractions.
    """
    frame = pd.DataFrame({
        "patient": patient_ids.astype(str).values,
        "label": labels.values,
        "group": groups.astype(object).where(groups.notna(), "missing").astype(str).values,
    })  # fmt: skip
    per_patient = frame.groupby("patient", sort=True).agg(
        label=("label", "max"), group=("group", lambda g: g.value_counts().index[0])
    )
    # A site of one or two patients cannot be in all three splits, and its strata would only
    # be rounding, which the repairs below cannot undo without emptying it from a split (the
    # split sizes then drifted from the fractions). Such sites are pooled into one group and
    # stratified by label together.
    site_size = per_patient["group"].map(per_patient["group"].value_counts())
    per_patient.loc[site_size < MIN_SITE_PATIENTS, "group"] = SMALL_SITES
    rng = np.random.default_rng(seed)
    split_of: dict[str, str] = {}
    stratum_of: dict[str, tuple] = {}
    for key, members in per_patient.groupby(["group", "label"], sort=True):
        names = rng.permutation(members.index.to_numpy())
        for patient, split in zip(names, _allocate(len(names), fractions)):
            split_of[patient] = split
            stratum_of[patient] = key
    wanted = [name for name in SPLIT_NAMES if fractions[name] > 0]
    _cover_groups(split_of, stratum_of, wanted)
    _rebalance(split_of, stratum_of, fractions, wanted)
    _fill_empty_splits(split_of, fractions)
    return pd.Series(
        [split_of[p] for p in frame["patient"]], index=patient_ids.index, name="split"
    )


def _members(split_of: Mapping[str, str], stratum_of: Mapping[str, tuple]) -> dict:
    """(group, split) -> patients, in assignment order (the last one is moved first)."""
    members: dict[tuple[str, str], list[str]] = {}
    for patient, split in split_of.items():
        members.setdefault((stratum_of[patient][0], split), []).append(patient)
    return members


def _cover_groups(split_of: dict[str, str], stratum_of: Mapping[str, tuple],
                  wanted: list[str]) -> None:
    """Give every group with >= len(wanted) patients at least one patient in every split."""
    for group in sorted({key[0] for key in stratum_of.values()}):
        while True:
            members = _members(split_of, stratum_of)
            sizes = {split: len(members.get((group, split), [])) for split in wanted}
            empty = [split for split in wanted if sizes[split] == 0]
            if not empty or sum(sizes.values()) < len(wanted):
                break
            donor = max(wanted, key=lambda split: sizes[split])
            split_of[members[(group, donor)][-1]] = empty[0]


def _rebalance(split_of: dict[str, str], stratum_of: Mapping[str, tuple],
               fractions: Mapping[str, float], wanted: list[str]) -> None:
    """Move whole patients until the split sizes equal the rounding of the fractions."""
    target = dict(zip(SPLIT_NAMES, np.bincount(
        [SPLIT_NAMES.index(s) for s in _allocate(len(split_of), fractions)], minlength=3)))
    stratum_size: dict[tuple, int] = {}
    for key in stratum_of.values():
        stratum_size[key] = stratum_size.get(key, 0) + 1
    for _ in range(len(split_of)):  # each move fixes one unit of imbalance
        sizes = {split: sum(1 for s in split_of.values() if s == split) for split in wanted}
        over = [s for s in wanted if sizes[s] > target[s]]
        under = [s for s in wanted if sizes[s] < target[s]]
        if not over or not under:
            return
        source, sink = over[0], under[0]
        cells: dict[tuple, list[str]] = {}
        group_cells: dict[str, int] = {}
        in_sink_of: dict[tuple, int] = {}
        for patient, split in split_of.items():
            key = stratum_of[patient]
            if split == source:
                cells.setdefault(key, []).append(patient)
                group_cells[key[0]] = group_cells.get(key[0], 0) + 1
            elif split == sink:
                in_sink_of[key] = in_sink_of.get(key, 0) + 1

        def excess(key: tuple) -> float:
            in_sink = in_sink_of.get(key, 0)
            n = stratum_size[key]
            return (len(cells[key]) - fractions[source] * n) - (in_sink - fractions[sink] * n)

        movable = [key for key in cells if group_cells[key[0]] >= 2]
        if not movable:
            return
        key = max(sorted(movable), key=excess)
        split_of[cells[key][-1]] = sink
