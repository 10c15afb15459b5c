"""Datasets named by the user in the config: kinds and their own keys, names, defaults, raw_dir
sharing, experiments and scales per dataset, hu_window, confound columns -- each wrong value
fails naming its key; the schema documents every dataset key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from frugalmed.config import (
    check_config,
    check_schema,
    confound_columns,
    dataset_scales,
    drop_null_experiments,
    fill_confound_columns,
    prepare_datasets,
)
from frugalmed.errors import ConfigError


@pytest.fixture
def demo(repo: Path) -> dict:
    return yaml.safe_load((repo / "config/config.yaml").read_text())


def full(config: dict, repo: Path) -> dict:
    """What the Snakefile does with a config before the rules see it."""
    config = copy.deepcopy(config)
    prepare_datasets(config)
    check_schema(config, repo / "config/schema.yaml")
    drop_null_experiments(config)
    validate(config, str(repo / "config/schema.yaml"), set_default=True)
    check_config(config)
    fill_confound_columns(config)
    return config


def labels_file(folder: Path, site: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    header = "file,patient_id,label" + (",site_id,scanner" if site else "")
    rows = [f"a{i}.png,p{i},{i % 2}" + (f",s{i % 2},m1" if site else "") for i in range(4)]
    (folder / "labels.csv").write_text("\n".join([header, *rows]) + "\n")
    return folder / "labels.csv"


def test_demo_datasets_get_their_kind_and_defaults(demo, repo) -> None:
    config = full(demo, repo)
    rsna, lidc = config["datasets"]["rsna"], config["datasets"]["lidc"]
    assert (rsna["kind"], lidc["kind"]) == ("rsna", "lidc")
    assert rsna["raw_dir"] == "resources/rsna" and rsna["crop_breast"] is True
    assert lidc["hu_window"] == [-1000, 400]
    assert rsna["confound_columns"] == ["site_id", "machine_id"] and lidc["confound_columns"] == []


def test_a_table_and_a_second_lidc_side_by_side(demo, repo, tmp_path) -> None:
    labels_file(tmp_path / "cohort")
    demo["datasets"]["lidc_r3"] = {"kind": "lidc", "raw_dir": "resources/lidc", "min_raters": 3}
    demo["datasets"]["mycohort"] = {"kind": "table", "raw_dir": str(tmp_path / "cohort"),
                                    "scales": [1, 2], "image_size": 64}
    demo["experiments"]["main"]["datasets"] = ["rsna", "lidc", "lidc_r3", "mycohort"]
    demo["experiments"]["main"]["scales"] = [1]
    config = full(demo, repo)
    r3, mine = config["datasets"]["lidc_r3"], config["datasets"]["mycohort"]
    # sharing lidc's raw_dir, lidc_r3 takes its source and synthetic settings (one job fills it)
    assert r3["synthetic"] == config["datasets"]["lidc"]["synthetic"] and r3["min_raters"] == 3
    assert mine["labels"] == str(tmp_path / "cohort" / "labels.csv") and mine["frame"] == "reject"
    assert confound_columns(config, "mycohort") == ["site_id"]
    assert dataset_scales("mycohort", mine) == [1, 2] and dataset_scales("lidc_r3", r3) == [1]


def test_table_without_site_column_has_no_default_confound(demo, repo, tmp_path) -> None:
    labels_file(tmp_path / "c", site=False)
    demo["datasets"]["c"] = {"kind": "table", "raw_dir": str(tmp_path / "c")}
    assert full(demo, repo)["datasets"]["c"]["confound_columns"] == []


def test_a_dataset_set_to_null_is_dropped(demo, repo, tmp_path) -> None:
    labels_file(tmp_path / "c")
    demo["datasets"].update(rsna=None, lidc=None, c={"kind": "table", "raw_dir": str(tmp_path / "c")})
    demo["experiments"] = {"main": {"datasets": ["c"], "models": ["mlp"], "settings": ["baseline"],
                                    "seeds": [1]}}
    assert set(full(demo, repo)["datasets"]) == {"c"}


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [
        ({"MyData": {"kind": "table", "raw_dir": "x"}}, "datasets.MyData", r"\[a-z\]\[a-z0-9_\]\*"),
        ({"cohort": {"raw_dir": "x"}}, "datasets.cohort.kind", "missing"),
        ({"cohort": {"kind": "dicomdir", "raw_dir": "x"}}, "datasets.cohort.kind", "dicomdir"),
        ({"cohort": {"kind": "table"}}, "datasets.cohort", "'raw_dir' is a required property"),
        ({"cohort": {"kind": "table", "raw_dir": "x", "max_age": 50}}, "datasets.cohort.max_age",
         "unknown key for kind table"),
        ({"lidc": {"image_size": 64}}, "datasets.lidc.image_size", "unknown key for kind lidc"),
        ({"cohort": {"kind": "table", "raw_dir": "x", "frame": "all"}}, "datasets.cohort.frame", "'all'"),
        ({"cohort": {"kind": "table", "raw_dir": "x", "positive": True}}, "datasets.cohort.positive",
         "not of type"),
        ({"rsna": {"confound_columns": "site_id"}}, "datasets.rsna.confound_columns", "not of type"),
    ],
)
def test_schema_errors_name_the_dataset_key(demo, repo, change, key, message) -> None:
    for name, block in change.items():
        demo["datasets"][name] = {**demo["datasets"].get(name, {}), **block}
    with pytest.raises(ConfigError, match=rf"'{key}'.*{message}"):
        check_schema(demo, repo / "config/schema.yaml")


def test_hu_window_must_be_low_then_high(demo) -> None:
    """The #17 case: a reversed window silently inverted every patch."""
    demo["datasets"]["lidc"]["hu_window"] = [400, -1000]
    with pytest.raises(ConfigError, match=r"'datasets\.lidc\.hu_window'.*low < high"):
        check_config(demo)
    demo["datasets"]["lidc"]["hu_window"] = [-1000, -1000]
    with pytest.raises(ConfigError, match="hu_window"):
        check_config(demo)


