"""Checks on the study config that JSON schema cannot express, and what the datasets mean.

The schema (config/schema.yaml) fixes types, enums and defaults; this module checks how the
keys relate to each other, so a wrong study fails before any job runs, naming the key. It also
answers, for every stage, the questions about a dataset that depend on more than one key:
its kind (`dataset_kind`), its scales (`dataset_scales`), its grouping columns
(`confound_columns`).

Order of use (the Snakefile): prepare_datasets -> check_schema -> drop_null_experiments ->
Snakemake's validate (defaults) -> check_config -> fill_confound_columns.
"""

from __future__ import annotations

import copy
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

from frugalmed.errors import ConfigError
from frugalmed.train.settings import SETTING_NAMES

# The training settings, defined once in frugalmed.train.settings (torch-free).
SETTINGS = SETTING_NAMES

KINDS = ("rsna", "lidc", "table")
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
#: Grouping columns (site, scanner) of each kind when `confound_columns` is not set; a table
#: dataset gets site_id only when its labels file has that column.
DEFAULT_CONFOUND_COLUMNS: dict[str, list[str]] = {
    "rsna": ["site_id", "machine_id"], "lidc": [], "table": ["site_id"],
}
#: Manifest columns a confound column of each kind may name (table: also the labels columns).
KIND_COLUMNS: dict[str, tuple[str, ...]] = {
    "rsna": ("laterality", "view", "site_id", "machine_id", "density", "implant", "biopsy",
             "invasive", "difficult_negative_case", "photometric", "transfer_syntax",
             "reduced_decode"),
    "lidc": ("scan_id", "nodule_id", "n_raters", "n_annotations", "source_series", "study_uid",
             "pixel_spacing_mm"),
    "table": ("image_format", "photometric", "transfer_syntax", "reduced_decode", "frames"),
}


# --------------------------------------------------------------------------- datasets


def dataset_kind(name: str, dataset: Mapping[str, Any]) -> str:
    """rsna | lidc | table: `kind`, else the name (a dataset named rsna or lidc is that kind)."""
    return str(dataset.get("kind") or name)


def prepare_datasets(config: dict[str, Any]) -> None:
    """Before validation: drop datasets set to null, check names, fill `kind` and path defaults.

    `kind` defaults to the name for `rsna` and `lidc`; every other dataset must say its kind.
    `raw_dir` defaults to resources/{name} for the kinds that can fetch or generate their data;
    a table's `labels` defaults to {raw_dir}/labels.csv.
    """
    datasets = config.get("datasets")
    if not isinstance(datasets, dict):
        raise ConfigError("datasets", "must map dataset names to their settings")
    for name in [name for name, block in datasets.items() if block is None]:
        del datasets[name]  # how an override file drops a dataset of the default config
    if not datasets:
        raise ConfigError("datasets", "no dataset is configured")
    for name, block in datasets.items():
        if not NAME_PATTERN.fullmatch(str(name)):
            raise ConfigError(f"datasets.{name}", "dataset names are lower case letters, digits and "
                              "_, starting with a letter ([a-z][a-z0-9_]*), e.g. mycohort or lidc_r3")
        if not isinstance(block, dict):
            continue  # the schema names the problem
        if "kind" not in block:
            if name not in ("rsna", "lidc"):
                raise ConfigError(f"datasets.{name}.kind", "missing: say which kind of dataset this "
                                  f"is (one of {list(KINDS)}; only rsna and lidc default to their name)")
            block["kind"] = name
        if block["kind"] in ("rsna", "lidc"):
            block.setdefault("raw_dir", f"resources/{name}")
        if block["kind"] == "table" and isinstance(block.get("raw_dir"), str):
            block.setdefault("labels", os.path.join(block["raw_dir"], "labels.csv"))
    _inherit_raw_settings(datasets)


def _inherit_raw_settings(datasets: Mapping[str, Any]) -> None:
    """A dataset sharing another's raw_dir (lidc_r3 reading lidc's scans) takes that dataset's
    `source` and `synthetic` unless it sets them: one rule fills a folder."""
    owners: dict[str, Mapping[str, Any]] = {}
    for block in datasets.values():
        if not isinstance(block, dict) or not isinstance(block.get("raw_dir"), str):
            continue
        owner = owners.setdefault(os.path.normpath(block["raw_dir"]), block)
        if owner is not block and owner.get("kind") == block.get("kind"):
            for key in ("source", "synthetic"):
                if key in owner and key not in block:
                    block[key] = copy.deepcopy(owner[key])


def dataset_scales(name: str, dataset: Mapping[str, Any]) -> list[int]:
    """The scales a dataset's preprocessing writes: `scales` (rsna, table) or [1] (lidc)."""
    if dataset_kind(name, dataset) == "lidc":
        return [1]
    default = [1, 2, 4, 8] if dataset_kind(name, dataset) == "rsna" else [1]
    return [int(s) for s in dataset.get("scales", default)]


