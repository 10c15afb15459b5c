"""The results rules, run by Snakemake in a scratch directory on hand-made metrics.json files.

Training rules are not allowed to run (--allowed-rules), so the test needs no data, no model
and no GPU; it checks the rules' wiring: what each target reads, what it writes, the report.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from results_fakes import assert_pdf, assert_png, manifest_test_rows, write_manifest, write_run

RESULT_RULES = ["confounds", "summarize", "tables", "comparisons", "recommendations",
                "radar", "downsampling", "pareto", "curves"]
OVERRIDE = {
    "experiments": {
        "main": {"datasets": ["rsna", "lidc"], "models": ["densenet", "mlp"],
                 "settings": ["baseline", "amp"], "seeds": [1, 2], "scales": [1]},
        "downsampling": {"datasets": ["rsna"], "models": ["densenet"],
                         "settings": ["baseline", "amp_bnb8"], "seeds": [1, 2], "scales": [1, 2]},
        "act8": None,  # the demo's act8 grid, dropped
    }
}


def _runs(model=None):
    """Every (dataset, scale, model, setting, seed) of OVERRIDE, optionally of one model."""
    runs = set()
    for exp in filter(None, OVERRIDE["experiments"].values()):
        for d in exp["datasets"]:
            for sc in exp["scales"]:
                for m in exp["models"]:
                    for st in exp["settings"]:
                        for seed in exp["seeds"]:
                            runs.add((d, sc, m, st, seed))
    return sorted(r for r in runs if model is None or r[2] == model)


def _write(root: Path, runs) -> None:
    tests = {d: manifest_test_rows(write_manifest(root, d, seed=len(d))) for d in ("rsna", "lidc")}
    for i, (dataset, scale, model, setting, seed) in enumerate(runs):
        diverged = (dataset, scale, model, setting, seed) == ("lidc", 1, "densenet", "amp", 2)
        extra = {"test_auc": None} if diverged else {}
        write_run(root, dataset, scale, model, setting, seed, tests[dataset], diverged=diverged,
                  separation=2.0 - 0.3 * scale, energy_kwh=1e-4 * (1 + i % 5),
                  train_time_s=10.0 + i % 3, peak_memory_gb=0.5 + 0.1 * (i % 4),
                  energy_source="estimated-tdp", **extra)


def _snakemake(repo: Path, exe: str, workdir: Path, *targets: str,
               options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    cmd = [exe, "-s", str(repo / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(repo / "config/config.yaml"), str(workdir / "override.yaml"),
           "--cores", "2", *options, "--allowed-rules", *RESULT_RULES, "--", *targets]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


@pytest.mark.slow
def test_results_rules_build_summary_tables_figures_and_report(tmp_path, repo, snakemake_exe):
    (tmp_path / "override.yaml").write_text(yaml.safe_dump(OVERRIDE))
    # 1. the radar of one model needs that model's runs only
    _write(tmp_path, _runs(model="mlp"))
    _snakemake(repo, snakemake_exe, tmp_path, "figures/radar_mlp.pdf")
    assert_pdf(tmp_path / "figures/radar_mlp.pdf")
    assert_png(tmp_path / "figures/radar_mlp.png")
    assert not (tmp_path / "results/summary.csv").exists()

    # 2. everything else, once every run exists
    _write(tmp_path, _runs())
    targets = ["results/summary.csv", "results/tables/rsna.md", "results/tables/lidc.tex",
               "figures/radar_densenet.pdf", "figures/downsampling_densenet.pdf",
               "results/recommendations.md", "figures/pareto_rsna.pdf", "figures/curves_mlp.pdf"]
    _snakemake(repo, snakemake_exe, tmp_path, *targets)
    summary = pd.read_csv(tmp_path / "results/summary.csv")
    assert len(summary) == len(_runs())
    assert {"state_bytes.params", "environment.torch"} <= set(summary.columns)
    lidc = pd.read_csv(tmp_path / "results/tables/lidc.csv")
    assert list(lidc["setting"]) == ["baseline", "amp", "baseline", "amp"]
    amp = lidc[(lidc["model"] == "densenet") & (lidc["setting"] == "amp")].iloc[0]
    assert (amp["n_diverged"], amp["n_seeds"]) == (1, 1)
    assert "†" in (tmp_path / "results/tables/rsna.md").read_text()
    rsna = pd.read_csv(tmp_path / "results/tables/rsna.csv")
    assert sorted(rsna["scale"].unique()) == [1, 2]
    for name in ("radar_densenet", "downsampling_densenet", "pareto_rsna", "curves_mlp"):
        assert_pdf(tmp_path / f"figures/{name}.pdf")
        assert_png(tmp_path / f"figures/{name}.png")
    assert (tmp_path / "logs/results/summarize.log").read_text().strip()
    comparisons = pd.read_csv(tmp_path / "results/comparisons/lidc.csv")
    amp = comparisons[(comparisons["model"] == "densenet") & (comparisons["setting"] == "amp")].iloc[0]
    assert (amp["n_pairs"], amp["n_diverged"]) == (1, 1)
    assert "insufficient seeds" in amp["verdict"]
    assert "amp (bf16 autocast, no scaler — CPU)" in (tmp_path / "results/comparisons/rsna.md").read_text()
    recommendations = (tmp_path / "results/recommendations.md").read_text()
    assert "## rsna" in recommendations and "## lidc" in recommendations
    assert "Insufficient seeds" in recommendations  # 2 seeds in this config

    # 3. the self-contained report
    _snakemake(repo, snakemake_exe, tmp_path, *targets, "figures/radar_mlp.pdf",
               options=("--report", "report.html"))
    html = (tmp_path / "report.html").read_text()
    assert len(html) > 100_000
    assert "outward =" in html.lower() and "radar_densenet.png" in html
    for shown in ("pareto_rsna.png", "curves_mlp.png", "recommendations.html", "rsna.html",
                  "hierarchical percentile bootstrap", "Fixed scales, no auto-zoom"):
        assert shown in html, shown
