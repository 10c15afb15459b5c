"""Every `snakemake ...` command that README.md and docs/*.md show works as written.

Why: Snakemake's list-valued options (`--resources`, `--configfile`, `--set-resources`, ...)
swallow a target written after them, so `snakemake --cores 1 --resources gpu=1 figures/x.pdf`
crashes and `snakemake --configfile c.yaml figures/x.pdf` takes the target for a config file.
A command that looks right in the docs can therefore fail when typed. These tests extract the
commands from the Markdown (code blocks and inline code) and
- parse each one with Snakemake's own command-line parser, profile loading included (fast);
- dry-run each one (`-n` added) in a scratch copy of the repository (slow).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
# Outputs a target may name; anything else must be a rule name.
OUTPUT_ROOTS = ("results/", "figures/", "resources/", "logs/")
# Not copied: outputs and caches of the checkout (top level only: src/frugalmed/results is code).
TOP_LEVEL_SKIP = {".git", ".venv", ".snakemake", "results", "resources", "figures", "logs",
                  ".pytest_cache", "report.html"}


def _copy_ignore(directory: str, names: list[str]) -> set[str]:
    skip = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
    if Path(directory) == REPO:
        skip |= TOP_LEVEL_SKIP & set(names)
    return skip


@dataclass(frozen=True)
class DocCommand:
    source: str  # file:line, for the failure message
    text: str  # the command as the docs show it

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text)[1:]

    def __str__(self) -> str:
        return f"{self.source}: {self.text}"


def _commands_in(text: str) -> list[tuple[int, str]]:
    """(line offset, command) of the `snakemake ...` commands in a snippet of shell: split at
    && ; | and newlines, comments cut."""
    found = []
    for offset, line in enumerate(text.splitlines()):
        line = re.sub(r"(^|\s)#.*$", "", line)
        for part in re.split(r"&&|;|\|\|?", line):
            part = part.strip()
            if part == "snakemake" or part.startswith("snakemake "):
                found.append((offset, " ".join(part.split())))
    return found


def doc_commands() -> list[DocCommand]:
    """Every snakemake command in README.md and docs/*.md, with where it is."""
    commands = []
    for path in DOCS:
        text = path.read_text()
        spans = [(m.start(1), m.group(1)) for m in FENCE.finditer(text)]
        fenced = [(start, start + len(body)) for start, body in spans]
        for m in INLINE.finditer(text):
            if not any(lo <= m.start() < hi for lo, hi in fenced):
                spans.append((m.start(1), m.group(1)))
        for start, body in spans:
            line = text.count("\n", 0, start) + 1
            for offset, command in _commands_in(body):
                where = f"{path.relative_to(REPO)}:{line + offset}"
                commands.append(DocCommand(where, command))
    return commands


COMMANDS = doc_commands()
IDS = [c.source for c in COMMANDS]


def _rule_names() -> set[str]:
    names = set()
    for path in [REPO / "Snakefile", *(REPO / "workflow" / "rules").glob("*.smk")]:
        names |= set(re.findall(r"^\s*rule (\w+):", path.read_text(), re.M))
    return names


def test_the_docs_show_commands():
    """The extraction itself works (a broken regex would make every other test vacuous)."""
    texts = {c.text for c in COMMANDS}
    assert len(COMMANDS) >= 8, COMMANDS
    assert any("figures/radar_densenet.pdf" in t for t in texts), texts
    assert any("--workflow-profile profiles/slurm" in t for t in texts), texts


def test_extraction_catches_the_swallowed_target_trap():
    """The parse check below must reject the commands issue 17 reported."""
    assert _commands_in("pip install x && snakemake --cores 1 figures/a.pdf  # demo") == [
        (0, "snakemake --cores 1 figures/a.pdf")
    ]
    with pytest.raises(AssertionError):
        _check_parses(DocCommand("t", "snakemake --cores 1 --resources gpu=1 figures/radar_densenet.pdf"))
    with pytest.raises(AssertionError):
        _check_parses(DocCommand("t", "snakemake --configfile config/paper.yaml figures/radar_densenet.pdf"))


def _check_parses(command: DocCommand) -> None:
    """Snakemake's parser (with the workflow profile it would load) accepts the command, every
    --configfile is a file and every target is a rule or an output path."""
    from snakemake.cli import parse_args

    assert "..." not in command.text and "<" not in command.text, (
        f"{command}: a placeholder; the docs must show a command that runs as typed"
    )
    try:
        _, args = parse_args(command.argv)
    except (Exception, SystemExit) as err:  # argparse exits, resource parsing raises
        raise AssertionError(f"{command}: Snakemake's parser rejects it: {err!r}") from None
    for configfile in args.configfile or []:
        assert (REPO / configfile).is_file(), (
            f"{command}: '{configfile}' is taken as a --configfile (a target after a "
            "list-valued option is swallowed: put targets first or after `--`)"
        )
    rules = _rule_names()
    for target in args.targets:
        assert target in rules or target.startswith(OUTPUT_ROOTS), (
            f"{command}: target '{target}' is neither a rule nor an output path"
        )


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_command_parses(command: DocCommand, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    _check_parses(command)


def _make_own_data_example(repo: Path) -> None:
    """The own-data page's commands need the files its worked example writes first (its Python
    block, `python make_mycohort.py`); written once per scratch copy."""
    from test_own_data_docs import worked_example

    if (repo / "resources" / "mycohort").is_dir():
        return
    script, _, _ = worked_example()
    (repo / "make_mycohort.py").write_text(script)
    made = subprocess.run([sys.executable, "make_mycohort.py"], cwd=repo, capture_output=True,
                          text=True, timeout=120)
    assert made.returncode == 0, made.stderr[-2000:]


@pytest.fixture(scope="module")
def scratch_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository's sources: dry-runs there leave the checkout untouched."""
    copy = tmp_path_factory.mktemp("docs_commands") / "frugalmed"
    shutil.copytree(REPO, copy, ignore=_copy_ignore)
    return copy


def _dry_run_argv(command: DocCommand) -> list[str]:
    """The command with `-n` added. `--report FILE` needs finished results, so it is dropped
    (the parse test checks it); `--lint` runs as it is."""
    argv = command.argv
    if "--report" in argv:
        at = argv.index("--report")
        takes_file = at + 1 < len(argv) and not argv[at + 1].startswith("-")
        del argv[at : at + (2 if takes_file else 1)]
    if "--lint" in argv or {"-n", "--dry-run", "--dryrun"} & set(argv):
        return argv
    return ["-n", *argv]


# Dry-run each distinct command once (the same one shown in two places is one test).
DISTINCT = list({tuple(_dry_run_argv(c)): c for c in reversed(COMMANDS)}.values())[::-1]


@pytest.mark.slow
@pytest.mark.parametrize("command", DISTINCT, ids=[c.source for c in DISTINCT])
def test_command_dry_runs(command: DocCommand, scratch_repo: Path, snakemake_exe: str) -> None:
    if command.source.startswith("docs/own-data.md"):
        _make_own_data_example(scratch_repo)
    proc = subprocess.run(
        [snakemake_exe, *_dry_run_argv(command)], cwd=scratch_repo, capture_output=True,
        text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{command}\n-> exit {proc.returncode}\n{out[-3000:]}"
