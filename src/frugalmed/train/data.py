"""The training data: a manifest's splits over a memory-mapped uint8 image array."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from frugalmed.errors import FrugalmedError

SPLITS = ("train", "val", "test")
REQUIRED_COLUMNS = ("sample_id", "patient_id", "split", "label")


class ImageArrayDataset(Dataset):
    """Rows of a (N, H, W) uint8 array as (1, H, W) float tensors, normalised, with their labels.

    The array stays memory-mapped: only the rows a batch needs are read.
    """

    def __init__(self, images: np.ndarray, rows: np.ndarray, labels: np.ndarray,
                 mean: float, std: float) -> None:
        self.images, self.rows, self.labels = images, rows, labels
        self.mean, self.std = mean, std

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A whole batch at once (the DataLoader calls this when it exists): one read of the
        rows from the memory map, in file order, and one vectorised normalisation in NumPy
        (single-threaded whatever torch's thread count), instead of per-image tensor work."""
        indices = np.asarray(indices, dtype=np.int64)
        rows = self.rows[indices]
        order = np.argsort(rows, kind="stable")
        pixels = np.empty((len(rows),) + self.images.shape[1:], dtype=np.float32)
        pixels[order] = self.images[rows[order]]
        pixels /= 255.0
        pixels -= self.mean
        pixels /= self.std
        images = torch.from_numpy(pixels).unsqueeze(1)
        labels = torch.from_numpy(self.labels[indices].astype(np.float32)).unsqueeze(1)
        return list(zip(images, labels))


@dataclass
class SplitData:
    """The three splits of one dataset at one scale, plus facts the metrics report.

    `manifest` is the dataset's manifest table (row i = image i); each split dataset's `rows`
    index into it, so predictions can be written with their manifest row and patient.
    """

    datasets: dict[str, ImageArrayDataset]
    image_size: int
    mean: float
    std: float
    manifest: pd.DataFrame | None = None

    def counts(self) -> dict[str, dict[str, int]]:
        return {name: {"n": len(ds), "positives": int(ds.labels.sum())}
                for name, ds in self.datasets.items()}

    def rows(self, split: str) -> np.ndarray:
        """Manifest rows of one split, in the order its loader yields them."""
        return self.datasets[split].rows


def load_splits(manifest_path: str | Path, images_path: str | Path) -> SplitData:
    """Read the manifest and the image array; check they agree; normalise with train statistics."""
    manifest = pd.read_csv(manifest_path, dtype={"patient_id": str})  # "007" stays "007"
    missing = [c for c in REQUIRED_COLUMNS if c not in manifest.columns]
    if missing:
        raise FrugalmedError(f"{manifest_path}: missing columns {missing}; "
                             f"expected at least {list(REQUIRED_COLUMNS)}")
    images = np.load(images_path, mmap_mode="r")
    if images.ndim != 3 or images.dtype != np.uint8 or images.shape[1] != images.shape[2]:
        raise FrugalmedError(f"{images_path}: expected a uint8 array (N, H, W) of square images, "
                             f"got {images.dtype} {images.shape}")
    if len(images) != len(manifest):
        raise FrugalmedError(f"{images_path} has {len(images)} images but {manifest_path} has "
                             f"{len(manifest)} rows; rebuild the dataset (row i = image i)")
    labels = manifest["label"].to_numpy()
    if not np.isin(labels, (0, 1)).all():
        raise FrugalmedError(f"{manifest_path}: column 'label' must be 0 or 1")
    split = manifest["split"].astype(str).to_numpy()
    unknown = sorted(set(split) - set(SPLITS))
    if unknown:
        raise FrugalmedError(f"{manifest_path}: unknown split values {unknown} (allowed {SPLITS})")
    rows = {name: np.flatnonzero(split == name) for name in SPLITS}
    empty = [name for name, r in rows.items() if len(r) == 0]
    if empty:
        raise FrugalmedError(f"{manifest_path}: no samples in split(s) {empty}")
    check_split_integrity(manifest, rows, manifest_path)
    train = np.asarray(images[np.sort(rows["train"])], dtype=np.float64) / 255.0
    mean, std = float(train.mean()), float(train.std())
    if not std > 1e-6:  # constant images: their std is 0 only up to float noise (~1e-17)
        std = 1.0
    datasets = {name: ImageArrayDataset(images, r, labels[r].astype(np.float32), mean, std)
                for name, r in rows.items()}
    return SplitData(datasets, int(images.shape[1]), mean, std, manifest)


def check_split_integrity(manifest: pd.DataFrame, rows: dict[str, np.ndarray],
                          manifest_path: str | Path) -> None:
    """Refuse to train when the splits leak: the run-time guard behind every reported AUC.

    Checked on the row sets the run will really use (not only on the manifest's column), so
    a selection bug that adds validation or test rows to training is caught too: every row of
    a split must carry that split's name in the manifest, no row may be in two splits, and no
    patient may have rows in two splits.
    """
    split = manifest["split"].astype(str).to_numpy()
    for name, r in rows.items():
        wrong = r[split[r] != name]
        if len(wrong):
            row = int(wrong[0])
            raise FrugalmedError(
                f"{manifest_path}: the {name} rows of this run include row {row} "
                f"(sample {manifest['sample_id'].iloc[row]!r}, patient "
                f"{manifest['patient_id'].iloc[row]!r}), whose split is '{split[row]}'; "
                "refusing to train on leaked rows (a bug in the row selection)")
    seen: dict[int, str] = {}
    for name, r in rows.items():
        for row in r.tolist():
            if row in seen:
                raise FrugalmedError(f"{manifest_path}: row {row} is in both the {seen[row]} and "
                                     f"the {name} rows of this run; refusing to train")
            seen[row] = name
    patients = manifest["patient_id"].astype(str)
    splits_of = patients.groupby(split).unique()
    owner: dict[str, str] = {}
    for name in SPLITS:
        for patient in splits_of.get(name, []):
            if patient in owner:
                raise FrugalmedError(
                    f"{manifest_path}: patient {patient!r} has images in both the "
                    f"{owner[patient]} and the {name} split; splits must be by patient "
                    "(rebuild the dataset, or fix the 'split' column of a user-made manifest)")
            owner[patient] = name


def make_loader(dataset: ImageArrayDataset, batch_size: int, num_workers: int,
                shuffle_seed: int | None = None, pin_memory: bool = False) -> DataLoader:
    """A DataLoader; shuffled with its own seeded generator when shuffle_seed is given.

    A per-epoch seed (not the global RNG) fixes the batch order, so a resumed run sees the same
    batches as an uninterrupted one. `pin_memory` (for CUDA) lets batches be copied to the GPU
    asynchronously (`non_blocking=True`), so the copy does not stall the loop.
    """
    generator = None
    if shuffle_seed is not None:
        generator = torch.Generator().manual_seed(shuffle_seed)
    # A last training batch of one sample breaks BatchNorm; drop it only in that case.
    drop_last = shuffle_seed is not None and len(dataset) % batch_size == 1
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle_seed is not None,
                      generator=generator, num_workers=num_workers, drop_last=drop_last,
                      pin_memory=pin_memory)
