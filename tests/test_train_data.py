"""What a training run reads (frugalmed.train.data): which rows each split holds, the pixels and
labels a batch carries, the normalisation (training images only), the batch order, and the
refusals that keep a bad manifest from producing numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from conftest_train import make_fake_dataset
from frugalmed.errors import FrugalmedError
from frugalmed.train.data import ImageArrayDataset, check_split_integrity, load_splits, make_loader


@pytest.fixture
def data(tmp_path):
    return make_fake_dataset(tmp_path / "d", n=30, size=8, seed=2)


def test_each_split_holds_exactly_its_manifest_rows_with_their_labels(data):
    split = load_splits(*data)
    manifest = pd.read_csv(data[0])
    for name in ("train", "val", "test"):
        rows = np.flatnonzero(manifest["split"] == name)
        assert split.rows(name).tolist() == rows.tolist()
        assert split.datasets[name].labels.tolist() == manifest["label"].to_numpy()[rows].tolist()
        assert split.counts()[name] == {"n": len(rows), "positives": int(manifest["label"][rows].sum())}
    assert split.image_size == 8 and split.manifest is not None and len(split.manifest) == 30


def test_normalisation_uses_the_training_images_only(data):
    """Changing validation or test pixels must not move the mean/std a run normalises with
    (catches statistics over all rows: test information in training)."""
    manifest, images = data
    before = load_splits(manifest, images)
    pixels = np.load(images)
    train = pixels[np.flatnonzero(pd.read_csv(manifest)["split"] == "train")] / 255.0
    assert before.mean == pytest.approx(train.mean()) and before.std == pytest.approx(train.std())
    other = np.flatnonzero(pd.read_csv(manifest)["split"] != "train")
    pixels[other] = 255
    np.save(images, pixels)
    after = load_splits(manifest, images)
    assert (after.mean, after.std) == (before.mean, before.std)


def test_constant_training_images_get_std_one(tmp_path):
    """A constant training set has std 0 up to float noise (~1e-17): dividing by that would blow
    every input up to ~1e16; the run normalises by 1 instead."""
    manifest, images = make_fake_dataset(tmp_path, n=10, size=4)
    np.save(images, np.full((10, 4, 4), 51, np.uint8))
    split = load_splits(manifest, images)
    assert split.mean == pytest.approx(0.2) and split.std == 1.0


def test_a_batch_is_the_normalised_pixels_and_labels_of_the_requested_rows():
    images = np.arange(5 * 2 * 2, dtype=np.uint8).reshape(5, 2, 2) * 10
    rows = np.array([4, 1, 3])
    labels = np.array([1, 0, 1], np.float32)
    dataset = ImageArrayDataset(images, rows, labels, mean=0.1, std=0.5)
    assert len(dataset) == 3
    batch = dataset.__getitems__([2, 0, 1])  # unsorted, as a shuffled loader asks
    for (x, y), i in zip(batch, [2, 0, 1]):
        expected = (images[rows[i]].astype(np.float32) / 255.0 - 0.1) / 0.5
        assert x.shape == (1, 2, 2) and x.dtype == torch.float32
        assert torch.allclose(x[0], torch.from_numpy(expected))
        assert y.tolist() == [labels[i]]
    single_x, single_y = dataset[1]
    assert torch.equal(single_x, batch[2][0]) and torch.equal(single_y, batch[2][1])


def test_shuffled_order_is_fixed_by_its_seed_and_differs_between_seeds():
    dataset = ImageArrayDataset(np.zeros((40, 2, 2), np.uint8), np.arange(40),
                                np.arange(40, dtype=np.float32), 0.0, 1.0)

    def order(seed):
        return [int(v) for _, y in make_loader(dataset, 8, 0, shuffle_seed=seed) for v in y.ravel()]
    assert order(3) == order(3) and sorted(order(3)) == list(range(40))
    assert order(3) != order(4) and order(3) != list(range(40))
    in_order = [int(v) for _, y in make_loader(dataset, 8, 0) for v in y.ravel()]
    assert in_order == list(range(40))  # evaluation keeps manifest order


@pytest.mark.parametrize(("n", "shuffled", "dropped"), [(33, True, True), (33, False, False),
                                                        (34, True, False), (32, True, False)])
def test_only_a_lone_last_training_sample_is_dropped(n, shuffled, dropped):
    """A last batch of one breaks BatchNorm in training; evaluation never drops a sample."""
    dataset = ImageArrayDataset(np.zeros((n, 2, 2), np.uint8), np.arange(n),
                                np.zeros(n, np.float32), 0.0, 1.0)
    loader = make_loader(dataset, 16, 0, shuffle_seed=1 if shuffled else None)
    assert sum(len(y) for _, y in loader) == n - int(dropped)
    assert loader.drop_last is dropped and loader.pin_memory is False
    assert make_loader(dataset, 16, 0, pin_memory=True).pin_memory is True


def test_a_row_in_two_splits_or_of_another_split_is_refused(data):
    manifest = pd.read_csv(data[0])
    rows = {name: np.flatnonzero(manifest["split"] == name) for name in ("train", "val", "test")}
    check_split_integrity(manifest, rows, data[0])  # the real split passes
    val_row = int(rows["val"][0])
    with pytest.raises(FrugalmedError, match=rf"the train rows of this run include row {val_row}.*'val'"):
        check_split_integrity(manifest, dict(rows, train=np.append(rows["train"], val_row)), data[0])
    relabelled = manifest.copy()
    relabelled.loc[val_row, "split"] = "train"  # the row is now train, but still in the val rows
    with pytest.raises(FrugalmedError, match=rf"the val rows of this run include row {val_row}.*'train'"):
        check_split_integrity(relabelled, dict(rows, train=np.append(rows["train"], val_row)),
                              data[0])


@pytest.mark.parametrize("moved_to", ["val", "test"])
def test_a_patient_with_rows_in_two_splits_is_refused(data, moved_to):
    manifest = pd.read_csv(data[0])
    train_row = int(np.flatnonzero(manifest["split"] == "train")[0])
    other = int(np.flatnonzero(manifest["split"] == moved_to)[0])
    manifest.loc[other, "patient_id"] = manifest.loc[train_row, "patient_id"]
    rows = {name: np.flatnonzero(manifest["split"] == name) for name in ("train", "val", "test")}
    with pytest.raises(FrugalmedError, match=rf"patient '{manifest.loc[train_row, 'patient_id']}' "
                                             rf"has images in both the train and the {moved_to}"):
        check_split_integrity(manifest, rows, data[0])


@pytest.mark.parametrize(("change", "message"), [
    (lambda m, a: (m.drop(columns="label"), a), r"missing columns \['label'\]"),
    (lambda m, a: (m, a[:-1]), "has 29 images but .* has 30 rows"),
    (lambda m, a: (m, a.astype(np.float32)), "expected a uint8 array"),
    (lambda m, a: (m, a[:, :, :4]), "expected a uint8 array"),
    (lambda m, a: (m, a[:, 0]), "expected a uint8 array"),
    (lambda m, a: (m.assign(label=np.where(m.index == 0, 2, m.label)), a), "'label' must be 0 or 1"),
    (lambda m, a: (m.assign(split=np.where(m.index == 0, "tset", m.split)), a),
     r"unknown split values \['tset'\]"),
    (lambda m, a: (m.assign(split=np.where(m.split == "val", "train", m.split)), a),
     r"no samples in split\(s\) \['val'\]"),
])
def test_bad_inputs_are_refused_naming_the_file(data, change, message):
    manifest, images = data
    frame, array = change(pd.read_csv(manifest), np.load(images))
    frame.to_csv(manifest, index=False)
    np.save(images, array)
    with pytest.raises(FrugalmedError, match=message):
        load_splits(manifest, images)


def test_zero_padded_patient_ids_stay_text(data):
    """A table's patient '007' must reach predictions.csv as '007': read as a number it becomes
    7, the results stage then refuses the predictions (patient_id differs from the manifest), and
    '7' and '007' would count as one patient in the split check and the patient bootstrap."""
    manifest = pd.read_csv(data[0])
    manifest["patient_id"] = [f"{i:03d}" for i in range(len(manifest))]
    manifest.to_csv(data[0], index=False)
    loaded = load_splits(*data)
    assert list(loaded.manifest["patient_id"]) == [f"{i:03d}" for i in range(len(manifest))]


def test_loaded_splits_serve_the_normalised_pixels_of_their_rows_from_the_memory_map(data):
    """What a run really feeds the model: each split's batch is its own rows' pixels normalised
    with the training statistics, labels as float32 (the loss's dtype), and the array stays
    memory-mapped (catches a dataset built without the images or the statistics, float64
    labels, or a full-size mammogram array read into memory by every loader worker)."""
    manifest, images = data
    split = load_splits(manifest, images)
    pixels = np.load(images)
    for name in ("train", "val", "test"):
        dataset = split.datasets[name]
        assert isinstance(dataset.images, np.memmap)
        batch = dataset.__getitems__(list(range(len(dataset))))
        for (x, y), row in zip(batch, split.rows(name)):
            expected = (pixels[row].astype(np.float64) / 255.0 - split.mean) / split.std
            assert torch.allclose(x[0].double(), torch.from_numpy(expected), atol=1e-5)
            assert y.dtype == torch.float32 and y.item() == pd.read_csv(manifest)["label"][row]


def test_a_leak_found_by_load_splits_names_the_manifest(data):
    """The refusal must say which file to fix (catches the path dropped from the check)."""
    manifest_path, images = data
    manifest = pd.read_csv(manifest_path)
    test_row = int(np.flatnonzero(manifest["split"] == "test")[0])
    manifest.loc[test_row, "patient_id"] = manifest.loc[0, "patient_id"]  # row 0 is train
    manifest.to_csv(manifest_path, index=False)
    with pytest.raises(FrugalmedError, match=rf"^{manifest_path}: patient 'p0'"):
        load_splits(manifest_path, images)


def test_a_row_listed_twice_is_refused_naming_its_split(data):
    """A row listed twice in the training rows (a selection bug that oversamples) is refused,
    naming the split both times (catches the first owner's name lost from the message). A row
    in two different splits is refused earlier: one of them is not its manifest split."""
    manifest = pd.read_csv(data[0])
    rows = {name: np.flatnonzero(manifest["split"] == name) for name in ("train", "val", "test")}
    twice = int(rows["train"][1])
    with pytest.raises(FrugalmedError, match=rf"row {twice} is in both the train and the train rows"):
        check_split_integrity(manifest, dict(rows, train=np.append(rows["train"], twice)), data[0])


def test_the_integrity_check_accepts_a_run_without_some_split(data):
    """The check itself works on whatever splits the rows name; a manifest without validation
    rows passes it (load_splits refuses that separately, with its own message)."""
    manifest = pd.read_csv(data[0])
    manifest = manifest[manifest["split"] != "val"].reset_index(drop=True)
    rows = {name: np.flatnonzero(manifest["split"] == name) for name in ("train", "test")}
    check_split_integrity(manifest, rows, data[0])


def test_the_loader_uses_the_requested_workers():
    """num_workers is passed on (catches a run that always loads in the main process)."""
    dataset = ImageArrayDataset(np.zeros((4, 2, 2), np.uint8), np.arange(4), np.zeros(4, np.float32),
                                0.0, 1.0)
    assert make_loader(dataset, 2, 1).num_workers == 1
    assert make_loader(dataset, 2, 0, shuffle_seed=1).num_workers == 0
