"""The benchmark suite's smoke run: every benchmark runs end to end on tiny inputs, so the suite
cannot rot. It checks that every row is there and that ratios are finite positive numbers; it
does not check the goals (CI machines differ, and other jobs share their cores)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

# Rows the smoke run must report with a measured value (substrings of the row names).
EXPECTED_ROWS = {
    "rsna": [
        "J2K: fastest full decoder",
        "J2K: frugalmed",
        "J2K: naive",
        "J2K: frugalmed time / fastest decode path",
        "J2K: frugalmed time / fastest full-resolution decode",
        "J2K: speed-up over naive baseline",
        "J2K: reduced decode (fastest)",
        "JPEG-LL SV1: fastest full decoder",
        "JPEG-LL SV1: frugalmed time / fastest decode path",
        "JPEG-LL SV1: speed-up over naive baseline",
        "speed-up, 2 workers vs 1",
        "CPU seconds per image, 2 workers ÷ 1",
    ],
    "train": [
        "steps/s, frugalmed run ÷ bare PyTorch (whole run, wall clock)",
        "steps per CPU-second, frugalmed run ÷ bare (whole run)",
        "steps/s, frugalmed ÷ bare (training passes only)",
        "share of training-step time waiting for data",
        "codecarbon import + start in a fresh process",
        "job start-up to first epoch, codecarbon in background ÷ in foreground",
    ],
    "workflow": ["snakemake -n, config (", "snakemake -n, config x10 seeds (", "time growth ÷ job growth"],
    "memory": ["memory growth above the import floor, 20 images, 2 workers",
               "memory growth above the import floor, 200 images, 2 workers",
               "growth above the import floor, 200 ÷ 20 images",
               "peak RSS of the writing process, 200 images", "peak RSS ratio of the writing process",
               "peak RSS, LIDC preprocessing ≈20 patches", "peak RSS, LIDC preprocessing ≈60 patches",
               "LIDC peak RSS ratio", "LIDC peak anonymous RSS ratio"],
    "results": ["results stage, 18 runs x 100 test images",
                "bootstrap AUC per resample, scikit-learn loop ÷ vectorised"],
}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench-out")
    scratch = tmp_path_factory.mktemp("bench-scratch")
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--smoke", "--out", str(out), "--scratch", str(scratch)],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "latest.json").read_text())
    report["markdown"] = (out / "latest.md").read_text()
    return report


@pytest.mark.slow  # the whole benchmark suite on tiny inputs, Snakemake included: minutes
def test_smoke_run_reports_every_row_with_a_finite_positive_value(smoke: dict) -> None:
    errors = smoke["details"].get("errors", [])
    assert not errors, "\n\n".join(e["traceback"] for e in errors)
    rows = smoke["rows"]
    for section, names in EXPECTED_ROWS.items():
        for name in names:
            found = [r for r in rows if r["section"] == section and r["name"].startswith(name)]
            assert found, f"no row {section} / {name!r} in {[r['name'] for r in rows]}"
            for r in found:
                assert r["value"] is not None, f"{r['name']}: {r['note']}"
                assert math.isfinite(r["value"]) and r["value"] > 0, r


@pytest.mark.slow  # the whole benchmark suite on tiny inputs, Snakemake included: minutes
def test_smoke_run_checks_decoders_and_writes_markdown(smoke: dict) -> None:
    decoders = smoke["details"]["decoders"]
    assert len(decoders) == 2
    for table in decoders.values():
        exact = [d for d in table if d["check"] == "exact"]
        assert exact, table  # at least one decoder reproduced the reference pixels
        assert not [d for d in table if d["check"].startswith(("WRONG", "FAILED"))], table
    md = smoke["markdown"]
    assert "| section | benchmark | measured | goal | met | note |" in md
    assert md.count("\n| rsna |") >= len(EXPECTED_ROWS["rsna"])
    assert smoke["details"]["machine_at_start"]["cores"] >= 1


def test_interleaved_ratio_pairs_items() -> None:
    """The median of per-item ratios, not a ratio of medians (a slow burst on one item cancels)."""
    from bench_timing import Paired

    paired = Paired({"a": [1.0, 2.0, 100.0], "b": [0.5, 1.0, 50.0]})
    assert paired.ratio("a", "b") == pytest.approx(2.0)
    assert paired.median_s("a") == 2.0
    assert paired.per_s("b") == pytest.approx(1.0)


def test_reduce_level_keeps_at_least_the_target_size() -> None:
    from bench_decoders import reduce_level

    assert reduce_level(3000, 2400, 256) == 3  # 375 x 300 >= 256, next level 188 x 150 < 256
    assert reduce_level(512, 416, 64) == 2
    assert reduce_level(200, 200, 256) == 0
