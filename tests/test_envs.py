"""The conda environments of envs/*.yaml, validated statically (no conda on the test machine).

What `snakemake --sdm conda` needs from them, and what could go wrong unnoticed until a user
deploys the workflow elsewhere:
- each file parses, uses conda-forge without the `defaults` channel, and has nothing that
  points to a path: Snakemake copies the file to .snakemake/conda/<hash>.yaml before
  `conda env create`, so `-e ..` or `-r requirements.txt` would resolve there (the old
  `pip: [-e ..]` bug);
- every version bound agrees with pyproject.toml, and envs/frugalmed.yaml holds all of
  pyproject's dependencies and its [data] extra (it doubles as the environment to run from);
- each rule with a script names an environment, and that environment provides every
  third-party module the script imports, through the frugalmed modules it reaches (imports
  inside functions included), plus the programs and decoder plugins it needs at run time.
Not checked here: that conda-forge can solve the environments (no conda/network in tests).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name, where they differ
IMPORT_NAMES = {  # top-level import -> distribution, where they differ
    "PIL": "pillow", "skimage": "scikit-image", "sklearn": "scikit-learn", "yaml": "pyyaml",
    "gdcm": "python-gdcm", "idc_index": "idc-index", "tcia_utils": "tcia-utils",
    "pynvml": "nvidia-ml-py", "png": "pypng",
}  # fmt: skip
# Needed at run time though never imported: programs run as subprocesses, pydicom's plugins.
RUNTIME_NEEDS = {
    "download_rsna.py": {"kaggle"},
    "preprocess_rsna.py": {"pylibjpeg", "pylibjpeg-openjpeg", "pylibjpeg-libjpeg", "python-gdcm"},
}
# Packages an environment may hold beyond pyproject's: the interpreter, the installer, C libraries.
NOT_PYTHON_PACKAGES = {"python", "pip", "openjpeg"}
PATHLIKE = re.compile(r"^(-e|--editable|-r|--requirement|-c|--constraint)\b|^[./~]|^file:|\.\./|\./")


def _env(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _entries(env: dict) -> tuple[list[str], list[str]]:
    """(conda entries, pip entries) of an environment file."""
    conda, pip = [], []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            assert set(dep) == {"pip"}, f"unexpected mapping in dependencies: {dep}"
            pip += [str(x) for x in dep["pip"]]
        else:
            conda.append(str(dep))
    return conda, pip


def _conda_requirement(entry: str) -> tuple[str, SpecifierSet]:
    """A conda MatchSpec of the simple kind used here ('name>=1,<2', 'name=3.11') as pip's."""
    match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", entry.strip())
    assert match, entry
    name, spec = match.groups()
    if re.fullmatch(r"=[^=<>!].*", spec):  # conda's `=3.11` means 3.11.*
        spec = f"=={spec[1:]}.*"
    return canonicalize_name(CONDA_NAMES.get(name, name)), SpecifierSet(spec)


def env_packages(path: Path) -> dict[str, SpecifierSet]:
    """Every package of an environment file, by PyPI name, with its version bounds."""
    conda, pip = _entries(_env(path))
    packages = dict(_conda_requirement(e) for e in conda)
    for entry in pip:
        req = Requirement(entry)
        packages[canonicalize_name(req.name)] = req.specifier
    return packages


@cache
def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _requirements(entries: list[str]) -> dict[str, SpecifierSet]:
    return {canonicalize_name(Requirement(e).name): Requirement(e).specifier for e in entries}


def runtime_requirements() -> dict[str, SpecifierSet]:
    project = pyproject()
    return _requirements(project["dependencies"] + project["optional-dependencies"]["data"])


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_file_is_self_contained(path: Path) -> None:
    env = _env(path)
    assert env.get("name"), f"{path.name}: no name"
    channels = env.get("channels", [])
    assert channels and channels[0] == "conda-forge" and "nodefaults" in channels, channels
    assert "defaults" not in channels, f"{path.name}: the defaults channel needs a licence"
    conda, pip = _entries(env)
    for entry in conda + pip:
        assert not PATHLIKE.search(entry.strip()), (
            f"{path.name}: '{entry}' names a path; Snakemake creates the environment from a copy "
            "of this file in .snakemake/conda/, where relative paths point nowhere"
        )
    if pip:
        assert any(_conda_requirement(e)[0] == "pip" for e in conda), f"{path.name}: pip missing"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_agree_with_pyproject(path: Path) -> None:
    wanted = runtime_requirements()
    for name, spec in env_packages(path).items():
        if name == "python":
            requires = SpecifierSet(pyproject()["requires-python"])
            assert all(requires.contains(v) for v in ("3.11.0", "3.11.9") if spec.contains(v))
            assert not spec.contains("3.10.14"), f"{path.name}: python {spec} allows 3.10"
            assert spec.contains("3.11.0"), f"{path.name}: python {spec} excludes 3.11"
            continue
        if name in NOT_PYTHON_PACKAGES:
            continue
        assert name in wanted, (
            f"{path.name}: {name} is not a dependency in pyproject.toml; add it there first"
        )
        assert spec == wanted[name], (
            f"{path.name}: {name}{spec} but pyproject.toml says {name}{wanted[name]}"
        )


