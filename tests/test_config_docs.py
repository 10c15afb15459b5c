"""Every config key is documented where a user looks for it: the schema (a description per
key), config/README.md (the catalog convention; its key table rendered from the schema, so it
cannot drift), a comment in config/config.yaml; and the workflow catalog's metadata file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from frugalmed.config_docs import END, START, iter_keys, render, updated_readme

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())


@pytest.mark.parametrize("section", sorted(SCHEMA["properties"]))
def test_every_schema_key_has_a_description(section: str) -> None:
    """Generic over the whole schema (nested properties and the schemas of user-named keys such
    as models.<model>), one test per top-level section so a gap points at its owner."""
    node = SCHEMA["properties"][section]
    keys = [(section, node, False)] + [(f"{section}.{k}", s, r) for k, s, r in iter_keys(node)]
    missing = [key for key, sub, _ in keys if not str(sub.get("description", "")).strip()]
    assert not missing, f"schema keys without a description: {missing}"


def test_key_walk_reaches_nested_and_user_named_keys() -> None:
    keys = {key for key, _, _ in iter_keys(SCHEMA)}
    assert {"train.lr", "models.<model>.arch", "experiments.<experiment>.seeds",
            "splits.seed"} <= keys, sorted(keys)  # fmt: skip


def test_config_readme_key_table_is_rendered_from_the_schema() -> None:
    readme = (REPO / "config" / "README.md").read_text()
    assert START in readme and END in readme
    assert updated_readme(readme, SCHEMA) == readme, (
        "config/README.md's key table is out of date: run `python -m frugalmed.config_docs`"
    )
    for key, _, _ in iter_keys(SCHEMA):
        assert f"`{key}`" in readme


def test_render_changes_with_the_schema() -> None:
    """The freshness check above can fail: a new key changes the rendered table."""
    changed = yaml.safe_load(yaml.safe_dump(SCHEMA))
    changed["properties"]["train"]["properties"]["new_key"] = {"type": "integer",
                                                              "description": "x"}
    assert "`train.new_key`" in render(changed) and "`train.new_key`" not in render(SCHEMA)


def _uncommented_keys(text: str) -> list[str]:
    """Key paths of config.yaml lines that define a key with no comment on the line or on the
    full-line comment just above. Keys inside a flow mapping ({a: 1}) share their line's."""
    missing, stack = [], []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z0-9_]+):", line)
        if not match:
            continue
        indent = len(match.group(1))
        stack = [(d, k) for d, k in stack if d < indent] + [(indent, match.group(2))]
        commented = "#" in line.split(":", 1)[1] or (i > 0 and lines[i - 1].strip().startswith("#"))
        if not commented:
            missing.append(".".join(k for _, k in stack))
    return missing


def test_every_key_of_the_default_config_is_commented() -> None:
    text = (REPO / "config" / "config.yaml").read_text()
    assert not _uncommented_keys(text), _uncommented_keys(text)
    assert _uncommented_keys("a:\n  b: 1\n  c: 2  # c\n") == ["a", "a.b"]


def test_workflow_catalog_metadata() -> None:
    meta = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())
    usage = meta["usage"]
    assert isinstance(usage["mandatory-flags"]["desc"], str)
    deployment = usage["software-stack-deployment"]
    assert deployment["conda"] is True  # envs/*.yaml for every rule (tests/test_envs.py)
    assert deployment["report"] is True  # `snakemake --report` (workflow/report/)
    assert (REPO / "config" / "README.md").is_file() and (REPO / "LICENSE").is_file()
