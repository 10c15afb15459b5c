"""The key reference of config/README.md, rendered from config/schema.yaml so it cannot drift.

`python -m frugalmed.config_docs` rewrites the part of config/README.md between the markers
below; tests/test_config_docs.py fails when that part differs from what the schema renders.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterator

import yaml

START = "<!-- keys:start (generated from config/schema.yaml by `python -m frugalmed.config_docs`) -->"
END = "<!-- keys:end -->"
# Names a user chooses (map keys) appear as placeholders in key paths.
PLACEHOLDERS = {"models": "<model>", "experiments": "<experiment>"}


def iter_keys(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(dotted key path, schema, required) of every key, depth first, in schema order."""
    required = set(node.get("required") or [])
    for key, sub in (node.get("properties") or {}).items():
        child = f"{path}.{key}" if path else key
        yield child, sub, key in required
        yield from iter_keys(sub, child)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        child = f"{path}.{PLACEHOLDERS.get(path.rsplit('.', 1)[-1], '<name>')}"
        yield child, extra, False
        yield from iter_keys(extra, child)


def _type(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " | ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "")
    kinds = kind if isinstance(kind, list) else [kind]
    text = " or ".join(k for k in kinds if k)
    items = schema.get("items")
    if isinstance(items, dict) and "enum" in items:
        text += " of " + ", ".join(f"`{v}`" for v in items["enum"])
    elif isinstance(items, dict) and items.get("type"):
        text += f" of {items['type']}s"
    return text


def _default(schema: dict[str, Any], required: bool) -> str:
    if "default" not in schema:
        return "required" if required else ""
    value = schema["default"]
    if isinstance(value, dict) and not value:
        return ""
    return f"`{json.dumps(value)}`"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render(schema: dict[str, Any]) -> str:
    """The Markdown table of every key: key, type, default, description."""
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for key, sub, required in iter_keys(schema):
        lines.append(
            f"| `{key}` | {_cell(_type(sub))} | {_cell(_default(sub, required))} | "
            f"{_cell(sub.get('description', ''))} |"
        )
    return "\n".join(lines)


def updated_readme(readme: str, schema: dict[str, Any]) -> str:
    """The README with the part between the markers replaced by the rendered table."""
    head, found, rest = readme.partition(START)
    if not found or END not in rest:
        raise ValueError(f"config/README.md lacks the markers {START!r} ... {END!r}")
    tail = rest.split(END, 1)[1]
    return f"{head}{START}\n{render(schema)}\n{END}{tail}"


def main(repo: Path = Path(__file__).resolve().parents[2]) -> None:
    readme = repo / "config" / "README.md"
    schema = yaml.safe_load((repo / "config" / "schema.yaml").read_text())
    readme.write_text(updated_readme(readme.read_text(), schema))
    print(f"rewrote the key reference in {readme}", file=sys.stderr)


if __name__ == "__main__":
    main()
