#!/usr/bin/env python
"""Mutation testing of frugalmed's core: mutmut 3, one module at a time, against its own tests.

    python tools/mutants.py                 # every core module (minutes on 2 cores)
    python tools/mutants.py pepr radar      # some of them
    python tools/mutants.py --list          # the modules, their files and tests
    python tools/mutants.py pepr --show     # also print each survivor's diff

Why per module: mutmut 3 runs the tests once to learn which tests call which function, then
runs only those tests against each mutant; the test selection below keeps that first run and
every mutant run to the module's own fast unit tests (seconds, not the whole suite).

How: each module is staged in build/mutants/<module>/ (git-ignored): a copy of src/, tests/,
the files the tests read, and a pyproject.toml whose [tool.mutmut] names the module's files and
tests. mutmut copies that into its own mutants/ folder and puts mutants/src first on sys.path,
so the tests import the mutated package (PYTHONPATH is cleared for the run, so the checkout's
src/ cannot shadow it; the venv's editable install comes later on sys.path).

The result of each module is written to build/mutants/<module>.json and summarised as one
table row for docs/testing.md. Survivors listed in docs/testing.md as equivalent (a line
"- `<mutant name>`: why") are counted apart; any other survivor is a missing test and makes the
command exit 1.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build" / "mutants"
DOCS = REPO / "docs" / "testing.md"


@dataclass(frozen=True)
class Target:
    """One core module: the files mutated, the tests that must kill the mutants."""

    files: tuple[str, ...]
    tests: tuple[str, ...]
    # mutant-name globs (fnmatch) restricting which functions count; () = every function.
    # Used where a file mixes study logic with drawing code whose mutants change only looks.
    functions: tuple[str, ...] = ()
    also_copy: tuple[str, ...] = ()  # repository files or folders the tests read
    why: str = ""


TARGETS: dict[str, Target] = {
    "splits": Target(
        files=("src/frugalmed/splits.py", "src/frugalmed/dataset/splits.py"),
        tests=("tests/test_splits.py",),
        why="patient-level splits: a leak or a lost stratum changes every test AUC",
    ),
    "train_data": Target(
        files=("src/frugalmed/train/data.py",),
        tests=("tests/test_train_data.py",),
        why="which rows a run trains, validates and tests on; normalisation statistics",
    ),
    "train_settings": Target(
        files=("src/frugalmed/train/settings.py", "src/frugalmed/train/loop.py"),
        tests=("tests/test_train_selection.py", "tests/test_train_loop.py",
               "tests/test_train.py::test_cuda_precision_per_setting"),
        functions=("frugalmed.train.settings.*", "frugalmed.train.loop.*"),
        why="setting -> precision, autocast, scaler; the epoch, the evaluation pass, AUC",
    ),
    "train_run": Target(
        files=("src/frugalmed/train/run.py",),
        tests=("tests/test_train_selection.py",),
        functions=("frugalmed.train.run.x_make_optimizer__*", "frugalmed.train.run.x__score_test__*",
                   "frugalmed.train.run.x__train_epochs__*", "frugalmed.train.run.x_choose_device__*"),
        why="the optimizer of each setting, model selection on validation, the one test pass",
    ),
    "rsna_decode": Target(
        files=("src/frugalmed/rsna/decode.py",),
        # test_rsna_j2k.py's decode tests (its selection test builds a whole cohort: not here)
        tests=("tests/test_rsna_decode.py", "tests/test_rsna_dicomsdl.py",
               *(f"tests/test_rsna_j2k.py::{t}" for t in (
                   "test_reduced_shape_is_openjpegs_ceil", "test_pillow_full_resolution_equals_pydicom",
                   "test_without_any_openjpeg_binding_jpeg2000_falls_back_to_full_decoding",
                   "test_a_pillow_failure_falls_back", "test_header_mismatch_is_left_to_pydicom",
                   "test_reduction_beyond_the_codestream_levels_continues_with_the_53_lowpass"))),
        functions=("frugalmed.rsna.decode.x_display_lut__*", "frugalmed.rsna.decode.x_apply_lut__*",
                   "frugalmed.rsna.decode.x_reduction_level__*", "frugalmed.rsna.decode.x_read_dataset__*",
                   "frugalmed.rsna.decode.x_decode_mammogram__*"),
        why="grey levels: modality LUT, VOI LUT/window, MONOCHROME1 inversion, reduction level",
    ),
    "lidc_labels": Target(
        files=("src/frugalmed/lidc/nodules.py",),
        tests=("tests/test_lidc_labels.py",),
        why="rater counting per slice and the label rule n_raters >= min_raters",
    ),
    "results_aggregate": Target(
        files=("src/frugalmed/results/aggregate.py", "src/frugalmed/results/summary.py",
               "src/frugalmed/results/pepr.py"),
        tests=("tests/test_results.py", "tests/test_results_aggregate_properties.py"),
        why="means over seeds, diverged runs excluded, % change vs baseline, PePR",
    ),
    "stats": Target(
        files=("src/frugalmed/stats/auc.py", "src/frugalmed/stats/paired.py",
               "src/frugalmed/stats/resample.py", "src/frugalmed/stats/weighted_auc.py"),
        tests=("tests/test_stats_auc.py", "tests/test_stats_paired.py", "tests/test_stats_properties.py"),
        why="AUC, its bootstrap intervals, paired ΔAUC, ratios, the non-inferiority rule",
    ),
    "comparisons": Target(
        files=("src/frugalmed/results/comparisons.py", "src/frugalmed/results/predictions.py"),
        tests=("tests/test_results_comparisons.py", "tests/test_results_verdicts.py",
               "tests/test_results_comparisons_properties.py"),
        functions=("frugalmed.results.comparisons.x_score_runs__*",
                   "frugalmed.results.comparisons.x_compare__*",
                   "frugalmed.results.comparisons.x__by_seed__*",
                   "frugalmed.results.comparisons.x__compare_one__*",
                   "frugalmed.results.comparisons.x__setting_row__*",
                   "frugalmed.results.comparisons.x_verdict__*",
                   "frugalmed.results.predictions.*"),
        why="seed pairing, ΔAUC and ratio per setting, the verdict; predictions checked against the test split",
    ),
    "radar": Target(
        files=("src/frugalmed/results/radar.py",),
        tests=("tests/test_radar_geometry.py", "tests/test_results_figures.py", "tests/test_results.py"),
        functions=("frugalmed.results.radar.x_nice_ticks__*", "frugalmed.results.radar.x_axis_ticks__*",
                   "frugalmed.results.radar.x_radius_of__*", "frugalmed.results.radar.x_panel_geometry__*"),
        why="orientation (outward = better), axis ranges, where each setting's vertex lies",
    ),
}

# Statements never mutated: raising and logging. Their text (an error message, a log line) cannot
# silently change a result; the conditions that lead to them are still mutated.
NOT_MUTATED = (r"^\s*raise\b", r"^\s*(log|logger)\.(debug|info|warning|error|exception)\(",
               r"^\s*warnings\.warn\(", r"^\s*_warn_once\(")

# mutmut's exit codes -> what they mean (mutmut.stats.status_by_exit_code, restated so that
# reading results needs no mutmut import)
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
          35: "suspicious", 36: "timeout", 37: "killed", -24: "timeout", 24: "timeout",
          152: "timeout", 255: "timeout", -11: "segfault", -9: "segfault", None: "not checked"}


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()


def equivalent_survivors() -> dict[str, str]:
    """Mutants docs/testing.md explains as equivalent: lines '- `name`: why'."""
    if not DOCS.exists():
        return {}
    found = re.findall(r"^- `(frugalmed\.[^`]+__mutmut_\d+)`:\s*(.+)$", DOCS.read_text(), re.M)
    return dict(found)


def _toml_list(values) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def stage(name: str, target: Target, keep: bool) -> Path:
    """build/mutants/<name>: src, tests, what the tests read, and a pyproject with the target."""
    where = BUILD / name
    if where.exists() and not keep:
        shutil.rmtree(where)
    where.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for part in ("src", "tests", *target.also_copy):
        source, dest = REPO / part, where / part
        if dest.exists():
            shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
        if source.is_dir():
            shutil.copytree(source, dest, ignore=ignore)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)
    base = (REPO / "pyproject.toml").read_text()
    base = base.split("\n[tool.mutmut]")[0]
    (where / "pyproject.toml").write_text(
        base.rstrip() + "\n\n[tool.mutmut]\n"
        f'source_paths = ["src"]\n'
        f"only_mutate = {_toml_list(target.files)}\n"
        f"also_copy = {_toml_list(target.also_copy)}\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(target.tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-m", "not slow"]\n'
        "use_git_change_detection = false\n"
        "track_dependencies = false\n"
        f"do_not_mutate_patterns = {_toml_list(NOT_MUTATED)}\n"
    )
    return where


def run_target(name: str, target: Target, jobs: int, keep: bool) -> dict:
    missing = [p for p in (*target.files, *target.tests) if not (REPO / p.split("::")[0]).exists()]
    if missing:
        raise SystemExit(f"{name}: missing {missing}")
    where = stage(name, target, keep)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", MPLBACKEND="Agg")
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs)]
    log = where / "mutmut.log"
    with open(log, "w") as out:
        proc = subprocess.run(cmd, cwd=where, env=env, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = log.read_text()[-3000:]
        raise SystemExit(f"{name}: mutmut failed (exit {proc.returncode}); {log}:\n{tail}")
    results: dict[str, str] = {}
    for path in target.files:
        meta = where / "mutants" / (path + ".meta")
        if not meta.exists():
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        for key, code in codes.items():
            if not target.functions or any(fnmatch.fnmatch(key, g) for g in target.functions):
                results[key] = STATUS.get(code, "suspicious")
    return {"module": name, "files": list(target.files), "tests": list(target.tests),
            "functions": list(target.functions), "seconds": round(seconds, 1),
            "commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(git("status", "--porcelain", "src", "tests")),
            "mutants": results}


def summarise(result: dict, equivalent: dict[str, str]) -> dict:
    statuses = list(result["mutants"].values())
    survivors = sorted(k for k, s in result["mutants"].items() if s == "survived")
    killed = sum(s in ("killed", "timeout") for s in statuses)
    explained = [k for k in survivors if k in equivalent]
    unexplained = [k for k in survivors if k not in equivalent]
    other = sorted(k for k, s in result["mutants"].items()
                   if s not in ("killed", "timeout", "survived"))
    total = len(statuses)
    return {"total": total, "killed": killed, "survived": len(survivors),
            "equivalent": len(explained), "unexplained": unexplained, "other": other,
            "score": killed / total if total else float("nan"),
            "score_without_equivalent": killed / (total - len(explained)) if total > len(explained) else float("nan")}


DIFFS = """
import json, sys
from mutmut.__main__ import find_mutant, get_diff_for_mutant
for name in json.load(sys.stdin):
    diff = get_diff_for_mutant(name, path=find_mutant(name).path)
    lines = [l for l in diff.splitlines() if l.startswith(("+", "-")) and not l.startswith(("+++", "---"))]
    print(f"## {name}")
    print("\\n".join(lines))
