#!/usr/bin/env python
"""Break the study on purpose, one known bug at a time, and check that a test fails.

    python tools/acceptance.py              # every bug below (a few minutes)
    python tools/acceptance.py pepr radar   # some of them
    python tools/acceptance.py --list

Each entry is a bug that would silently change the study's conclusions (issue #18's acceptance
list, plus a few more). For each, the checkout's tracked files are copied to a temporary
folder, the bug is written into the copy, and the named tests run there (PYTHONPATH = the
copy's src/). The tests must pass on the unbroken copy and fail on the broken one. The working
tree is never modified. Exit status 1 if any bug goes unnoticed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Bug:
    what: str
    file: str
    old: str   # exact text in the file (must occur once)
    new: str   # what the bug writes instead
    tests: tuple[str, ...]  # the tests expected to catch it


BUGS: dict[str, Bug] = {
    "train_rows_test": Bug(
        "test rows added to the training rows (before the run-time check)",
        "src/frugalmed/train/data.py",
        '    rows = {name: np.flatnonzero(split == name) for name in SPLITS}\n',
        '    rows = {name: np.flatnonzero(split == name) for name in SPLITS}\n'
        '    rows["train"] = np.concatenate([rows["train"], rows["test"]])\n',
        ("tests/test_train_measure.py::test_the_run_trains_on_the_training_rows_only",),
    ),
    "train_rows_test_late": Bug(
        "test rows added to the training data after the run-time check",
        "src/frugalmed/train/data.py",
        "                for name, r in rows.items()}\n",
        '                for name, r in dict(rows, train=np.concatenate([rows["train"], '
        'rows["test"]])).items()}\n',
        ("tests/test_train_measure.py::test_the_run_trains_on_the_training_rows_only",),
    ),
    "radar": Bug(
        "radar energy axis flipped (higher energy drawn further out)",
        "src/frugalmed/results/radar.py",
        'Axis("energy_mean", "energy_min", "energy_max", "E: energy (kWh)", False)',
        'Axis("energy_mean", "energy_min", "energy_max", "E: energy (kWh)", True)',
        ("tests/test_results_figures.py::test_radar_outward_is_better_on_every_axis",),
    ),
    "monochrome1": Bug(
        "MONOCHROME1 not inverted",
        "src/frugalmed/rsna/decode.py",
        '    if ds.PhotometricInterpretation == "MONOCHROME1":\n        lut = 1.0 - lut\n',
        "",
        ("tests/test_rsna_decode.py::test_monochrome1_is_inverted",
         "tests/test_rsna_decode.py::test_both_polarities_give_the_same_bright_tissue"),
    ),
    "voi_lut": Bug(
        "VOI LUT / window skipped (modality LUT only)",
        "src/frugalmed/rsna/decode.py",
        "out = apply_voi_lut(apply_modality_lut(values, ds), ds, index=0, prefer_lut=True)",
        "out = apply_modality_lut(values, ds)",
        ("tests/test_rsna_decode.py::test_voi_lut_sequence_is_applied",
         "tests/test_rsna_decode.py::test_full_decode_matches_pydicom_luts"),
    ),
    "rater_rule": Bug(
        "rater rule >= min_raters written as >",
        "src/frugalmed/lidc/extract.py",
        '"label": int(s.n_raters >= params.min_raters)',
        '"label": int(s.n_raters > params.min_raters)',
        ("tests/test_lidc_preprocess.py::test_patches_and_labels_equal_pylidc_counted_independently",),
    ),
    "pepr": Bug(
        "PePR = P / R instead of P / (1 + R)",
        "src/frugalmed/results/pepr.py",
        "performance.astype(float) / (1.0 + minmax_normalise(resource))",
        "performance.astype(float) / minmax_normalise(resource)",
        ("tests/test_results.py::test_pepr_definition",),
    ),
    "adam8bit": Bug(
        "bnb8 settings get torch's Adam instead of bitsandbytes' Adam8bit",
        "src/frugalmed/train/run.py",
        "        return bnb.optim.Adam8bit(params, lr=lr)",
        "        return torch.optim.Adam(params, lr=lr)",
        ("tests/test_train_selection.py::test_each_setting_gets_its_optimizer_and_it_keeps_8bit_state",),
    ),
    "best_weights": Bug(
        "the test pass runs on the last epoch's weights (best-validation weights not restored)",
        "src/frugalmed/train/run.py",
        "    model.load_state_dict(best_state)\n",
        "",
        ("tests/test_train_selection.py::test_the_test_pass_uses_the_best_validation_weights",),
    ),
    "patient_two_splits": Bug(
        "splits drawn per image (the row index taken for the patient): a patient in two splits",
        "src/frugalmed/splits.py",
        '{"patient": patient_ids.astype(str).values,',
        '{"patient": patient_ids.index.astype(str),',
        ("tests/test_splits.py::test_no_patient_in_two_splits",),
    ),
    "patient_check": Bug(
        "the run-time check for a patient in two splits removed",
        "src/frugalmed/train/data.py",
        "            if patient in owner:\n",
        "            if False:\n",
        ("tests/test_train_measure.py::test_a_patient_in_two_splits_is_refused",),
    ),
    "predictions_rows": Bug(
        "the results stage accepts predictions of rows outside the test split",
        "src/frugalmed/results/predictions.py",
        "    if len(extra) or len(absent):\n",
        "    if len(absent):\n",
        ("tests/test_results_comparisons.py::test_predictions_must_be_exactly_the_test_split",),
    ),
}


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line and (REPO / line).is_file()]


def copy_tree(dest: Path) -> None:
    for name in tracked_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)


def run_tests(root: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=str(root / "src"))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           "-m", "not slurm", *tests], cwd=root, env=env,
                          capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bugs", nargs="*", help=f"some of {list(BUGS)} (default: all)")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    if args.list:
        for name, bug in BUGS.items():
            print(f"{name}: {bug.what}\n  {bug.file}\n  caught by: {' '.join(bug.tests)}")
        return 0
    names = args.bugs or list(BUGS)
    unknown = [n for n in names if n not in BUGS]
    if unknown:
        parser.error(f"unknown bug(s) {unknown}; choose from {list(BUGS)}")
    missed = []
    with tempfile.TemporaryDirectory(prefix="frugalmed-acceptance-") as tmp:
        root = Path(tmp)
        copy_tree(root)
        all_tests = tuple(dict.fromkeys(t for n in names for t in BUGS[n].tests))
        code, out = run_tests(root, all_tests)
        if code != 0:
            print(out[-4000:])
            print("the tests fail on the unbroken code: fix that first")
            return 1
        print(f"unbroken: {len(all_tests)} test(s) pass")
        for name in names:
            bug = BUGS[name]
            path = root / bug.file
            original = path.read_text()
            if original.count(bug.old) != 1:
                print(f"{name}: the text to break occurs {original.count(bug.old)} times in "
                      f"{bug.file}; update tools/acceptance.py")
                missed.append(name)
                continue
            path.write_text(original.replace(bug.old, bug.new))
            start = time.perf_counter()
            try:
                code, out = run_tests(root, bug.tests)
            finally:
                path.write_text(original)
            failed = [line.split(" - ")[0].removeprefix("FAILED ")
                      for line in out.splitlines() if line.startswith(("FAILED", "ERROR"))]
            verdict = "caught" if code != 0 else "NOT CAUGHT"
            print(f"{name}: {verdict} ({time.perf_counter() - start:.0f} s) - {bug.what}")
            for line in failed:
                print(f"    {line}")
            if code == 0:
                missed.append(name)
    if missed:
        print(f"\nbugs no test caught: {missed}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
