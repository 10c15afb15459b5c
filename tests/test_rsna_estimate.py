"""benchmarks/rsna_estimate.py: the whole-RSNA estimate follows its formula from the report's
measured rates, bounds it by the all-one-syntax shares, and refreshes only its docs block."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import rsna_estimate  # noqa: E402


def report(j2k: float = 40.0, sv1: float = 10.0, k: float = 1.25) -> dict:
    return {"mode": "full", "commit": {"sha": "abc123def4567890", "dirty": False}, "machine": {"cpu": "x", "cores": 2},
            "details": {"pipeline": {"j2k": {"images_per_s": {"frugalmed": j2k}},
                                     "jpegls1": {"images_per_s": {"frugalmed": sv1}}},
                        "worker_scaling": {"cpu_per_image_2_vs_1": k},
                        "cohort": {"rows": 3000, "cols": 2400, "bits_stored": 12,
                                   "mean_file_mb": {"j2k": 6.0, "jpegls1": 4.0}}}}


def test_estimate_follows_the_formula():
    est = rsna_estimate.estimate(report(), j2k_share=0.5)
    by_cores = {row["cores"]: row for row in est["rows"]}
    # 54,706 x (0.5 / 40 + 0.5 / 10) s x 1.25 / cores
    assert by_cores[2]["hours"]["0.5"] == pytest.approx(54_706 * 0.0625 * 1.25 / 2 / 3600)
    assert by_cores[64]["hours"]["0.5"] == pytest.approx(by_cores[2]["hours"]["0.5"] / 32)
    assert by_cores[16]["hours"]["1"] < by_cores[16]["hours"]["0.5"] < by_cores[16]["hours"]["0"]
    # read rate: cores / (seconds per image) x mean MB per image
    assert by_cores[2]["read_mb_per_s"]["0.5"] == pytest.approx(2 / (0.0625 * 1.25) * 5.0)
    assert est["estimate"] is True and est["commit"]["sha"].startswith("abc123")


def test_markdown_says_estimate_and_assumption():
    md = rsna_estimate.to_markdown(rsna_estimate.estimate(report(), 0.5))
    assert md.startswith("**Estimate, not a measurement**")
    assert "54,706" in md and "p = 0.5 is an assumption" in md and "abc123def456" in md
    assert md.count("\n| 2 |") == 1 and "\n| 64 |" in md


def test_docs_block_is_replaced_and_nothing_else(tmp_path):
    start, end = rsna_estimate.MARKERS
    doc = tmp_path / "bench.md"
    doc.write_text(f"# Title\n\nkept text\n\n{start}\nold numbers\n{end}\n\ntail\n")
    latest = tmp_path / "latest.json"
    latest.write_text(json.dumps(report()))
    rsna_estimate.main(["--latest", str(latest), "--docs", str(doc)])
    text = doc.read_text()
    assert "old numbers" not in text and "kept text" in text and text.endswith("\ntail\n")
    assert (tmp_path / "rsna_estimate.md").read_text() in text
    assert json.loads((tmp_path / "rsna_estimate.json").read_text())["n_images"] == 54_706


def test_docs_without_the_block_are_an_error(tmp_path):
    doc = tmp_path / "bench.md"
    doc.write_text("no markers here\n")
    latest = tmp_path / "latest.json"
    latest.write_text(json.dumps(report()))
    with pytest.raises(SystemExit, match="rsna-estimate"):
        rsna_estimate.main(["--latest", str(latest), "--docs", str(doc)])
    assert doc.read_text() == "no markers here\n"


def test_committed_docs_show_the_committed_estimate():
    """docs/benchmarks.md's block is exactly what the script makes of results/latest.json."""
    latest = json.loads((REPO / "benchmarks" / "results" / "latest.json").read_text())
    md = rsna_estimate.to_markdown(rsna_estimate.estimate(latest))
    assert md in (REPO / "docs" / "benchmarks.md").read_text()
    assert md == (REPO / "benchmarks" / "results" / "rsna_estimate.md").read_text()