"""


def diffs(name: str, mutants: list[str]) -> str:
    """The changed lines of each mutant (mutmut's own diff), one block per mutant."""
    if not mutants:
        return ""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", DIFFS], cwd=BUILD / name, env=env,
                          input=json.dumps(mutants), capture_output=True, text=True)
    return proc.stdout + proc.stderr[-2000:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"some of {list(TARGETS)} (default: all)")
    parser.add_argument("--list", action="store_true", help="print the modules and exit")
    parser.add_argument("--show", action="store_true", help="print every survivor's diff")
    parser.add_argument("--keep", action="store_true",
                        help="reuse build/mutants/<module> (mutmut skips mutants already tested)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2,
                        help="mutants tested in parallel (default: all cores)")
    args = parser.parse_args(argv)
    if args.list:
        for name, t in TARGETS.items():
            print(f"{name}: {t.why}\n  files: {' '.join(t.files)}\n  tests: {' '.join(t.tests)}"
                  + (f"\n  functions: {' '.join(t.functions)}" if t.functions else ""))
        return 0
    unknown = [m for m in args.modules if m not in TARGETS]
    if unknown:
        parser.error(f"unknown module(s) {unknown}; choose from {list(TARGETS)}")
    equivalent = equivalent_survivors()
    rows, bad = [], False
    for name in args.modules or list(TARGETS):
        result = run_target(name, TARGETS[name], args.jobs, args.keep)
        summary = summarise(result, equivalent)
        BUILD.mkdir(parents=True, exist_ok=True)
        (BUILD / f"{name}.json").write_text(json.dumps({**result, "summary": summary}, indent=1))
        rows.append((name, result, summary))
        print(f"{name}: {summary['killed']}/{summary['total']} killed ({summary['score']:.1%}), "
              f"{summary['equivalent']} equivalent survivor(s) listed in docs/testing.md, "
              f"{len(summary['unexplained'])} unexplained, {result['seconds']:.0f} s", flush=True)
        listed = summary["unexplained"] + summary["other"]
        text = diffs(name, listed)
        (BUILD / f"{name}.survivors.txt").write_text(text)
        for mutant in listed:
            print(f"  {result['mutants'][mutant]}: {mutant}")
        if listed:
            print(f"  diffs: {(BUILD / f'{name}.survivors.txt').relative_to(REPO)}")
        if args.show:
            print(text)
        bad |= bool(summary["unexplained"] or summary["other"])
    commit = rows[0][1]["commit"] + (" (+ uncommitted changes)" if rows[0][1]["dirty"] else "")
    print(f"\n| module | mutants | killed | equivalent survivors | other survivors | score | "
          f"score excl. equivalent |\n|---|---|---|---|---|---|---|")
    for name, result, s in rows:
        print(f"| {name} | {s['total']} | {s['killed']} | {s['equivalent']} | "
              f"{len(s['unexplained']) + len(s['other'])} | {s['score']:.1%} | "
              f"{s['score_without_equivalent']:.1%} |")
    print(f"\nmeasured at commit {commit} with mutmut "
          f"{subprocess.run([sys.executable, '-m', 'pip', 'show', 'mutmut'], capture_output=True, text=True).stdout.split('Version: ')[-1].split()[0]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