@pytest.mark.parametrize(
    ("mutate", "key", "message"),
    [
        (lambda c: c["experiments"]["main"].update(datasets=["rsna", "lidc_r3"]),
         "experiments.main.datasets", "unknown dataset 'lidc_r3'"),
        (lambda c: c["datasets"]["rsna"].update(image_size=63),
         "datasets.rsna.scales", "image_size 63 is not divisible by scale 2"),
        (lambda c: c["datasets"]["rsna"].update(confound_columns=["site_id", "hospital"]),
         "datasets.rsna.confound_columns", "hospital"),
        (lambda c: c["datasets"].update(other={"kind": "rsna", "raw_dir": "resources/lidc"}),
         "datasets.other.raw_dir", "also the raw_dir of dataset lidc"),
        (lambda c: c["datasets"].update(lidc2={"kind": "lidc", "raw_dir": "resources/lidc",
                                               "source": "local"}),
         "datasets.lidc2.raw_dir", "same kind, source and synthetic"),
    ],
)
def test_semantic_errors_name_the_dataset_key(demo, mutate, key, message) -> None:
    mutate(demo)
    prepare_datasets(demo)
    with pytest.raises(ConfigError, match=rf"'{key}'.*({message})"):
        check_config(demo)


def test_scales_are_checked_per_dataset(demo, tmp_path) -> None:
    labels_file(tmp_path / "c")
    demo["datasets"]["rsna"]["scales"] = [1, 2, 4]
    demo["datasets"]["c"] = {"kind": "table", "raw_dir": str(tmp_path / "c"), "scales": [1, 2],
                             "image_size": 32}
    demo["experiments"]["downsampling"]["datasets"] = ["rsna", "c"]
    demo["experiments"]["downsampling"]["scales"] = [1, 4]
    prepare_datasets(demo)
    with pytest.raises(ConfigError, match=r"'experiments\.downsampling\.scales'.*scale 4 is not "
                                          r"available for c.*datasets\.c\.scales"):
        check_config(demo)


def test_table_planning_checks_name_the_labels_key(demo, tmp_path) -> None:
    demo["datasets"]["c"] = {"kind": "table", "raw_dir": str(tmp_path)}
    prepare_datasets(demo)
    with pytest.raises(ConfigError, match=r"'datasets\.c\.labels'.*does not exist"):
        check_config(demo)
    (tmp_path / "labels.csv").write_text("file,patient_id,label\na,p,1\nb,q,1\n")
    with pytest.raises(ConfigError, match=r"'datasets\.c\.negative'.*no row"):
        check_config(demo)
    labels_file(tmp_path)
    demo["datasets"]["c"]["confound_columns"] = ["hospital"]
    with pytest.raises(ConfigError, match=r"'datasets\.c\.confound_columns'.*hospital"):
        check_config(demo)
    demo["datasets"]["c"]["confound_columns"] = ["scanner"]  # a labels column
    check_config(demo)


def test_every_dataset_key_in_the_schema_has_a_description(repo) -> None:
    schema = yaml.safe_load((repo / "config/schema.yaml").read_text())

    def walk(node: dict, path: str):
        for key, sub in (node.get("properties") or {}).items():
            yield f"{path}.{key}", sub
            yield from walk(sub, f"{path}.{key}")

    missing = [p for kind in ("rsna", "lidc", "table")
               for p, sub in walk(schema["$defs"][kind], kind) if not sub.get("description")
               and not schema["$defs"].get(sub.get("$ref", "#/$defs/").rsplit("/", 1)[-1], {}).get("description")]
    assert not missing, missing
    assert schema["properties"]["datasets"]["description"]