def test_main_env_holds_every_pyproject_dependency() -> None:
    missing = set(runtime_requirements()) - set(env_packages(REPO / "envs" / "frugalmed.yaml"))
    assert not missing, f"envs/frugalmed.yaml lacks pyproject dependencies: {sorted(missing)}"


def rule_envs_and_scripts() -> dict[str, tuple[str | None, str | None]]:
    """rule name -> (conda env path, script path), both relative to the repository."""
    found = {}
    for path in RULE_FILES:
        text = path.read_text()
        # `rule name:`, or an anonymous `rule:` named by `name: dataset_rule("base", ds)` (one
        # rule per dataset of a kind; the base name stands for them all)
        heads = list(re.finditer(r"^[ \t]*rule( \w+)?:", text, re.M))
        for head, nxt in zip(heads, heads[1:] + [None]):
            body = text[head.end() : nxt.start() if nxt else len(text)]
            rule_name = (head.group(1) or "").strip()
            if not rule_name:
                named = re.search(r"^\s+name:\s*\n\s+\w+\(\s*\"(\w+)\"", body, re.M)
                if not named:
                    continue
                rule_name = named.group(1)
            values = {}
            for key in ("conda", "script"):
                m = re.search(rf"^\s+{key}:\s*\n\s+\"([^\"]+)\"", body, re.M)
                values[key] = (
                    str((path.parent / m.group(1)).resolve().relative_to(REPO)) if m else None
                )
            found[rule_name] = (values["conda"], values["script"])
    return found


RULES = rule_envs_and_scripts()


def test_rules_are_found() -> None:
    assert {"train", "summarize", "preprocess_rsna"} <= set(RULES), sorted(RULES)


def test_every_script_rule_has_an_existing_env_and_every_env_is_used() -> None:
    without = [rule for rule, (env, script) in RULES.items() if script and not env]
    assert not without, f"rules with a script but no conda env: {without}"
    used = {env for env, _ in RULES.values() if env}
    for env in used:
        assert (REPO / env).is_file(), f"{env} is named by a rule but does not exist"
    unused = {str(p.relative_to(REPO)) for p in ENV_FILES} - used
    assert not unused, f"env files no rule uses: {sorted(unused)}"


def _module_file(name: str) -> Path | None:
    base = REPO / "src" / Path(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (also importlib.import_module('literal'))."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)):  # fmt: skip
            names.add(node.args[0].value)
    return names


def third_party_imports(script: Path) -> set[str]:
    """Distributions the script needs: its imports and those of the frugalmed modules it
    reaches, transitively."""
    seen: set[Path] = set()
    todo, found = [script], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "frugalmed":
                parts = name.split(".")
                todo += [f for i in range(1, len(parts) + 1)
                         if (f := _module_file(".".join(parts[:i])))]  # fmt: skip
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.add(canonicalize_name(IMPORT_NAMES.get(top, top)))
    return found


def test_import_scan_sees_lazy_imports() -> None:
    """The scan reaches imports inside functions (the download clients are imported lazily)."""
    needs = third_party_imports(REPO / "workflow" / "scripts" / "download_lidc.py")
    assert {"tcia-utils", "idc-index", "pylidc", "pydicom"} <= needs, needs


@pytest.mark.parametrize("rule", sorted(r for r, (e, s) in RULES.items() if e and s))
def test_rule_env_provides_what_its_script_imports(rule: str) -> None:
    env, script = RULES[rule]
    script_path = REPO / script
    needs = third_party_imports(script_path) | RUNTIME_NEEDS.get(script_path.name, set())
    missing = needs - set(env_packages(REPO / env))
    assert not missing, f"rule {rule} ({script}) needs {sorted(missing)}, absent from {env}"