def confound_columns(config: Mapping[str, Any], name: str) -> list[str]:
    """The manifest columns that group dataset `name`'s samples (site, scanner), for the
    confound report and per-group test AUC: `confound_columns` when set, else the kind's
    default (table: site_id when its labels file has that column)."""
    dataset = config["datasets"][name]
    if dataset.get("confound_columns") is not None:
        return [str(c) for c in dataset["confound_columns"]]
    kind = dataset_kind(name, dataset)
    if kind == "table":
        from frugalmed.table.labels import label_columns

        return ["site_id"] if "site_id" in label_columns(dataset["labels"]) else []
    return list(DEFAULT_CONFOUND_COLUMNS[kind])


def fill_confound_columns(config: dict[str, Any]) -> None:
    """Write every dataset's effective confound_columns into the config (one truth for all)."""
    for name, dataset in config["datasets"].items():
        dataset["confound_columns"] = confound_columns(config, name)


# --------------------------------------------------------------------------- schema


def check_schema(config: Mapping[str, Any], schema_path: str | Path) -> None:
    """Validate against the JSON schema, raising ConfigError that names the offending key.

    Snakemake's own validate() fills in the defaults; this runs first so the message a user
    sees says `experiments.main.settings` rather than a schema path. Datasets are validated
    with their kind filled in (prepare_datasets on a copy), each kind against its own keys.
    """
    config = copy.deepcopy(dict(config))
    prepare_datasets(config)
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return
    path = [str(p) for p in error.absolute_path]
    message = error.message
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        if extra:
            path.append(extra[0])
            kind = error.instance.get("kind") if path[:1] == ["datasets"] else None
            message = (f"unknown key{f' for kind {kind}' if kind else ''}; known: "
                       f"{sorted(allowed)}")
    raise ConfigError(".".join(path) or "(top level)", message + _schema_hint(error))


# Words YAML 1.1 reads as booleans when unquoted; quoted, they are text.
YAML_BOOLEAN_WORDS = {"yes", "no", "true", "false", "on", "off", "y", "n"}


def yaml_float(value: float) -> str:
    """`value` written so that YAML 1.1 (PyYAML, Snakemake's loader) reads a float: 1.0e-5.
    (`1e-5` is text there: a float needs a dot, and a sign on its exponent.)"""
    mantissa, exponent = f"{value:e}".split("e")
    mantissa = mantissa.rstrip("0")
    mantissa += "0" if mantissa.endswith(".") else ""
    return f"{mantissa}e{int(exponent):+d}"


def _schema_hint(error: jsonschema.ValidationError) -> str:
    """What to write instead, for the mistakes YAML and JSON schema make easy."""
    value, wanted = error.instance, error.validator_value
    if error.validator == "type":
        types = [wanted] if isinstance(wanted, str) else list(wanted)
        if isinstance(value, str) and {"number", "integer"} & set(types):
            try:
                number = float(value)
            except ValueError:
                return ""
            return (f" (YAML reads {value} as text: a float needs a dot and a signed exponent; "
                    f"write {yaml_float(number)})")
        if isinstance(value, str) and "boolean" in types and value.lower() in YAML_BOOLEAN_WORDS:
            return " (write true or false, without quotes)"
    if error.validator == "minimum":
        return f"; write a value >= {wanted}"
    if error.validator == "exclusiveMinimum":
        return f"; write a value > {wanted}"
    return ""


def drop_null_experiments(config: dict[str, Any]) -> None:
    """Remove experiments set to null: how an override file drops one of the default config's
    (config files merge key by key, so a key cannot be deleted otherwise)."""
    experiments = config["experiments"]
    for name in [name for name, exp in experiments.items() if exp is None]:
        del experiments[name]
    if not experiments:
        raise ConfigError("experiments", "every experiment is null: nothing to run")


# --------------------------------------------------------------------------- semantics


def check_config(config: Mapping[str, Any]) -> None:
    """Raise ConfigError for the first inconsistency found."""
    _check_splits(config.get("splits", {}))
    for name, dataset in config["datasets"].items():
        kind = dataset_kind(name, dataset)
        if kind in ("rsna", "table"):
            _check_scales(name, dataset)
        if kind == "lidc":
            _check_hu_window(name, dataset)
        if kind == "table":
            _check_table(name, dataset)
        _check_confound_columns(config, name)
    _check_raw_dirs(config["datasets"])
    _check_experiments(config)
    _check_pretrained(config.get("train", {}).get("pretrained", False))


def _check_splits(splits: Mapping[str, Any]) -> None:
    fractions = [splits.get(k, d) for k, d in (("train", 0.6), ("val", 0.2), ("test", 0.2))]
    total = sum(fractions)
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ConfigError("splits", f"train + val + test must sum to 1, got {total:g}")


def _check_scales(name: str, dataset: Mapping[str, Any]) -> None:
    size = dataset.get("image_size", 256)
    for scale in dataset_scales(name, dataset):
        if size % scale:
            raise ConfigError(f"datasets.{name}.scales",
                              f"image_size {size} is not divisible by scale {scale}")


