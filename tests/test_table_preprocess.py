"""`kind: table` end to end at the package level (the issue's acceptance): a labels file mixing
DICOM CT/MR/CR (MONOCHROME1, JPEG 2000, JPEG lossless, RLE), RGB DICOM, 8- and 16-bit PNG, TIFF
and JPEG, with a missing file, a corrupt file, a bad label and a repeated file preprocesses --
every good row in the manifest, the bad ones in rejects.csv with reasons, patients never in two
splits, a given split column honoured exactly -- and a training run on it writes metrics.json."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from frugalmed.dataset.outputs import MANIFEST_FIRST, dataset_outputs
from frugalmed.errors import ConfigError, FrugalmedError
from frugalmed.table.labels import check_labels, read_labels
from frugalmed.table.preprocess import TableSpec, preprocess_table, process_file
from table_fixtures import DICOM_FILES, build_table_cohort

warnings.filterwarnings("ignore", category=UserWarning, module="pydicom")
SPLITS = {"train": 0.6, "val": 0.2, "test": 0.2, "seed": 0}
SPEC = TableSpec(image_size=32, scales=(1, 2))


def outputs(folder: Path) -> dict[str, str]:
    return {k: str(folder / Path(v).name) for k, v in dataset_outputs("mycohort", SPEC.scales).items()}


def run(cohort, folder: Path, **kwargs):
    args = dict(spec=SPEC, splits=SPLITS, max_reject_fraction=0.5, threads=2, dataset="mycohort")
    args.update(kwargs)
    return preprocess_table(cohort.raw_dir, cohort.labels, outputs(folder), **args)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("table")
    cohort = build_table_cohort(root / "cohort")
    manifest = run(cohort, root / "out")
    return cohort, root / "out", manifest


def _good_rows(cohort) -> pd.DataFrame:
    table = cohort.table
    bad_files = {key.split("#")[0] for key in cohort.bad if "#" not in key}
    bad_patients = {key.split("#")[1] for key in cohort.bad if "#" in key}
    return table[~table["file"].isin(bad_files) & ~table["patient_id"].isin(bad_patients)]


def test_every_good_row_is_in_the_manifest_and_every_bad_one_rejected(built) -> None:
    cohort, out, manifest = built
    good = _good_rows(cohort)
    assert sorted(manifest["file"]) == sorted(good["file"])
    assert len(good) >= 3 * (len(DICOM_FILES) - 2)  # nearly every DICOM kind, three times
    rejects = pd.read_csv(out / "rejects.csv", keep_default_na=False)
    assert list(rejects.columns) == ["source_file", "reason", "detail"]
    raw = str(cohort.raw_dir)
    for key, reason in cohort.bad.items():
        path = f"{raw}/{key.split('#')[0]}"
        assert reason in set(rejects.loc[rejects["source_file"] == path, "reason"]), (key, rejects)
    bad_label = rejects[rejects["reason"].str.startswith("label is neither")]
    assert "label '7'" in bad_label["detail"].iloc[0] and "line" in bad_label["detail"].iloc[0]
    assert len(rejects) == len(cohort.table) - len(manifest)
    selection = json.loads((out / "selection.json").read_text())
    assert selection["kept"] == len(manifest) and selection["rejected"] == len(rejects)
    assert set(selection["formats"]) == {"dicom", "png", "tiff", "jpeg"}


def test_manifest_layout_and_row_alignment(built) -> None:
    cohort, out, manifest = built
    on_disk = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert list(on_disk.columns[:7]) == [*MANIFEST_FIRST, "file", "label_value"]
    assert {"site_id", "age", "image_format", "photometric", "frames"} <= set(on_disk.columns)
    assert on_disk["sample_id"].is_unique
    assert set(on_disk["label"]) == {"0", "1"}
    assert (on_disk["label"] == (on_disk["label_value"] == "1").astype(int).astype(str)).all()
    photometrics = set(on_disk["photometric"])
    assert {"MONOCHROME1", "MONOCHROME2", "RGB", "YBR_RCT", "PALETTE COLOR", "I;16", "RGB;16"} <= photometrics
    syntaxes = set(on_disk["transfer_syntax"])
    for uid in ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.70",
                "1.2.840.10008.1.2.5"):  # J2K lossless, J2K, JPEG lossless SV1, RLE
        assert uid in syntaxes
    images = {s: np.load(out / f"images_s{s}.npy") for s in SPEC.scales}
    assert images[1].shape == (len(manifest), 32, 32) and images[2].shape == (len(manifest), 16, 16)
    for i in (0, len(manifest) // 2, len(manifest) - 1):  # row i is the image of manifest row i
        expected = process_file(on_disk["source_file"][i], SPEC).images
        for s in SPEC.scales:
            np.testing.assert_array_equal(images[s][i], expected[s])
    names = on_disk["file"].str.split("/", n=1).str[1]  # the same file under three sites
    for name, rows in on_disk.groupby(names).groups.items():
        assert len({images[1][i].tobytes() for i in rows}) == 1, name
    rgb = {name: images[1][on_disk.index[names == name][0]]
           for name in ("dicom/SC_rgb.dcm", "dicom/SC_rgb_rle.dcm")}
    np.testing.assert_array_equal(*rgb.values())  # one picture, two transfer syntaxes
    assert len({a.tobytes() for a in images[1]}) >= 12  # the files are not all alike


def test_patients_stay_in_one_split(built) -> None:
    _, _, manifest = built
    assert set(manifest["split"]) == {"train", "val", "test"}
    assert (manifest.groupby("patient_id")["split"].nunique() == 1).all()


def test_a_given_split_column_is_used_exactly(tmp_path: Path) -> None:
    cohort = build_table_cohort(tmp_path / "cohort", with_split=True)
    manifest = run(cohort, tmp_path / "out", threads=1)
    table = cohort.table
    given = dict(zip(zip(table["file"], table["patient_id"]), table["split"]))
    kept = list(zip(manifest["file"], manifest["patient_id"]))
    assert [given[key] for key in kept] == manifest["split"].tolist()
    selection = json.loads((tmp_path / "out" / "selection.json").read_text())
    assert selection["splits_source"] == "given"


def test_a_patient_in_two_given_splits_stops_naming_the_patient(tmp_path: Path) -> None:
    cohort = build_table_cohort(tmp_path / "cohort", with_split=True)
    table = cohort.table.copy()
    first = table["patient_id"].iloc[0]
    twin = table.index[(table["patient_id"] != first)][0]
    table.loc[twin, "patient_id"] = first
    table.loc[twin, "split"] = "test" if table["split"].iloc[0] != "test" else "train"
    table.to_csv(cohort.labels, index=False)
    with pytest.raises(ConfigError, match=f"patient '{first}' is in splits"):
        check_labels(read_labels(cohort.labels, "mycohort"), 1, None, "mycohort", cohort.labels)
    with pytest.raises(FrugalmedError, match=f"patient '{first}'"):
        run(cohort, tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.csv").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [(None, "does not exist"), ("", "is empty"), ("file,patient_id,label\n", "has a header but no rows"),
     ("file,label\na.png,1\n", r"lacks the column\(s\) \['patient_id'\]"),
     ("file,patient_id,label,sample_id\na.png,p,1,x\n", "writes into the manifest itself")],
)
def test_labels_file_problems_name_the_key(tmp_path: Path, text, message: str) -> None:
    labels = tmp_path / "labels.csv"
    if text is not None:
        labels.write_text(text)
    with pytest.raises(ConfigError, match=f"'datasets.mycohort.labels'.*{message}"):
        read_labels(labels, "mycohort")


def test_label_values(tmp_path: Path) -> None:
    table = pd.DataFrame({"file": list("abcd"), "patient_id": list("abcd"),
                          "label": ["malignant", "benign", "benign", "malignant"]})
    assert check_labels(table, "malignant", None, "x", "labels.csv") == "benign"
    with pytest.raises(ConfigError, match="'datasets.x.positive'.*no row"):
        check_labels(table, 1, None, "x", "labels.csv")
    table.loc[0, "label"] = "benighn"
    with pytest.raises(ConfigError, match="'datasets.x.negative'"):
        check_labels(table, "malignant", None, "x", "labels.csv")
    assert check_labels(table, "malignant", "benign", "x", "labels.csv") == "benign"


def test_too_many_bad_rows_fail_and_publish_nothing(built, tmp_path: Path) -> None:
    cohort = built[0]
    with pytest.raises(FrugalmedError, match=r"datasets\.mycohort\.max_reject_fraction"):
        run(cohort, tmp_path / "out", max_reject_fraction=0.01)
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_multi_frame_rows_are_kept_with_frame_middle(built, tmp_path: Path) -> None:
    cohort = built[0]
    manifest = run(cohort, tmp_path / "out", spec=TableSpec(image_size=32, scales=(1, 2), frame="middle"))
    multi = manifest[manifest["file"].str.endswith("emri_small.dcm")]
    assert len(multi) == 3 and (multi["frame"] == 5).all() and (multi["frames"] == 10).all()


@pytest.mark.slow
def test_a_training_run_on_the_table_dataset_writes_metrics(built, tmp_path: Path) -> None:
    """The acceptance's last step: the dataset trains (MLP, 1 epoch, CPU)."""
    from frugalmed.train.run import RunSpec, train_run

    _, out, _ = built
    spec = RunSpec(
        dataset="mycohort", scale=2, model="mlp", setting="baseline", seed=1, arch="mlp",
        manifest=str(out / "manifest.csv"), images=str(out / "images_s2.npy"),
        metrics_path=str(tmp_path / "metrics.json"), epochs_path=str(tmp_path / "epochs.csv"),
        checkpoint_path=str(tmp_path / "ckpt" / "last.pt"), model_kwargs={"hidden_sizes": [32]},
        epochs=1, batch_size=16, lr=1e-3, patience=2,
    )
    train_run(spec)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["dataset"] == "mycohort" and metrics["epochs_run"] == 1
    assert metrics["test_auc"] is None or 0.0 <= metrics["test_auc"] <= 1.0
    assert metrics["train_time_s"] > 0
