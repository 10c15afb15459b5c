"""Properties of the summary and aggregate tables that the study's numbers rest on.

Each test states what a reader of results/summary.csv or the settings table relies on; the
mutation pass of `results_aggregate` (docs/testing.md) found these unguarded.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from results_fakes import write_metrics

from frugalmed.results.aggregate import PEPR_RESOURCES, add_pepr, aggregate
from frugalmed.results.measures import add_measures
from frugalmed.results.summary import REQUIRED_KEYS, load_summary


@pytest.mark.parametrize("written, expected", [
    (True, True), (False, False), ("true", True), ("True", True), (" yes ", True), ("YES", True),
    ("1", True), ("false", False), ("0", False), ("", False), (None, False), (float("nan"), False),
    (1.0, True), (0.0, False), (1, True),
])
def test_diverged_is_read_as_written(tmp_path, written, expected):
    """A run's `diverged` flag as JSON bool, text, number or null reads back as a bool.

    Bug caught: a diverged run written as "true" (or 1.0) read as not diverged, so its absurd
    AUC and cost enter the means; or a null read as diverged, dropping a good run.
    """
    paths = [write_metrics(tmp_path, "rsna", 1, "m", "baseline", 1, diverged=written),
             write_metrics(tmp_path, "rsna", 1, "m", "baseline", 2)]
    summary = load_summary(paths)
    assert summary["diverged"].dtype == bool
    assert summary["diverged"].tolist() == [expected, False]


def test_missing_or_unreadable_numbers_become_nan_and_sources_unknown(tmp_path):
    """Bug caught: one run's null or text metric crashes the results stage, or a null source
    turns into the text 'None'/'nan' in the tables instead of 'unknown'."""
    paths = [write_metrics(tmp_path, "rsna", 1, "m", "baseline", 1, test_auc="n/a",
                           energy_kwh=None, train_time_s=10, energy_source=None,
                           memory_source=None, device=None, saved_activation_bytes="n/a"),
             write_metrics(tmp_path, "rsna", 1, "m", "baseline", 2, train_time_s=12)]
    summary = load_summary(paths)
    assert math.isnan(summary["test_auc"].iloc[0]) and math.isnan(summary["energy_kwh"].iloc[0])
    for col in ("test_auc", "test_accuracy", "best_val_auc", "train_time_s", "energy_kwh",
                "peak_memory_gb"):
        assert summary[col].dtype == float, col  # integers in JSON still compare as floats
    for col in ("energy_source", "memory_source", "device"):
        assert summary[col].tolist()[0] == "unknown", col
    assert aggregate(summary).iloc[0]["activations_mb_n"] == 0


def test_summary_columns_follow_the_contract_whatever_the_json_order(tmp_path):
    """The contract's keys lead the summary in the contract's order, nested ones (state_bytes.*,
    environment.*) at their key's place, even when a metrics.json lists its keys otherwise.

    Bug caught: columns in the file's own order, so readers of summary.csv by position (and the
    docs' column list) see another layout for each job that wrote its keys differently.
    """
    path = write_metrics(tmp_path, "rsna", 1, "m", "baseline", 1, extra_list=[0.5, 0.6])
    record = json.loads(path.read_text())
    path.write_text(json.dumps(dict(reversed(list(record.items())))))
    summary = load_summary([path])
    lead = [c for c in summary.columns if c.split(".")[0] in REQUIRED_KEYS]
    assert list(summary.columns[:len(lead)]) == lead
    assert [c.split(".")[0] for c in lead] == sorted((c.split(".")[0] for c in lead),
                                                      key=REQUIRED_KEYS.index)
    assert {"state_bytes.params", "environment.torch"} <= set(lead)
    assert summary["metrics_path"].iloc[0] == path.as_posix()
    # a list is kept as JSON text, so the CSV cell holds it
    assert summary["extra_list"].iloc[0] == "[0.5, 0.6]"


def _study(tmp_path) -> list:
    paths = []
    for setting, auc in (("amp_bnb8", 0.70), ("baseline", 0.80), ("amp", 0.78)):
        for seed in (10, 1):
            paths.append(write_metrics(tmp_path, "rsna", 1, "m", setting, seed,
                                       test_auc=auc + seed / 1000,
                                       saved_activation_bytes=2_000_000 * (seed == 1) + 4_000_000 * (seed == 10)))
    return paths


def test_rows_are_in_setting_order_then_seed(tmp_path):
    """Bug caught: rows in file order (amp_bnb8 before baseline), so paired tables and
    figures that read the summary in order mismatch settings or seeds."""
    summary = load_summary(_study(tmp_path))
    assert list(zip(summary["setting"], summary["seed"])) == [
        ("baseline", 1), ("baseline", 10), ("amp", 1), ("amp", 10), ("amp_bnb8", 1), ("amp_bnb8", 10)]


def test_aggregate_rows_follow_setting_order_and_have_a_plain_index(tmp_path):
    """Shuffled runs give the same table: settings in the contract's order, index 0..n-1, and no
    stray column. Bug caught: the settings table in first-seen order, or an 'index' column."""
    summary = load_summary(_study(tmp_path))
    table = aggregate(summary.sample(frac=1.0, random_state=3))
    assert table["setting"].tolist() == ["baseline", "amp", "amp_bnb8"]
    assert isinstance(table.index, pd.RangeIndex) and table.index.start == 0
    assert "index" not in table.columns
    assert table.equals(aggregate(summary))


def test_saved_activations_are_reported_in_megabytes(tmp_path):
    """saved_activation_bytes / 1e6 per run, averaged over seeds; NaN (n = 0) for runs from
    before it was recorded. Bug caught: bytes reported as MB (x 1e6), or the column dropped."""
    table = aggregate(load_summary(_study(tmp_path)))
    row = table[table["setting"] == "baseline"].iloc[0]
    assert row["activations_mb_mean"] == pytest.approx(3.0, rel=1e-12)
    assert row["activations_mb_n"] == 2

    old = tmp_path / "old"
    paths = [write_metrics(old, "rsna", 1, "m", "baseline", s) for s in (1, 2)]
    old_row = aggregate(load_summary(paths)).iloc[0]
    assert math.isnan(old_row["activations_mb_mean"]) and old_row["activations_mb_n"] == 0


def test_change_and_pepr_columns_are_numbers_with_nan_where_undefined(tmp_path):
    """A % change without a baseline is NaN, and so is a diverged run's PePR, in float columns.

    Bug caught: None (object columns) where a number is undefined: tables and figures that
    test `np.isnan` or format with `{:.1f}` then fail or print 'None'.
    """
    paths = [write_metrics(tmp_path, "rsna", 1, "m", "amp", s) for s in (1, 2)]
    paths.append(write_metrics(tmp_path, "rsna", 1, "m", "amp", 3, diverged=True))
    summary = load_summary(paths)
    table = aggregate(summary)
    assert table["auc_change_pct"].dtype == float and table["auc_change_pct"].isna().all()
    scored = add_pepr(add_measures(summary, 0.25))
    for col in PEPR_RESOURCES.values():
        assert scored[col].dtype == float, col
        assert scored[col].isna().tolist() == [False, False, True], col


def test_group_columns_name_every_source_and_what_the_used_runs_measured(tmp_path):
    """device lists each device of the group; the memory axis' source is that of the runs the
    means use (not of a diverged run), or of all runs when every one diverged; host load counts
    as recorded only when every run recorded it.

    Bug caught: a group of mixed devices shown as one; the axis labelled 'peak RSS' because a
    diverged run lacked tensor memory; an all-diverged group with no source at all.
    """
    paths = [write_metrics(tmp_path, "rsna", 1, "m", "baseline", 1, device="cpu",
                           tensor_memory_bytes=1e8, host_load={"cpu_other_share": 0.1}),
             write_metrics(tmp_path, "rsna", 1, "m", "baseline", 2, device="cuda",
                           tensor_memory_bytes=1e8, host_load={"cpu_other_share": 0.1}),
             write_metrics(tmp_path, "rsna", 1, "m", "baseline", 3, diverged=True),
             write_metrics(tmp_path, "rsna", 1, "m", "amp", 1, diverged=True,
                           host_load={"cpu_other_share": 0.1}),
             write_metrics(tmp_path, "rsna", 1, "m", "amp", 2, diverged=True,
                           host_load={"cpu_other_share": 0.1})]
    table = aggregate(load_summary(paths)).set_index("setting")
    assert table.loc["baseline", "device"] == "cpu;cuda"
    assert table.loc["baseline", "axis_memory_source"] == "tensor memory"
    assert table.loc["amp", "axis_memory_source"] == "peak RSS"
    assert not table.loc["baseline", "host_load_recorded"]  # seed 3 has none
    assert bool(table.loc["amp", "host_load_recorded"])  # both amp runs have it


def test_measures_already_in_the_summary_are_used_as_given(tmp_path):
    """The workflow derives the per-run measures once, with study.max_host_load; aggregate must
    not re-derive them with its default threshold. Bug caught: runs at 50 % host load counted
    as contended although the study allows 90 %."""
    paths = [write_metrics(tmp_path, "rsna", 1, "m", "baseline", s,
                           host_load={"cpu_other_share": 0.5}) for s in (1, 2)]
    summary = add_measures(load_summary(paths), max_host_load=0.9)
    assert aggregate(summary).iloc[0]["n_contended"] == 0
    assert aggregate(load_summary(paths)).iloc[0]["n_contended"] == 2  # default threshold 0.25