def _check_hu_window(name: str, dataset: Mapping[str, Any]) -> None:
    low, high = dataset.get("hu_window", [-1000, 400])
    if not low < high:
        raise ConfigError(f"datasets.{name}.hu_window",
                          f"[{low:g}, {high:g}] must be [low, high] with low < high, e.g. "
                          "[-1000, 400] (the lung window); reversed, every patch would be inverted")


def _check_table(name: str, dataset: Mapping[str, Any]) -> None:
    from frugalmed.table.labels import check_labels, read_labels

    raw_dir = dataset["raw_dir"]
    if not os.path.isdir(raw_dir):
        raise ConfigError(f"datasets.{name}.raw_dir",
                          f"{raw_dir} is not a folder (it holds the images labels.csv names)")
    labels = dataset.get("labels") or os.path.join(raw_dir, "labels.csv")
    table = read_labels(labels, name)
    check_labels(table, dataset.get("positive", 1), dataset.get("negative"), name, labels)


def _check_confound_columns(config: Mapping[str, Any], name: str) -> None:
    dataset = config["datasets"][name]
    wanted = dataset.get("confound_columns")
    if not wanted:
        return
    kind = dataset_kind(name, dataset)
    known = set(KIND_COLUMNS[kind])
    if kind == "table":
        from frugalmed.table.labels import label_columns

        known |= set(label_columns(dataset["labels"])) - {"file", "patient_id", "label", "split"}
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise ConfigError(f"datasets.{name}.confound_columns",
                          f"{unknown} are not columns of this {kind} dataset's manifest "
                          f"(available: {sorted(known)})")


def _check_raw_dirs(datasets: Mapping[str, Any]) -> None:
    """Datasets may share a raw_dir (lidc and lidc_r3 reading the same scans) only when they
    are of one kind and agree on where the data comes from (one rule fills the folder)."""
    owners: dict[str, str] = {}
    for name, dataset in datasets.items():
        raw = os.path.normpath(str(dataset.get("raw_dir", f"resources/{name}")))
        if raw not in owners:
            owners[raw] = name
            continue
        first = datasets[owners[raw]]
        same = [dataset_kind(name, dataset) == dataset_kind(owners[raw], first),
                dataset.get("source", "synthetic") == first.get("source", "synthetic"),
                dataset.get("synthetic") == first.get("synthetic")]
        if not all(same):
            raise ConfigError(f"datasets.{name}.raw_dir",
                              f"{raw} is also the raw_dir of dataset {owners[raw]}: datasets may share "
                              "a raw_dir only with the same kind, source and synthetic settings")


def _check_experiments(config: Mapping[str, Any]) -> None:
    models = config["models"]
    datasets = config["datasets"]
    for name, exp in config["experiments"].items():
        for dataset in exp["datasets"]:
            if dataset not in datasets:
                raise ConfigError(f"experiments.{name}.datasets",
                                  f"unknown dataset '{dataset}'; define it under 'datasets' "
                                  f"(known: {sorted(datasets)})")
        for model in exp["models"]:
            if model not in models:
                raise ConfigError(
                    f"experiments.{name}.models",
                    f"unknown model '{model}'; define it under 'models' (known: {sorted(models)})",
                )
        for setting in exp["settings"]:
            if setting not in SETTINGS:
                raise ConfigError(
                    f"experiments.{name}.settings",
                    f"unknown setting '{setting}' (known: {list(SETTINGS)})",
                )
        for scale in exp.get("scales", [1]):
            for dataset in exp["datasets"]:
                allowed = set(dataset_scales(dataset, datasets[dataset]))
                if scale not in allowed:
                    kind = dataset_kind(dataset, datasets[dataset])
                    source = ("LIDC patches have scale 1 only" if kind == "lidc"
                              else f"they come from datasets.{dataset}.scales")
                    raise ConfigError(
                        f"experiments.{name}.scales",
                        f"scale {scale} is not available for {dataset} "
                        f"(available: {sorted(allowed)}; {source})",
                    )


def _check_pretrained(pretrained: bool | str) -> None:
    """train.pretrained is true, false or the path of a weights file that exists (relative to
    the working directory). A quoted "yes" is text, and would be taken for a file name."""
    if not isinstance(pretrained, str):
        return
    if pretrained.strip().lower() in YAML_BOOLEAN_WORDS:
        raise ConfigError(
            "train.pretrained",
            f"'{pretrained}' is text, not a yes/no: write true (timm's hub weights, needs "
            "network) or false, without quotes, or the path of a local weights file",
        )
    if not Path(pretrained).is_file():
        raise ConfigError(
            "train.pretrained",
            f"weights file '{pretrained}' does not exist (relative paths start at the working "
            f"directory {Path.cwd()}): give the path of a saved state dict, or true / false",
        )
