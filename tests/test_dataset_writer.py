"""The dataset writer every kind uses: row-aligned arrays appended without a known row count,
atomic publication, manifest/rejects/selection layout, assigned and given splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from frugalmed.dataset.outputs import MANIFEST_FIRST, REJECT_COLUMNS, dataset_outputs
from frugalmed.dataset.parallel import ordered_map
from frugalmed.dataset.splits import check_given_splits
from frugalmed.dataset.writer import DatasetWriter, NpyAppender, npy_header
from frugalmed.errors import FrugalmedError

SPLITS = {"train": 0.6, "val": 0.2, "test": 0.2, "seed": 0}


def outputs(folder: Path, scales=(1, 2)) -> dict[str, str]:
    return {key: str(folder / Path(path).name) for key, path in dataset_outputs("x", scales).items()}


def test_dataset_outputs_names_the_contract_paths() -> None:
    assert dataset_outputs("lidc_r3", [1]) == {
        "manifest": "results/data/lidc_r3/manifest.csv",
        "rejects": "results/data/lidc_r3/rejects.csv",
        "selection": "results/data/lidc_r3/selection.json",
        "images_s1": "results/data/lidc_r3/images_s1.npy",
    }


@pytest.mark.parametrize("n", [0, 1, 7])
def test_appender_gives_a_plain_npy_without_knowing_the_count(tmp_path: Path, n: int) -> None:
    data = np.arange(n * 9, dtype=np.uint8).reshape(n, 3, 3)
    array = NpyAppender(tmp_path / "a.npy", 3)
    assert not (tmp_path / "a.npy").exists()
    for row in data:
        array.append(row)
    array.finish()
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), data)
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")  # how training reads it
    assert mapped.shape == (n, 3, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]  # no partial file left


def test_appender_output_is_byte_identical_to_numpy_save(tmp_path: Path) -> None:
    """Catches a header written for the wrong row count or padded differently from np.save."""
    data = np.random.default_rng(0).integers(0, 256, (5, 4, 4), dtype=np.uint8)
    np.save(tmp_path / "ref.npy", data)
    array = NpyAppender(tmp_path / "a.npy", 4)
    for row in data:
        array.append(row)
    array.finish()
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()


def test_appender_rewrites_when_the_header_grows(tmp_path: Path, monkeypatch) -> None:
    """If the final header were longer than the placeholder, every row is copied behind it."""
    import struct

    import frugalmed.dataset.writer as writer

    data = np.arange(5 * 4, dtype=np.uint8).reshape(5, 2, 2)
    array = NpyAppender(tmp_path / "a.npy", 2)
    for row in data:
        array.append(row)
    real = writer.npy_header

    def longer(n: int, side: int) -> bytes:  # a valid header, 64 bytes longer
        header = real(n, side)
        body = header[10:-1] + b" " * 64 + b"\n"
        return header[:8] + struct.pack("<H", len(body)) + body

    monkeypatch.setattr(writer, "npy_header", longer)
    monkeypatch.setattr(NpyAppender, "copy_rows", 2)  # several chunks
    array.finish()
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), data)
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]


def test_appender_rejects_a_wrong_row_shape(tmp_path: Path) -> None:
    array = NpyAppender(tmp_path / "a.npy", 3)
    with pytest.raises(ValueError, match=r"row 0 has shape \(2, 3\)"):
        array.append(np.zeros((2, 3), np.uint8))
    array.discard()
    assert not list(tmp_path.iterdir())


def test_npy_header_length_does_not_depend_on_the_count() -> None:
    assert len(npy_header(0, 256)) == len(npy_header(10**15, 256))


def _fill(writer: DatasetWriter, n_patients: int = 10) -> None:
    for p in range(n_patients):
        for k in range(2):
            image = np.full((8, 8), p * 10 + k, np.uint8)
            writer.add({"sample_id": f"p{p}_{k}", "patient_id": f"p{p}", "label": p % 2,
                        "source_file": f"/raw/p{p}_{k}.png", "extra": k},
                       {1: image, 2: image[::2, ::2]})


def test_writer_publishes_aligned_outputs(tmp_path: Path) -> None:
    out = outputs(tmp_path)
    with DatasetWriter(out, {1: 8, 2: 4}, dataset="x") as writer:
        _fill(writer)
        writer.reject("/raw/bad.png", "unreadable image file", "OSError: truncated")
        manifest = writer.finish(columns=["extra"], splits=SPLITS, selection=lambda m: {"n": len(m)})
    on_disk = pd.read_csv(out["manifest"])
    assert list(on_disk.columns) == [*MANIFEST_FIRST, "extra"]
    assert on_disk["sample_id"].tolist() == manifest["sample_id"].tolist()
    images = np.load(out["images_s1"])
    for i, sample in enumerate(on_disk["sample_id"]):  # row i is sample i
        p, k = sample[1:].split("_")
        assert images[i, 0, 0] == int(p) * 10 + int(k)
    assert np.load(out["images_s2"]).shape == (20, 4, 4)
    assert (on_disk.groupby("patient_id")["split"].nunique() == 1).all()
    rejects = pd.read_csv(out["rejects"])
    assert list(rejects.columns) == list(REJECT_COLUMNS) and rejects["detail"][0] == "OSError: truncated"
    selection = json.loads(Path(out["selection"]).read_text())
    assert selection["n"] == 20 and selection["kept"] == 20 and selection["rejected"] == 1
    assert selection["rejected_by_reason"] == {"unreadable image file": 1}
    assert sum(s["samples"] for s in selection["split_counts"].values()) == 20


def test_rejects_csv_has_its_header_when_empty(tmp_path: Path) -> None:
    out = outputs(tmp_path, (1,))
    with DatasetWriter(out, {1: 8}, dataset="x") as writer:
        writer.add({"sample_id": "a", "patient_id": "p", "label": 1, "source_file": "f"},
                   {1: np.zeros((8, 8), np.uint8)})
        writer.finish(columns=[], splits=SPLITS, selection={})
    assert Path(out["rejects"]).read_text() == "source_file,reason,detail\n"


def test_failure_publishes_nothing(tmp_path: Path) -> None:
    out = outputs(tmp_path)
    with pytest.raises(FrugalmedError, match=r"datasets\.x\.max_reject_fraction = 0\.1.*unreadable"):
        with DatasetWriter(out, {1: 8, 2: 4}, dataset="x") as writer:
            _fill(writer, 2)
            for i in range(3):
                writer.reject(f"/raw/bad{i}.png", "unreadable image file")
            writer.check_reject_fraction(3, 7, 0.1)
    assert not list(tmp_path.iterdir())  # no array, no partial file, no manifest


def test_a_killed_runs_partial_files_are_cleaned(tmp_path: Path) -> None:
    stale = tmp_path / ".images_s1.npy.abc.partial"
    stale.write_bytes(b"x" * 100)
    NpyAppender(tmp_path / "images_s1.npy", 2).discard()
    assert not stale.exists()


def test_given_splits_are_used_exactly(tmp_path: Path) -> None:
    out = outputs(tmp_path, (1,))
    given = {f"p{p}": ("train", "val", "test")[p % 3] for p in range(9)}
    with DatasetWriter(out, {1: 8}, dataset="x") as writer:
        for p, split in given.items():
            writer.add({"sample_id": p, "patient_id": p, "label": int(p[1:]) % 2, "source_file": p,
                        "split": split}, {1: np.zeros((8, 8), np.uint8)})
        manifest = writer.finish(columns=[], splits=SPLITS, selection={}, given_splits=True)
    assert dict(zip(manifest["patient_id"], manifest["split"])) == given


def test_a_patient_in_two_given_splits_is_named() -> None:
    with pytest.raises(FrugalmedError, match="patient 'p7' is in splits \\['test', 'train'\\]"):
        check_given_splits(pd.Series(["p1", "p7", "p7"]), pd.Series(["val", "train", "test"]), "t")
    with pytest.raises(FrugalmedError, match="'training'"):
        check_given_splits(pd.Series(["p1"]), pd.Series(["training"]), "t")


def _square(x: int) -> int:
    return x * x


@pytest.mark.parametrize("workers", [1, 2])
def test_ordered_map_keeps_the_input_order(workers: int) -> None:
    assert list(ordered_map(_square, range(30), workers, in_flight=2)) == [x * x for x in range(30)]
