"""Aggregation, tables and figures of the results stage, on hand-made metrics.json files."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from results_fakes import assert_pdf, assert_png, write_metrics

from frugalmed.results.aggregate import aggregate
from frugalmed.results.downsampling import plot_downsampling
from frugalmed.results.pepr import minmax_normalise, pepr
from frugalmed.results.radar import N_TICKS, nice_ticks, radius_of
from frugalmed.results.summary import MetricsError, load_summary, read_metrics, setting_order
from frugalmed.results.tables import COLUMNS, to_latex, to_markdown, write_tables


@pytest.fixture
def small_study(tmp_path):
    """rsna, model m, scale 1: baseline 3 seeds, amp 2 seeds + 1 diverged seed (absurd values)."""
    paths = []
    for seed, auc, e, t in ((1, 0.80, 0.010, 100.0), (2, 0.82, 0.012, 110.0), (3, 0.84, 0.014, 120.0)):
        paths.append(write_metrics(tmp_path, "rsna", 1, "m", "baseline", seed, test_auc=auc,
                                   energy_kwh=e, peak_memory_gb=2.0, train_time_s=t))
    for seed, auc in ((1, 0.81), (2, 0.79)):
        paths.append(write_metrics(tmp_path, "rsna", 1, "m", "amp", seed, test_auc=auc,
                                   energy_kwh=0.006, peak_memory_gb=1.0, train_time_s=55.0))
    paths.append(write_metrics(tmp_path, "rsna", 1, "m", "amp", 3, diverged=True,
                               test_auc=None, energy_kwh=99.0, peak_memory_gb=99.0,
                               train_time_s=9999.0))
    return paths


def _line(md: str, setting: str) -> str:
    """The Markdown table line of a setting (its cell may carry the precision label)."""
    return next(l for l in md.splitlines()
                if l.startswith("|") and l.split("|")[3].strip().split(" ")[0] == setting)


def _row(table, setting):
    rows = table[table["setting"] == setting]
    assert len(rows) == 1
    return rows.iloc[0]


def test_means_stds_changes_and_pepr_match_hand_computation(small_study):
    table = aggregate(load_summary(small_study))
    base, amp = _row(table, "baseline"), _row(table, "amp")
    # baseline: AUC 0.80 0.82 0.84 -> mean 0.82, sample std (ddof=1) 0.02
    assert base["auc_mean"] == pytest.approx(0.82)
    assert base["auc_std"] == pytest.approx(0.02)
    assert base["energy_kwh_mean"] == pytest.approx(0.012)
    assert base["energy_kwh_std"] == pytest.approx(0.002)
    assert base["memory_gb_std"] == pytest.approx(0.0)
    assert base["time_s_mean"] == pytest.approx(110.0)
    assert base["time_s_std"] == pytest.approx(10.0)
    # amp uses seeds 1 and 2 only: AUC 0.81 0.79 -> mean 0.80, std sqrt(2 * 0.01^2 / 1)
    assert amp["auc_mean"] == pytest.approx(0.80)
    assert amp["auc_std"] == pytest.approx(math.sqrt(2e-4))
    assert amp["energy_kwh_mean"] == pytest.approx(0.006)
    # % change against baseline of the same model/scale
    assert amp["auc_change_pct"] == pytest.approx(100 * (0.80 - 0.82) / 0.82)
    assert amp["energy_kwh_change_pct"] == pytest.approx(-50.0)
    assert amp["memory_gb_change_pct"] == pytest.approx(-50.0)
    assert amp["time_s_change_pct"] == pytest.approx(-50.0)
    assert base["auc_change_pct"] == pytest.approx(0.0)
    # PePR-E: energies of the non-diverged runs 0.010 0.012 0.014 0.006 0.006 -> min 0.006,
    # max 0.014; baseline R = 0.5, 0.75, 1 -> 0.80/1.5, 0.82/1.75, 0.84/2
    expected = [0.80 / 1.5, 0.82 / 1.75, 0.84 / 2.0]
    assert base["pepr_energy_mean"] == pytest.approx(np.mean(expected))
    assert base["pepr_energy_std"] == pytest.approx(np.std(expected, ddof=1))
    assert amp["pepr_energy_mean"] == pytest.approx(0.80)  # R = 0: PePR = P
    # PePR-M: memory 2 (baseline, R = 1) vs 1 (amp, R = 0)
    assert base["pepr_memory_mean"] == pytest.approx(0.82 / 2)
    assert amp["pepr_memory_mean"] == pytest.approx(0.80)
    # PePR-T: times 100 110 120 55 55 -> baseline R = 45/65, 55/65, 1
    expected_t = [0.80 / (1 + 45 / 65), 0.82 / (1 + 55 / 65), 0.84 / 2]
    assert base["pepr_time_mean"] == pytest.approx(np.mean(expected_t))


def test_diverged_run_is_counted_and_excluded(small_study, tmp_path):
    summary = load_summary(small_study)
    table = aggregate(summary)
    amp = _row(table, "amp")
    assert (amp["n_runs"], amp["n_diverged"], amp["n_seeds"]) == (3, 1, 2)
    assert amp["seeds"] == "1 2"
    assert amp["time_s_mean"] == pytest.approx(55.0)  # the diverged 9999 s is not in it
    md = to_markdown(table, summary, "rsna")
    assert "2 (+1 div.)" in md
    assert "m/s1/amp/seed3" in md
    assert "excluded from every mean" in md


def test_all_seeds_diverged_shows_diverged(tmp_path):
    paths = [write_metrics(tmp_path, "lidc", 1, "m", "baseline", 1)]
    paths += [write_metrics(tmp_path, "lidc", 1, "m", "bnb8_half", s, diverged=True,
                            test_auc=float("nan")) for s in (1, 2)]
    summary = load_summary(paths)
    table = aggregate(summary)
    row = _row(table, "bnb8_half")
    assert row["n_seeds"] == 0 and row["n_diverged"] == 2
    assert np.isnan(row["auc_mean"])
    line = next(l for l in to_markdown(table, summary, "lidc").splitlines() if "bnb8_half" in l)
    assert "0 (+2 div.)" in line and line.count("diverged") == len(COLUMNS) - 4


def test_estimated_energy_and_sources_are_marked(tmp_path):
    paths = [write_metrics(tmp_path, "rsna", 1, "m", "baseline", 1, energy_source="nvml",
                           memory_source="cuda_max_allocated"),
             write_metrics(tmp_path, "rsna", 1, "m", "amp", 1, energy_source="estimated-tdp",
                           memory_source="cuda_max_allocated")]
    summary = load_summary(paths)
    table = aggregate(summary)
    assert not _row(table, "baseline")["energy_estimated"]
    assert _row(table, "amp")["energy_estimated"]
    assert _row(table, "amp")["energy_source"] == "estimated-tdp"
    md = to_markdown(table, summary, "rsna")
    lines = {s: _line(md, s) for s in ("baseline", "amp")}
    assert "†" in lines["amp"] and "†" not in lines["baseline"]
    assert "† energy is (at least partly) an estimate (estimated-tdp)" in md
    assert "cuda_max_allocated" in md and "nvml" in md


def test_write_tables_csv_md_tex(small_study, tmp_path):
    summary = load_summary(small_study)
    table = aggregate(summary)
    out = tmp_path / "tables"
    write_tables(table, summary, "rsna", out / "rsna.csv", out / "rsna.md", out / "rsna.tex")
    csv = pd.read_csv(out / "rsna.csv")
    assert list(csv["setting"]) == ["baseline", "amp"]
    assert {"auc_mean", "auc_std", "n_diverged", "pepr_energy_mean", "energy_source",
            "memory_source", "energy_kwh_change_pct"} <= set(csv.columns)
    tex = (out / "rsna.tex").read_text()
    assert r"\begin{tabular}" in tex and r"\bottomrule" in tex
    assert r"$\pm$" in tex and r"(-2.4\%)" in tex  # % escaped, change shown
    assert "0.820 ± 0.020" in (out / "rsna.md").read_text()


def test_latex_escapes_setting_names(tmp_path):
    paths = [write_metrics(tmp_path, "rsna", 1, "m", "baseline", 1),
             write_metrics(tmp_path, "rsna", 1, "m", "bnb8_half", 1)]
    summary = load_summary(paths)
    tex = to_latex(aggregate(summary), summary, "rsna")
    assert r"bnb8\_half" in tex and "bnb8_half" not in tex.replace(r"bnb8\_half", "")


def test_summary_flattens_nested_and_extra_fields(tmp_path):
    paths = [write_metrics(tmp_path, "rsna", 1, "m", "baseline", 1, energy_kwh_gpu=0.5,
                           extra={"nested": {"deep": 3}}),
             write_metrics(tmp_path, "rsna", 1, "m", "baseline", 2)]
    summary = load_summary(paths)
    for col in ("state_bytes.params", "state_bytes.optimizer", "environment.torch",
                "energy_kwh_gpu", "extra.nested.deep", "metrics_path"):
        assert col in summary.columns, col
    assert list(summary.columns[:5]) == ["dataset", "scale", "model", "setting", "seed"]
    assert summary["state_bytes.optimizer"].tolist() == [8000, 8000]
    assert summary["energy_kwh_gpu"].iloc[0] == 0.5 and pd.isna(summary["energy_kwh_gpu"].iloc[1])


def test_bad_metrics_files_fail_with_the_file_named(tmp_path):
    path = write_metrics(tmp_path, "rsna", 1, "m", "baseline", 1)
    record = json.loads(path.read_text())
    del record["energy_source"]
    path.write_text(json.dumps(record))
    with pytest.raises(MetricsError, match=r"seed1/metrics.json.*energy_source"):
        read_metrics(path)
    path.write_text("{not json")
    with pytest.raises(MetricsError, match="not valid JSON"):
        read_metrics(path)
    wrong = write_metrics(tmp_path, "rsna", 1, "m", "amp", 1)
    misplaced = tmp_path / "results/runs/rsna/s1/m/amp/seed7/metrics.json"
    misplaced.parent.mkdir(parents=True)
    misplaced.write_text(wrong.read_text())
    with pytest.raises(MetricsError, match="belongs at results/runs/rsna/s1/m/amp/seed1"):
        read_metrics(misplaced)
    with pytest.raises(MetricsError, match="missing"):
        read_metrics(tmp_path / "nowhere/metrics.json")


def test_setting_order_puts_extra_settings_after_the_papers_five():
    assert setting_order(["zeta", "amp_bnb8", "act8_bnb8", "baseline", "act8", "bnb8", "amp"]) == [
        "baseline", "amp", "bnb8", "amp_bnb8", "act8", "act8_bnb8", "zeta"]


def test_pepr_definition():
    assert minmax_normalise(pd.Series([2.0, 4.0, 6.0])).tolist() == [0.0, 0.5, 1.0]
    assert minmax_normalise(pd.Series([3.0, 3.0])).tolist() == [0.0, 0.0]
    assert pepr(pd.Series([0.9, 0.6]), pd.Series([10.0, 20.0])).tolist() == pytest.approx([0.9, 0.3])


@pytest.mark.parametrize("low,high,floor", [
    (0.61, 0.66, 0.0), (0.95, 0.99, 0.0), (1.2e-4, 4.1e-4, 0.0), (18.7, 126.0, 0.0),
    (0.5, 0.5, 0.0), (2.0, 2.0, 0.0), (-3.0, -1.0, None)])
def test_nice_ticks_cover_the_values_evenly(low, high, floor):
    ticks = nice_ticks(low, high, floor=floor)
    assert len(ticks) == N_TICKS
    assert ticks[0] <= low and ticks[-1] >= high
    assert np.allclose(np.diff(ticks), ticks[1] - ticks[0])
    assert floor is None or ticks[0] >= floor


def test_radar_orientation_outward_is_better():
    ticks = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    auc = radius_of(ticks, higher_is_better=True)
    cost = radius_of(ticks, higher_is_better=False)
    assert auc(3.0) > auc(1.0)      # higher AUC further out
    assert cost(1.0) > cost(3.0)    # lower cost further out
    assert cost(0.0) == pytest.approx(1.0) and auc(4.0) == pytest.approx(1.0)


def _figure_study(tmp_path, settings, scales=(1,)):
    paths = []
    rng = np.random.default_rng(0)
    for dataset in ("rsna", "lidc"):
        for scale in scales if dataset == "rsna" else (1,):
            for i, setting in enumerate(settings):
                for seed in (1, 10):
                    diverged = setting == "bnb8_half" and seed == 10
                    auc = 0.8 - 0.02 * i - 0.03 * np.log2(scale) + 0.01 * rng.random()
                    paths.append(write_metrics(
                        tmp_path, dataset, scale, "densenet", setting, seed,
                        test_auc=None if diverged else auc, diverged=diverged,
                        energy_kwh=1e-3 / (1 + i) / scale**2, peak_memory_gb=2.0 / (1 + i),
                        train_time_s=100.0 / (1 + i) / scale, energy_source="estimated-tdp",
                    ))
    return load_summary(paths)


def test_downsampling_writes_pdf_and_png(tmp_path):
    summary = _figure_study(tmp_path, ["baseline", "amp_bnb8", "bnb8_half"], scales=(1, 2, 4))
    pdf, png = tmp_path / "downsampling_densenet.pdf", tmp_path / "downsampling_densenet.png"
    plot_downsampling(aggregate(summary), summary, "densenet", pdf, png, image_sizes={"rsna": 64})
    assert_pdf(pdf)
    assert_png(png)


def test_mixed_memory_sources_are_lettered(tmp_path):
    paths = [write_metrics(tmp_path, "rsna", 1, "m", "baseline", 1, memory_source="cuda_max_allocated"),
             write_metrics(tmp_path, "rsna", 1, "m", "amp", 1, memory_source="cpu_max_rss")]
    summary = load_summary(paths)
    md = to_markdown(aggregate(summary), summary, "rsna")
    lines = {s: _line(md, s) for s in ("baseline", "amp")}
    assert "<sup>b</sup>" in lines["baseline"] and "<sup>a</sup>" in lines["amp"]
    assert "<sup>a</sup> cpu_max_rss" in md and "<sup>b</sup> cuda_max_allocated" in md
    assert "$^{a}$" in to_latex(aggregate(summary), summary, "rsna")


def test_partly_estimated_energy_counts_as_estimated(tmp_path):
    from frugalmed.results.summary import is_estimated

    assert is_estimated("nvml+estimated-tdp") and is_estimated("estimated-tdp")
    assert not is_estimated("nvml+rapl") and not is_estimated("unavailable")
    paths = [write_metrics(tmp_path, "rsna", 1, "m", "baseline", 1, energy_source="nvml+rapl",
                           energy_detail={"components": {"ram": "estimated-per-gb"}}),
             write_metrics(tmp_path, "rsna", 1, "m", "amp", 1, energy_source="nvml+estimated-tdp",
                           energy_detail={"components": {"ram": "estimated-per-gb"}})]
    summary = load_summary(paths)
    table = aggregate(summary)
    assert list(table["energy_estimated"]) == [False, True]
    md = to_markdown(table, summary, "rsna")
    assert "GPU energy metered through NVML; CPU energy counters (RAPL)" in md
    assert "RAM share" in md


def test_ticks_for_values_equal_up_to_float_noise():
    from frugalmed.results.radar import nice_ticks

    ticks = nice_ticks(0.9978354978354977, 0.9978354978354979, floor=0.0)
    assert ticks[-1] - ticks[0] > 0.01 and ticks[0] <= 0.9978354978354977 <= ticks[-1]


def test_pepr_scope_is_dataset_scale_model(small_study, tmp_path):
    """Adding runs of another model (an unrelated, far more expensive experiment) must not
    change the existing PePR scores (it did when R was normalised over the whole dataset)."""
    before = aggregate(load_summary(small_study))
    extra = [write_metrics(tmp_path, "rsna", 1, "huge", "baseline", s, energy_kwh=50.0,
                           peak_memory_gb=80.0, train_time_s=1e5) for s in (1, 2)]
    after = aggregate(load_summary(small_study + extra))
    after = after[after["model"] == "m"].reset_index(drop=True)
    for col in ("pepr_energy_mean", "pepr_memory_mean", "pepr_time_mean"):
        assert after[col].tolist() == pytest.approx(before[col].tolist()), col
    assert "same dataset, scale and model" in to_markdown(before, load_summary(small_study), "rsna")


@pytest.mark.parametrize("device,precision,expected", [
    ("cpu", {"weights_dtype": "float32", "autocast_dtype": "bfloat16", "grad_scaler": False,
             "setting": {"weights_dtype": "fp32", "autocast": True}},
     "amp (bf16 autocast, no scaler — CPU)"),
    ("cuda", {"weights_dtype": "float32", "autocast_dtype": "float16", "grad_scaler": True,
              "setting": {"weights_dtype": "fp32", "autocast": True}}, "amp"),
    # what ran, not what the name promises: an 'amp' run that recorded no autocast
    ("cpu", {"weights_dtype": "float32", "autocast_dtype": None, "grad_scaler": False,
             "setting": {"weights_dtype": "fp32", "autocast": True}}, "amp (no autocast — CPU)"),
])
def test_labels_say_what_ran(device, precision, expected):
    from frugalmed.results.labels import run_label

    assert run_label({"setting": "amp", "device": device, **{
        f"precision.{k}": v for k, v in precision.items() if k != "setting"},
        **{f"precision.setting.{k}": v for k, v in precision["setting"].items()}}) == expected


def test_labels_of_half_weights_and_act8(tmp_path):
    from results_fakes import cpu_precision

    from frugalmed.results.labels import group_label

    paths = [write_metrics(tmp_path, "rsna", 1, "m", s, 1, precision=cpu_precision(s))
             for s in ("baseline", "bnb8_half", "act8", "bnb8")]
    summary = load_summary(paths)
    labels = {s: group_label(summary[summary["setting"] == s]) for s in summary["setting"]}
    assert labels["baseline"] == "baseline" and labels["bnb8"] == "bnb8"
    assert labels["bnb8_half"] == "bnb8_half (bf16 weights — CPU)"
    assert "gradient quantisation simulated" in labels["act8"] and labels["act8"].endswith("— CPU)")
    md = to_markdown(aggregate(summary), summary, "rsna")
    assert "bnb8_half (bf16 weights — CPU)" in md


def test_tables_flag_busy_hosts_and_show_tensor_memory(tmp_path):
    """#15: a run measured while other processes used the CPU is marked and listed; the memory
    a setting changes (tensor memory) is shown beside peak RSS."""
    busy = {"cpu_other_share": 0.6, "gpu_other_util": None, "cpu_count": 2, "method": "t"}
    calm = {**busy, "cpu_other_share": 0.05}
    paths = [write_metrics(tmp_path, "rsna", 1, "m", "baseline", 1, host_load=calm,
                           tensor_memory_bytes=2_500_000_000),
             write_metrics(tmp_path, "rsna", 1, "m", "amp", 1, host_load=busy,
                           tensor_memory_bytes=1_250_000_000)]
    summary = load_summary(paths)
    table = aggregate(summary)
    md = to_markdown(table, summary, "rsna")
    amp, base = _line(md, "amp"), _line(md, "baseline")
    cells = [c.strip() for c in amp.split("|")]
    assert cells[COLUMNS.index("E (kWh)") + 1].endswith("‡") and cells[COLUMNS.index("T (s)") + 1].endswith("‡")
    assert "‡" not in base
    assert "m/s1/amp/seed1 (60%)" in md
    assert cells[COLUMNS.index("Tensor memory (GB)") + 1].startswith("1.25")
    assert _row(table, "amp")["axis_memory_gb_mean"] == pytest.approx(1.25)
    assert _row(table, "amp")["n_contended"] == 1
    old = load_summary([write_metrics(tmp_path / "old", "rsna", 1, "m", "baseline", 1)])
    assert "Host load not recorded for 1 run(s)" in to_markdown(aggregate(old), old, "rsna")


def test_tables_name_a_flagged_confound(small_study, tmp_path):
    import json as _json

    from frugalmed.results.confounds import read_confounds

    path = tmp_path / "confounds.json"
    path.write_text(_json.dumps({"columns": {"site_id": {"group_only_auc": 0.71}},
                                 "flagged": ["site_id"], "threshold": 0.6}))
    summary = load_summary(small_study)
    md = to_markdown(aggregate(summary), summary, "rsna", read_confounds(path, "rsna"))
    assert "a site (site_id)-only predictor reaches test AUC 0.71 on rsna" in md
