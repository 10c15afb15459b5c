"""Estimated time to preprocess all of RSNA, from the benchmark's measured per-syntax rates.

    python benchmarks/rsna_estimate.py                       # from results/latest.json
    python benchmarks/rsna_estimate.py --j2k-share 0.6       # another share of JPEG 2000 files

run.py calls it after every run: it writes results/rsna_estimate.{json,md} and, for a full run
into results/, the block between the rsna-estimate markers in docs/benchmarks.md. An estimate,
not a measurement:

    T(cores) = N x (p / r_J2K + (1 - p) / r_SV1) x k / cores

N = 54,706 training images; r = images/s of frugalmed's per-image preprocessing (decode, LUTs,
crop, resize, every scale, row writes) in one process, per transfer syntax, measured on the
benchmark's synthetic 3000 x 2400 12-bit images; k = CPU seconds per image with 2 workers
divided by with 1 (measured: what running side by side costs each image), assumed to hold at
16 and 64 cores; p = share of JPEG 2000 files. RSNA does not publish p: the competition's data
page says only that "many of the images use the jpeg 2000 format", so p = 0.5 is an
assumption and the table also gives p = 0 and p = 1, which bound any share. Not included: the
serial parts of a run (train.csv, splits, manifest: seconds), real images' other sizes and
compressibility (decode time grows with both), and the disk: the read rate each row would
need is given, from the benchmark files' mean size.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
N_IMAGES = 54_706  # RSNA Screening Mammography training images (train.csv rows)
CORES = (2, 16, 64)
ASSUMED_J2K_SHARE = 0.5
MARKERS = ("<!-- rsna-estimate:start (written by benchmarks/rsna_estimate.py) -->", "<!-- rsna-estimate:end -->")


def seconds_per_image(rates: dict[str, float], j2k_share: float) -> float:
    """One process's mean seconds per image for a cohort with this share of JPEG 2000 files."""
    return j2k_share / rates["j2k"] + (1.0 - j2k_share) / rates["jpegls1"]


def estimate(report: dict, j2k_share: float = ASSUMED_J2K_SHARE, n_images: int = N_IMAGES,
             cores: tuple[int, ...] = CORES) -> dict:
    """Hours for n_images on each core count, for shares 0, j2k_share and 1, from a report."""
    details = report["details"]
    try:
        rates = {s: float(details["pipeline"][s]["images_per_s"]["frugalmed"]) for s in ("j2k", "jpegls1")}
    except KeyError as err:
        raise SystemExit(f"the report has no per-syntax frugalmed rate ({err}): run benchmarks/run.py "
                         "with its rsna section first") from None
    scaling = details.get("worker_scaling", {})
    k = float(scaling.get("cpu_per_image_2_vs_1", float("nan")))
    if not math.isfinite(k) or k <= 0:
        k = 1.0  # not measured: no slow-down assumed
    shares = sorted({0.0, j2k_share, 1.0})
    mb = details.get("cohort", {}).get("mean_file_mb", {})
    rows = []
    for c in cores:
        row = {"cores": c, "hours": {}, "read_mb_per_s": {}}
        for p in shares:
            s = seconds_per_image(rates, p) * k
            row["hours"][f"{p:g}"] = n_images * s / c / 3600
            if mb:
                row["read_mb_per_s"][f"{p:g}"] = c / s * (p * mb["j2k"] + (1 - p) * mb["jpegls1"])
        rows.append(row)
    return {
        "estimate": True,
        "formula": "T(cores) = N x (p / r_J2K + (1 - p) / r_SV1) x k / cores",
        "n_images": n_images, "rates_images_per_s": rates, "k_cpu_per_image_2_vs_1": k,
        "j2k_share_assumed": j2k_share, "shares": [f"{p:g}" for p in shares], "rows": rows,
        "mean_file_mb": mb, "cohort": {k: details.get("cohort", {}).get(k) for k in ("rows", "cols", "bits_stored")},
        "mode": report.get("mode"), "commit": report.get("commit"),
        "machine": report.get("machine"),
    }


def _duration(hours: float) -> str:
    if hours * 60 < 2:
        return f"{hours * 3600:.0f} s"
    return f"{hours * 60:.0f} min" if hours < 2 else f"{hours:.1f} h"


def to_markdown(est: dict) -> str:
    r, k, p = est["rates_images_per_s"], est["k_cpu_per_image_2_vs_1"], est["j2k_share_assumed"]
    commit = (est.get("commit") or {}).get("sha", "unknown")[:12]
    machine = est.get("machine") or {}
    cohort = est.get("cohort") or {}
    head = " | ".join(f"{'all JPEG 2000' if s == '1' else 'all SV1' if s == '0' else f'{float(s):.0%} JPEG 2000 (assumed)'}"
                      for s in est["shares"])
    lines = [
        f"**Estimate, not a measurement**: time to preprocess all {est['n_images']:,} RSNA training images, "
        f"`T(cores) = N × (p / r_J2K + (1 − p) / r_SV1) × k / cores`, with the rates measured by "
        f"`benchmarks/run.py` (mode `{est['mode']}`, commit `{commit}`, {machine.get('cpu', '?')}, "
        f"{machine.get('cores', '?')} cores): r_J2K = {r['j2k']:.1f} and r_SV1 = {r['jpegls1']:.1f} images/s "
        f"in one process (synthetic {cohort.get('rows')} × {cohort.get('cols')} {cohort.get('bits_stored')}-bit "
        f"images), k = {k:.2f} (CPU seconds per image, "
        f"2 workers ÷ 1), assumed to hold at 16 and 64 cores. p: RSNA publishes no share of JPEG 2000 "
        f"files; p = {p:g} is an assumption, all-SV1 and all-JPEG 2000 bound any share.",
        "",
        f"| cores | {head} | disk read needed at p = {p:g} |",
        "|---|" + "---|" * len(est["shares"]) + "---|",
    ]
    for row in est["rows"]:
        cells = " | ".join(_duration(row["hours"][s]) for s in est["shares"])
        read = row["read_mb_per_s"].get(f"{p:g}")
        lines.append(f"| {row['cores']} | {cells} | {f'{read:,.0f} MB/s' if read else 'not measured'} |")
    lines += ["", "Disk read: images/s × the benchmark files' mean size; a slower disk sets the time instead."]
    return "\n".join(lines) + "\n"


def update_docs(doc: Path, markdown: str) -> None:
    """Replace the block between the markers in `doc` (the markers must be there already)."""
    from frugalmed.atomic import write_text

    text = doc.read_text()
    start, end = MARKERS
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{doc} has no {start} ... {end} block to fill")
    write_text(doc, pattern.sub(lambda _m: f"{start}\n{markdown}{end}", text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latest", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument("--out", type=Path, default=None, help="where rsna_estimate.{json,md} go (default: beside --latest)")
    parser.add_argument("--j2k-share", type=float, default=ASSUMED_J2K_SHARE)
    parser.add_argument("--docs", type=Path, default=None, help="a markdown file whose rsna-estimate block to refresh")
    args = parser.parse_args(argv)
    if not 0.0 <= args.j2k_share <= 1.0:
        parser.error("--j2k-share must be between 0 and 1")
    sys.path.insert(0, str(HERE.parent / "src"))
    from frugalmed.atomic import write_json, write_text

    est = estimate(json.loads(args.latest.read_text()), args.j2k_share)
    out = args.out or args.latest.parent
    markdown = to_markdown(est)
    write_json(out / "rsna_estimate.json", est)
    write_text(out / "rsna_estimate.md", markdown)
    if args.docs:
        update_docs(args.docs, markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
