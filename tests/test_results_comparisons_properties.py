"""What the comparisons and settings tables record besides ΔAUC: which runs and pairs count,
the cost ratios, the flags that qualify them, and how the bootstrap saw the test split.

Found unguarded by the mutation pass of `comparisons` (docs/testing.md); each test states the
rule a reader of results/comparisons/ relies on.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest

from results_fakes import manifest_test_rows, write_manifest, write_predictions, write_run

from frugalmed.results.comparisons import CI_METHOD, compare, score_runs
from frugalmed.results.measures import add_measures
from frugalmed.results.predictions import PredictionsError, load_test_split, read_predictions
from frugalmed.results.study import Study
from frugalmed.results.summary import load_summary
from frugalmed.stats.resample import patient_counts

STUDY = Study(bootstrap=100, bootstrap_seed=7, noninferiority_margin=0.02)


def _summary(paths):
    return add_measures(load_summary(paths), STUDY.max_host_load)


@pytest.fixture
def runs(tmp_path):
    """baseline seeds 1, 10, 100; amp seeds 1, 10, 100 with seed 100 diverged, seed 10 on a
    busy host with estimated energy; bnb8 seeds 1 and 5 (5 unpaired), its seed-1 run without
    tensor memory (peak RSS only) and with zero recorded energy."""
    manifest = write_manifest(tmp_path, "rsna")
    test = manifest_test_rows(manifest)
    paths = []
    for seed, energy in ((1, 0.010), (10, 0.012), (100, 0.014)):
        paths.append(write_run(tmp_path, "rsna", 1, "m", "baseline", seed, test, energy_kwh=energy,
                               train_time_s=100.0 + seed, tensor_memory_bytes=4_000_000))
    for seed, energy in ((1, 0.005), (10, 0.003)):
        extra = ({"host_load": {"cpu_other_share": 0.6}, "energy_source": "estimated-tdp"}
                 if seed == 10 else {})
        paths.append(write_run(tmp_path, "rsna", 1, "m", "amp", seed, test, energy_kwh=energy,
                               train_time_s=50.0, tensor_memory_bytes=2_000_000, **extra))
    paths.append(write_run(tmp_path, "rsna", 1, "m", "amp", 100, test, diverged=True, test_auc=None,
                           energy_kwh=9.0, train_time_s=999.0, tensor_memory_bytes=9_000_000))
    paths.append(write_run(tmp_path, "rsna", 1, "m", "bnb8", 1, test, energy_kwh=0.0,
                           train_time_s=80.0, tensor_memory_bytes=None, peak_memory_gb=1.5))
    paths.append(write_run(tmp_path, "rsna", 1, "m", "bnb8", 5, test, energy_kwh=0.009,
                           train_time_s=90.0, tensor_memory_bytes=3_000_000))
    summary = _summary(paths)
    scores = score_runs(summary, load_test_split(manifest), STUDY)
    return summary, scores, manifest


def _row(frame, setting):
    return frame[frame["setting"] == setting].iloc[0]


def test_settings_table_summarises_the_usable_runs_of_each_setting(runs):
    """Bug caught: a diverged run's cost in the mean/min/max, seeds or counts miscounted, the
    memory source, estimated energy or busy-host count lost."""
    summary, scores, _ = runs
    _, settings = compare(summary, scores, STUDY)
    amp = _row(settings, "amp")
    assert (amp["n_runs"], amp["n_diverged"], amp["n_seeds"], amp["seeds"]) == (3, 1, 2, "1 10")
    assert (amp["energy_mean"], amp["energy_min"], amp["energy_max"]) == pytest.approx((0.004, 0.003, 0.005))
    assert amp["time_min"] == amp["time_max"] == 50.0
    assert amp["memory_source"] == "tensor memory" and amp["energy_estimated"] and amp["n_contended"] == 1
    assert amp["label"].startswith("amp")
    base = _row(settings, "baseline")
    assert (base["n_seeds"], base["seeds"], base["energy_estimated"], base["n_contended"]) == (3, "1 10 100", False, 0)
    assert base["memory_mean"] == pytest.approx(0.004)  # 4 MB of tensors, in GB
    assert base["auc_mean"] == pytest.approx(np.mean([scores.point[k] for k in summary.index[:3]]))
    assert _row(settings, "bnb8")["memory_source"] == "peak RSS / tensor memory"


def test_a_setting_whose_runs_all_diverged_has_no_numbers(tmp_path):
    manifest = write_manifest(tmp_path, "rsna")
    test = manifest_test_rows(manifest)
    paths = [write_run(tmp_path, "rsna", 1, "m", "baseline", s, test) for s in (1, 2)]
    paths += [write_run(tmp_path, "rsna", 1, "m", "amp", s, test, diverged=True, test_auc=None) for s in (1, 2)]
    summary = _summary(paths)
    comparisons, settings = compare(summary, score_runs(summary, load_test_split(manifest), STUDY), STUDY)
    amp = _row(settings, "amp")
    assert (amp["n_runs"], amp["n_diverged"], amp["n_seeds"], amp["seeds"]) == (2, 2, 0, "")
    for column in ("auc_mean", "auc_ci_low", "auc_ci_high", "energy_mean", "energy_min", "energy_max"):
        assert math.isnan(amp[column]), column
    assert amp["memory_source"] == "" and not amp["energy_estimated"]
    row = _row(comparisons, "amp")
    assert (row["n_pairs"], row["n_diverged"], row["memory_source"]) == (0, 2, "")
    assert not row["energy_estimated"] and not row["host_load_recorded"]
    for column in ("auc_baseline", "auc_setting", "delta_auc", "delta_auc_ci_low", "delta_auc_ci_high"):
        assert math.isnan(row[column]), column


def test_comparison_rows_count_pairs_and_take_cost_ratios_over_valid_pairs(runs):
    """ΔAUC and the ratios use the seeds both settings finished; a ratio needs both costs
    positive and finite and, for memory, measured the same way. Bug caught: a zero energy or a
    peak-RSS-vs-tensor-memory pair entering the geometric mean, the unpaired or diverged counts
    wrong, the flags taken from runs outside the pairs."""
    summary, scores, _ = runs
    comparisons, _ = compare(summary, scores, STUDY)
    amp = _row(comparisons, "amp")
    assert (amp["n_pairs"], amp["n_unpaired"], amp["n_diverged"], amp["seeds"]) == (2, 0, 1, "1 10")
    assert amp["energy_ratio"] == pytest.approx(math.sqrt(0.005 / 0.010 * 0.003 / 0.012))
    assert amp["memory_ratio"] == pytest.approx(0.5)
    assert amp["time_ratio"] == pytest.approx(math.sqrt(50 / 101 * 50 / 110))
    key = {(r["setting"], r["seed"]): k for k, r in summary.iterrows()}
    assert amp["auc_baseline"] == pytest.approx(np.mean([scores.point[key["baseline", s]] for s in (1, 10)]))
    assert amp["auc_setting"] == pytest.approx(np.mean([scores.point[key["amp", s]] for s in (1, 10)]))
    assert amp["energy_estimated"] and amp["n_contended"] == 1 and amp["host_load_recorded"]
    assert amp["memory_source"] == "tensor memory" and amp["margin"] == 0.02
    assert amp["bootstrap_resamples"] == 100
    assert amp["ci_method"] == CI_METHOD.format(B=100, seed=7)
    bnb8 = _row(comparisons, "bnb8")
    assert (bnb8["n_pairs"], bnb8["n_unpaired"], bnb8["n_diverged"]) == (1, 3, 0)
    for name in ("energy", "memory"):  # zero energy; peak RSS against tensor memory
        assert math.isnan(bnb8[f"{name}_ratio"]), name
    assert bnb8["time_ratio"] == pytest.approx(80 / 101)
    assert not bnb8["energy_estimated"] and bnb8["memory_source"] == "peak RSS / tensor memory"


def test_confounds_travel_with_every_comparison_and_rows_are_ordered(runs, tmp_path):
    """Bug caught: the flagged confounds dropped from the rows, or rows in the order the runs
    happened to be read."""
    from frugalmed.results.confounds import Confounds

    summary, scores, _ = runs
    flagged = Confounds("rsna", None, group_only_auc={"site_id": 0.71}, flagged=("site_id",))
    comparisons, _ = compare(summary.iloc[::-1], scores, STUDY, flagged)
    assert set(comparisons["confounds"]) == {"site_id 0.71"}
    assert comparisons["setting"].tolist() == ["amp", "bnb8"]
    assert "confound flagged (site_id 0.71)" in comparisons["verdict"].iloc[0]
    plain, _ = compare(summary, scores, STUDY)
    assert set(plain["confounds"]) == {""}
    assert list(plain.columns[:4]) == ["dataset", "model", "scale", "setting"]


def _classes_per_resample(split) -> list[set[int]]:
    """The labels present in each of the study's patient resamples, counted here one resample
    at a time (independently of score_runs' vectorised count)."""
    counts = patient_counts(split.n_patients, STUDY.bootstrap, STUDY.bootstrap_seed)
    return [{int(label) for label, patient in zip(split.labels, split.patient_index)
             if weights[patient] > 0} for weights in counts]


@pytest.mark.filterwarnings("ignore:Only one class is present")
def test_the_bootstrap_reports_its_one_class_resamples_and_a_one_class_split(runs, tmp_path):
    """The share of patient resamples with one class only (their AUC is undefined), counted
    independently here resample by resample; a test split of one class is flagged."""
    summary, scores, manifest = runs
    split = load_test_split(manifest)
    one_class = sum(len(classes) < 2 for classes in _classes_per_resample(split))
    assert scores.undefined_share == pytest.approx(one_class / STUDY.bootstrap)
    assert scores.n_patients == split.n_patients and not scores.single_class

    few = tmp_path / "few"
    small = write_manifest(few, "rsna", n_patients=6, seed=3)
    frame = pd.read_csv(small, dtype={"patient_id": str})
    frame.loc[frame["split"] == "test", "label"] = 0
    frame.to_csv(small, index=False)
    test = manifest_test_rows(small)
    probs = np.linspace(0.1, 0.9, len(test))
    paths = [write_run(few, "rsna", 1, "m", "baseline", 1, test, probs=probs, test_auc=None)]
    one = score_runs(_summary(paths), load_test_split(small), STUDY)
    assert one.single_class and one.undefined_share == 1.0


def test_a_recorded_test_auc_that_its_predictions_contradict_is_reported(tmp_path, caplog):
    """metrics.json's test_auc must be what its predictions.csv gives; a difference is logged
    with the file (the predictions are what the statistics use)."""
    manifest = write_manifest(tmp_path, "rsna")
    test = manifest_test_rows(manifest)
    good = write_run(tmp_path, "rsna", 1, "m", "baseline", 1, test)
    bad = write_run(tmp_path, "rsna", 1, "m", "baseline", 2, test, test_auc=0.99)
    caplog.set_level(logging.WARNING, logger="frugalmed.results.comparisons")
    score_runs(_summary([good, bad]), load_test_split(manifest), STUDY)
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "seed2" in warned[0] and "test_auc 0.990000" in warned[0]


# --- the predictions file must be exactly the test split ------------------------------------

@pytest.fixture
def split_and_file(tmp_path):
    """A manifest whose patient ids have leading zeros, and a valid predictions.csv for it."""
    manifest = write_manifest(tmp_path, "rsna", n_patients=12, seed=1)
    frame = pd.read_csv(manifest, dtype={"patient_id": str})
    frame["patient_id"] = [f"00{int(p[1:])}" for p in frame["patient_id"]]
    frame.to_csv(manifest, index=False)
    split = load_test_split(manifest)
    test = frame[frame["split"] == "test"]
    predictions = pd.DataFrame({"row": test.index, "patient_id": test["patient_id"],
                                "label": test["label"], "prob": np.linspace(0, 1, len(test))})
    return split, predictions, tmp_path / "predictions.csv"


def _write(frame, path):
    frame.to_csv(path, index=False)
    return path


def test_the_test_split_keeps_patient_ids_as_text_and_labels_as_integers(split_and_file):
    """Bug caught: '007' read as 7 (then no patient matches, or two patients merge)."""
    split, predictions, path = split_and_file
    assert all(p.startswith("00") for p in split.patients) and split.labels.dtype.kind == "i"
    assert split.manifest.endswith("manifest.csv")
    assert read_predictions(_write(predictions, path), split) == pytest.approx(predictions["prob"].to_numpy())


def test_rows_in_another_order_are_aligned_to_the_manifest(split_and_file):
    split, predictions, path = split_and_file
    shuffled = predictions.sample(frac=1.0, random_state=4)
    assert read_predictions(_write(shuffled, path), split) == pytest.approx(predictions["prob"].to_numpy())


@pytest.mark.parametrize("prob", [0.0, 1.0])
def test_probabilities_of_exactly_zero_or_one_are_accepted(split_and_file, prob):
    split, predictions, path = split_and_file
    predictions["prob"] = prob
    assert (read_predictions(_write(predictions, path), split) == prob).all()


@pytest.mark.parametrize("bad", ["1.0000001", "-0.0001", "nan", "inf", "abc"])
def test_unusable_probabilities_are_refused_unless_the_run_diverged(split_and_file, bad):
    """Bug caught: a probability of 1.2 or NaN entering the AUC; a diverged run's NaN
    predictions refused (its file is still checked, its numbers never used)."""
    split, predictions, path = split_and_file
    predictions["prob"] = predictions["prob"].astype(object)
    predictions.loc[predictions.index[0], "prob"] = bad
    _write(predictions, path)
    with pytest.raises(PredictionsError, match=r"predictions.csv: 'prob' must be finite"):
        read_predictions(path, split)
    read_predictions(path, split, require_probs=False)


@pytest.mark.parametrize("change, message", [
    (lambda f: f.assign(row=f["row"].astype(float) + 0.5), "whole manifest row numbers"),
    (lambda f: f.assign(row=["x"] + f["row"].tolist()[1:]), "whole manifest row numbers"),
    (lambda f: pd.concat([f, f.iloc[:1]]), r"rows \d+ appear more than once"),
    (lambda f: f.drop(columns="label"), r"lacks column\(s\) \['label'\]"),
    (lambda f: f.assign(label=["yes"] + f["label"].tolist()[1:]), "label differs"),
    (lambda f: f.assign(patient_id=[p.lstrip("0") for p in f["patient_id"]]), "patient_id differs"),
    # the same checks when the rows come in another order
    (lambda f: f.assign(label=["yes"] + f["label"].tolist()[1:]).iloc[::-1], "label differs"),
    (lambda f: f.assign(prob=[float("nan")] + f["prob"].tolist()[1:]).iloc[::-1], "'prob' must be finite"),
])
def test_a_file_that_is_not_the_test_split_is_refused_naming_it(split_and_file, change, message):
    split, predictions, path = split_and_file
    _write(change(predictions), path)
    with pytest.raises(PredictionsError, match=message) as caught:
        read_predictions(path, split)
    assert str(path) in str(caught.value)


def test_many_stray_rows_are_listed_three_at_a_time(split_and_file):
    split, predictions, path = split_and_file
    stray = predictions.assign(row=predictions["row"] + 1000)
    with pytest.raises(PredictionsError) as caught:
        read_predictions(_write(stray, path), split)
    first = stray["row"].tolist()[:3]
    assert f"(e.g. {first[0]}, {first[1]}, {first[2]}, ...)" in str(caught.value)
    three = predictions.iloc[:-3]
    with pytest.raises(PredictionsError) as caught:
        read_predictions(_write(three, path), split)
    last = predictions["row"].tolist()[-3:]
    assert f"3 test row(s) missing (e.g. {last[0]}, {last[1]}, {last[2]})." in str(caught.value)


def test_a_manifest_label_that_is_not_0_or_1_is_refused(tmp_path):
    manifest = write_manifest(tmp_path, "rsna")
    frame = pd.read_csv(manifest, dtype={"patient_id": str, "label": str})
    frame.loc[frame.index[frame["split"] == "test"][0], "label"] = "maybe"
    frame.to_csv(manifest, index=False)
    with pytest.raises(PredictionsError, match="test labels must be 0 or 1"):
        load_test_split(manifest)


def test_a_lone_setting_without_baseline_is_not_compared_and_still_summarised(tmp_path):
    """One amp run, no baseline: its verdict says why there is no comparison, and the settings
    table still has its row (one run); a setting whose runs all diverged has NaN numbers.
    Bug caught: a crash on a group without baseline or of a single run."""
    manifest = write_manifest(tmp_path, "rsna")
    test = manifest_test_rows(manifest)
    paths = [write_run(tmp_path, "rsna", 1, "m", "amp", 1, test)]
    summary = _summary(paths)
    comparisons, settings = compare(summary, score_runs(summary, load_test_split(manifest), STUDY), STUDY)
    assert comparisons["verdict"].tolist() == [
        "not compared: no baseline run of this model and scale is configured"]
    assert settings["n_runs"].tolist() == [1] and settings["seeds"].tolist() == ["1"]
    lone = tmp_path / "lone"
    paths = [write_run(lone, "rsna", 1, "m", "amp", 1, test, diverged=True, test_auc=None)]
    summary = _summary(paths)
    _, settings = compare(summary, score_runs(summary, load_test_split(manifest), STUDY), STUDY)
    for column in ("auc_mean", "auc_ci_low", "auc_ci_high"):
        assert isinstance(settings[column].iloc[0], float) and math.isnan(settings[column].iloc[0])


def test_a_zero_baseline_cost_gives_no_ratio(tmp_path):
    """A baseline energy of 0 (a tracker that measured nothing) cannot be divided by."""
    manifest = write_manifest(tmp_path, "rsna")
    test = manifest_test_rows(manifest)
    paths = [write_run(tmp_path, "rsna", 1, "m", "baseline", 1, test, energy_kwh=0.0),
             write_run(tmp_path, "rsna", 1, "m", "amp", 1, test, energy_kwh=0.01)]
    summary = _summary(paths)
    comparisons, _ = compare(summary, score_runs(summary, load_test_split(manifest), STUDY), STUDY)
    assert math.isnan(comparisons["energy_ratio"].iloc[0])


def test_tables_do_not_depend_on_the_order_of_the_runs(runs, tmp_path):
    """The same runs listed in another order (index relabelled) give the same numbers; groups
    come out sorted by dataset, model and scale. Bug caught: seeds matched to bootstrap draws by
    their position in the summary, or rows in the order the files were read."""
    summary, scores, manifest = runs
    comparisons, settings = compare(summary, scores, STUDY)
    other = tmp_path / "other"
    test = manifest_test_rows(manifest)
    extra = [write_run(other, "rsna", 1, "a", s, 1, test) for s in ("baseline", "amp")]
    shuffled = pd.concat([summary.iloc[::-1], _summary(extra)]).reset_index(drop=True)
    scores2 = score_runs(shuffled, load_test_split(manifest), STUDY)
    comparisons2, settings2 = compare(shuffled, scores2, STUDY)
    assert comparisons2["model"].tolist() == ["a", "m", "m"]
    assert settings2["model"].tolist()[0] == "a"
    pd.testing.assert_frame_equal(comparisons2.iloc[1:].reset_index(drop=True), comparisons,
                                  check_dtype=False)
    pd.testing.assert_frame_equal(settings2[settings2["model"] == "m"].reset_index(drop=True), settings,
                                  check_dtype=False)


def test_probabilities_are_required_of_finished_runs_only(tmp_path):
    """A diverged run's predictions.csv may hold NaN (its numbers are never used, its rows are
    still checked); a finished run's may not."""
    manifest = write_manifest(tmp_path, "rsna")
    test = manifest_test_rows(manifest)
    nan = np.full(len(test), np.nan)
    paths = [write_run(tmp_path, "rsna", 1, "m", "baseline", 1, test),
             write_run(tmp_path, "rsna", 1, "m", "amp", 1, test, diverged=True, test_auc=None)]
    write_predictions(tmp_path, "rsna", 1, "m", "amp", 1, test, nan)
    scores = score_runs(_summary(paths), load_test_split(manifest), STUDY)
    assert len(scores.point) == 1
    bad = tmp_path / "bad"
    paths = [write_run(bad, "rsna", 1, "m", "baseline", 1, test)]
    write_predictions(bad, "rsna", 1, "m", "baseline", 1, test, nan)
    with pytest.raises(PredictionsError, match="'prob' must be finite"):
        score_runs(_summary(paths), load_test_split(manifest), STUDY)


def test_one_class_resamples_of_a_small_split_are_counted(tmp_path):
    """Two test patients, one positive and one negative: a patient resample misses either class
    about half the time (their AUC is undefined); the share is counted independently, resample
    by resample, and both kinds of one-class resample occur."""
    manifest = write_manifest(tmp_path, "rsna", n_patients=4, seed=2)
    frame = pd.read_csv(manifest, dtype={"patient_id": str})
    is_test = frame["split"] == "test"
    test_patients = sorted(frame.loc[is_test, "patient_id"].unique())
    assert len(test_patients) == 2
    frame.loc[is_test, "label"] = (frame.loc[is_test, "patient_id"] == test_patients[0]).astype(int)
    frame.to_csv(manifest, index=False)
    test = manifest_test_rows(manifest)
    paths = [write_run(tmp_path, "rsna", 1, "m", "baseline", 1, test)]
    split = load_test_split(manifest)
    scores = score_runs(_summary(paths), split, STUDY)
    present = _classes_per_resample(split)
    assert {0} in present and {1} in present
    one_class = sum(len(classes) < 2 for classes in present)
    assert 0 < one_class < STUDY.bootstrap
    assert scores.undefined_share == pytest.approx(one_class / STUDY.bootstrap)
