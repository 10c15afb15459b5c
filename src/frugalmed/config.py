"""Checks on the study config that JSON schema cannot express.

The schema (config/schema.yaml) fixes types, enums and defaults; this module checks how the
keys relate to each other, so a wrong study fails before any job runs, naming the key.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

from frugalmed.errors import ConfigError
from frugalmed.train.settings import SETTING_NAMES

# The training settings, defined once in frugalmed.train.settings (torch-free).
SETTINGS = SETTING_NAMES


def check_schema(config: Mapping[str, Any], schema_path: str | Path) -> None:
    """Validate against the JSON schema, raising ConfigError that names the offending key.

    Snakemake's own validate() fills in the defaults; this runs first so the message a user
    sees says `experiments.main.settings` rather than a schema path.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ConfigError(key, error.message + _schema_hint(error))


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


def check_config(config: Mapping[str, Any]) -> None:
    """Raise ConfigError for the first inconsistency found."""
    _check_splits(config.get("splits", {}))
    _check_scales(config["datasets"])
    _check_experiments(config)
    _check_pretrained(config.get("train", {}).get("pretrained", False))


def _check_splits(splits: Mapping[str, Any]) -> None:
    fractions = [splits.get(k, d) for k, d in (("train", 0.6), ("val", 0.2), ("test", 0.2))]
    total = sum(fractions)
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ConfigError("splits", f"train + val + test must sum to 1, got {total:g}")


def _check_scales(datasets: Mapping[str, Any]) -> None:
    rsna = datasets["rsna"]
    size = rsna.get("image_size", 256)
    for scale in rsna.get("scales", [1]):
        if size % scale:
            raise ConfigError(
                "datasets.rsna.scales",
                f"image_size {size} is not divisible by scale {scale}",
            )


def _check_experiments(config: Mapping[str, Any]) -> None:
    models = config["models"]
    rsna_scales = set(config["datasets"]["rsna"].get("scales", [1]))
    for name, exp in config["experiments"].items():
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
                allowed = rsna_scales if dataset == "rsna" else {1}
                if scale not in allowed:
                    raise ConfigError(
                        f"experiments.{name}.scales",
                        f"scale {scale} is not available for {dataset} "
                        f"(available: {sorted(allowed)}; RSNA scales come from datasets.rsna.scales)",
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
