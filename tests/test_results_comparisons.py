"""Paired comparisons with the baseline, recommendations and the checks on predictions files,
on hand-made runs (metrics.json + predictions.csv + epochs.csv) and a hand-made manifest."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from results_fakes import (
    manifest_test_rows, scores_for, write_manifest, write_predictions, write_run,
)

from frugalmed.results import cli
from frugalmed.results.comparisons import compare, score_runs
from frugalmed.results.confounds import read_confounds
from frugalmed.results.measures import add_measures
from frugalmed.results.predictions import PredictionsError, load_test_split, read_predictions
from frugalmed.results.study import Study
from frugalmed.results.summary import load_summary

B = 200  # resamples: enough for the tests, small enough to recompute with scikit-learn
STUDY = {"bootstrap": B, "bootstrap_seed": 7, "noninferiority_margin": 0.02}
SEEDS = (1, 10, 100)


@pytest.fixture
def study(tmp_path):
    """rsna, model m, scale 1: baseline and amp (3 seeds each) and bnb8 (seeds 1, 10 only)."""
    manifest = write_manifest(tmp_path, "rsna")
    test = manifest_test_rows(manifest)
    metrics = []
    for setting, energy in (("baseline", 0.010), ("amp", 0.005), ("bnb8", 0.008)):
        for seed in SEEDS[:2] if setting == "bnb8" else SEEDS:
            metrics.append(write_run(tmp_path, "rsna", 1, "m", setting, seed, test,
                                     energy_kwh=energy * (1 + 0.1 * (seed % 7)),
                                     train_time_s=100.0 * energy / 0.01 + seed % 3,
                                     tensor_memory_bytes=int(2e6 * energy / 0.01)))
    return tmp_path, manifest, test, metrics


def _compare(metrics, manifest, study_cfg=STUDY, confounds=None):
    cfg = Study.from_config(study_cfg)
    summary = add_measures(load_summary(metrics), cfg.max_host_load)
    scores = score_runs(summary, load_test_split(manifest), cfg)
    return compare(summary, scores, cfg, confounds)


def _row(frame, setting):
    rows = frame[frame["setting"] == setting]
    assert len(rows) == 1, frame
    return rows.iloc[0]


def test_delta_auc_and_interval_match_an_independent_recomputation(study):
    """Acceptance: recompute ΔAUC and its interval with plain numpy + scikit-learn from the
    predictions files and the documented draws (docs/results.md, 'Statistics')."""
    root, manifest, test, metrics = study
    comp, _ = _compare(metrics, manifest)
    amp = _row(comp, "amp")

    frame = pd.read_csv(manifest, dtype={"patient_id": str})
    split = frame[frame["split"] == "test"]
    patients = sorted(split["patient_id"].unique())
    column = split["patient_id"].map({p: i for i, p in enumerate(patients)}).to_numpy()
    labels = split["label"].to_numpy()

    read = {}
    for setting in ("amp", "baseline"):
        for seed in SEEDS:
            pred = pd.read_csv(root / f"results/runs/rsna/s1/m/{setting}/seed{seed}/predictions.csv")
            read[setting, seed] = pred.set_index("row").loc[split.index, "prob"].to_numpy()

    def probs(setting, seed):
        return read[setting, seed]

    point = np.mean([roc_auc_score(labels, probs("amp", s)) - roc_auc_score(labels, probs("baseline", s))
                     for s in SEEDS])
    assert amp["delta_auc"] == pytest.approx(point, abs=1e-12)

    draws = np.random.default_rng([7, 0]).integers(0, len(patients), size=(B, len(patients)))
    picks = np.random.default_rng([7, 1]).integers(0, len(SEEDS), size=(B, len(SEEDS)))
    def pairwise_auc(scores, weight):
        """Mann-Whitney over every (positive, negative) pair, ties 1/2: plain numpy."""
        pos, neg = labels == 1, labels == 0
        diff = scores[pos][:, None] - scores[neg][None, :]
        pair_w = weight[pos][:, None] * weight[neg][None, :]
        return ((diff > 0) + 0.5 * (diff == 0)).ravel() @ pair_w.ravel() / pair_w.sum()

    deltas = []
    for b in range(B):
        weight = np.bincount(draws[b], minlength=len(patients))[column]
        if labels[weight > 0].min() == labels[weight > 0].max():
            continue  # one class only: no AUC
        if b < 5:  # the pairwise formula is scikit-learn's weighted AUC
            assert pairwise_auc(probs("amp", 1), weight) == pytest.approx(
                roc_auc_score(labels, probs("amp", 1), sample_weight=weight), abs=1e-12)
        per_seed = [pairwise_auc(probs("amp", s), weight) - pairwise_auc(probs("baseline", s), weight)
                    for s in SEEDS]
        deltas.append(np.mean([per_seed[j] for j in picks[b]]))
    low, high = np.percentile(deltas, [2.5, 97.5])
    assert (amp["delta_auc_ci_low"], amp["delta_auc_ci_high"]) == pytest.approx((low, high), abs=1e-12)
    assert amp["n_pairs"] == 3 and amp["seeds"] == "1 10 100"


def test_copy_of_baseline_is_noninferior_with_zero_delta(study):
    root, manifest, test, metrics = study
    for seed in SEEDS:
        base = pd.read_csv(root / f"results/runs/rsna/s1/m/baseline/seed{seed}/predictions.csv")
        write_predictions(root, "rsna", 1, "m", "amp", seed, test, base["prob"].to_numpy())
    amp = _row(_compare(metrics, manifest)[0], "amp")
    assert amp["delta_auc"] == 0.0
    assert amp["delta_auc_ci_low"] <= 0.0 <= amp["delta_auc_ci_high"]
    assert amp["noninferior"] is True
    assert amp["verdict"].startswith("non-inferior")


def test_inverted_probabilities_are_inferior(study):
    root, manifest, test, metrics = study
    for seed in SEEDS:
        base = pd.read_csv(root / f"results/runs/rsna/s1/m/baseline/seed{seed}/predictions.csv")
        write_predictions(root, "rsna", 1, "m", "amp", seed, test, 1 - base["prob"].to_numpy())
    amp = _row(_compare(metrics, manifest)[0], "amp")
    assert amp["delta_auc_ci_high"] < -STUDY["noninferiority_margin"]
    assert amp["noninferior"] is False
    assert amp["verdict"].startswith("inferior")


def test_two_seeds_get_no_verdict(study):
    root, manifest, test, metrics = study
    bnb8 = _row(_compare(metrics, manifest)[0], "bnb8")
    assert bnb8["n_pairs"] == 2 and bnb8["n_unpaired"] == 1
    assert bnb8["noninferior"] is None
    assert bnb8["verdict"].startswith("insufficient seeds (2 pairs; 3 needed")
    assert "1 unpaired seed(s) excluded" in bnb8["verdict"]


def test_diverged_and_unpaired_seeds_are_counted_never_averaged_in(study, tmp_path):
    root, manifest, test, metrics = study
    # amp seed 100 diverged with absurd predictions: must not reach any number
    write_run(root, "rsna", 1, "m", "amp", 100, test, probs=1 - scores_for(test, 5.0, 0),
              diverged=True, test_auc=None, energy_kwh=99.0)
    comp, settings = _compare(metrics, manifest)
    amp = _row(comp, "amp")
    assert (amp["n_pairs"], amp["n_diverged"], amp["n_unpaired"]) == (2, 1, 0)
    labels = test["label"].to_numpy()

    def run_auc(setting, seed):
        pred = pd.read_csv(root / f"results/runs/rsna/s1/m/{setting}/seed{seed}/predictions.csv")
        return roc_auc_score(labels, pred["prob"])

    expected = np.mean([run_auc("amp", s) - run_auc("baseline", s) for s in (1, 10)])
    assert amp["delta_auc"] == pytest.approx(expected, abs=1e-12)
    assert "1 seed(s) with a diverged run excluded" in amp["verdict"]
    assert _row(settings[settings["setting"] == "amp"], "amp")["n_seeds"] == 2


def test_resource_ratios_are_geometric_means_of_paired_ratios(study):
    root, manifest, test, metrics = study
    amp = _row(_compare(metrics, manifest)[0], "amp")
    # energy: amp 0.005*(1+.1*(s%7)) / baseline 0.010*(1+.1*(s%7)) = 0.5 for every seed
    assert amp["energy_ratio"] == pytest.approx(0.5)
    assert amp["energy_ratio_ci_low"] == pytest.approx(0.5) and amp["energy_ratio_ci_high"] == pytest.approx(0.5)
    # memory: tensor memory (1e6 vs 2e6 bytes), not peak RSS (equal in the fakes)
    assert amp["memory_ratio"] == pytest.approx(0.5)
    assert amp["memory_source"] == "tensor memory"
    times = [(50 + s % 3) / (100 + s % 3) for s in SEEDS]
    assert amp["time_ratio"] == pytest.approx(math.exp(np.mean(np.log(times))))
    assert "uses 0.50× the energy, 0.50× the tensor memory" in amp["verdict"]


def test_contended_runs_are_flagged(study):
    root, manifest, test, metrics = study
    write_run(root, "rsna", 1, "m", "amp", 10, test,
              host_load={"cpu_other_share": 0.6, "gpu_other_util": None, "cpu_count": 2, "method": "t"})
    amp = _row(_compare(metrics, manifest)[0], "amp")
    assert amp["n_contended"] == 1
    assert "1 of 3 pairs measured on a busy host" in amp["verdict"]


def test_old_metrics_without_new_fields_still_compare(tmp_path):
    """metrics.json from before precision, host_load and tensor memory were recorded."""
    manifest = write_manifest(tmp_path, "lidc")
    test = manifest_test_rows(manifest)
    metrics = [write_run(tmp_path, "lidc", 1, "m", s, seed, test, precision=None,
                         tensor_memory_bytes=None, host_load=None,
                         peak_memory_gb=1.0 if s == "baseline" else 0.9)
               for s in ("baseline", "amp") for seed in SEEDS]
    for path in metrics:  # drop the keys altogether, as an older training job wrote them
        record = json.loads(path.read_text())
        for key in ("precision", "tensor_memory_bytes", "host_load"):
            record.pop(key)
        path.write_text(json.dumps(record))
    comp, _ = _compare(metrics, manifest)
    amp = _row(comp, "amp")
    assert amp["label"] == "amp (precision not recorded)"
    assert amp["memory_source"] == "peak RSS" and amp["memory_ratio"] == pytest.approx(0.9)
    assert "host load not recorded" in amp["verdict"]


def test_predictions_must_be_exactly_the_test_split(study):
    """#18.2: a predictions file scoring other rows than the manifest's test split is refused."""
    root, manifest, test, metrics = study
    split = load_test_split(manifest)
    path = root / "results/runs/rsna/s1/m/amp/seed1/predictions.csv"
    good = pd.read_csv(path)
    frame = pd.read_csv(manifest)
    train_row = int(frame.index[frame["split"] == "train"][0])
    bad = good.copy()
    bad.loc[0, "row"] = train_row
    bad.to_csv(path, index=False)
    with pytest.raises(PredictionsError, match=r"amp/seed1/predictions.csv: its rows are not the test split"):
        read_predictions(path, split)
    with pytest.raises(PredictionsError, match="amp/seed1/predictions.csv"):
        _compare(metrics, manifest)
    good.iloc[1:].to_csv(path, index=False)
    with pytest.raises(PredictionsError, match="1 test row"):
        read_predictions(path, split)
    # every test row plus a training row (a test pass that also scored training data)
    extra = pd.concat([good, good.iloc[[0]].assign(row=train_row)], ignore_index=True)
    extra.to_csv(path, index=False)
    with pytest.raises(PredictionsError, match=rf"1 row\(s\) not in the test split \(e\.g\. {train_row}\)"):
        read_predictions(path, split)
    flipped = good.copy()
    flipped.loc[0, "label"] = 1 - flipped.loc[0, "label"]
    flipped.to_csv(path, index=False)
    with pytest.raises(PredictionsError, match="label differs"):
        read_predictions(path, split)
    nan = good.copy()
    nan.loc[0, "prob"] = float("nan")
    nan.to_csv(path, index=False)
    with pytest.raises(PredictionsError, match="finite probabilities"):
        read_predictions(path, split)
    good.sample(frac=1, random_state=0).to_csv(path, index=False)  # any order is fine
    assert read_predictions(path, split) == pytest.approx(good["prob"].to_numpy())


def _confounds(root, dataset="rsna", auc=0.67):
    path = root / f"results/data/{dataset}/confounds.json"
    path.write_text(json.dumps({
        "columns": {"machine_id": {"group_only_auc": auc, "prevalence": {"a": 0.1}, "n": {"a": 3}},
                    "site_id": {"group_only_auc": 0.52, "prevalence": {}, "n": {}}},
        "flagged": ["machine_id"] if auc >= 0.6 else [], "threshold": 0.6}))
    return path


def test_cli_writes_comparisons_and_recommendations(study):
    root, manifest, test, metrics = study
    confounds = _confounds(root)
    out = root / "results/comparisons"
    cli.comparisons(metrics, str(manifest), "rsna", out / "rsna.csv", out / "rsna.md",
                    out / "rsna.html", out / "rsna.settings.csv", study=STUDY, confounds=[str(confounds)])
    csv = pd.read_csv(out / "rsna.csv")
    for column in ("dataset", "model", "scale", "setting", "n_pairs", "n_unpaired", "n_diverged",
                   "delta_auc", "delta_auc_ci_low", "delta_auc_ci_high", "energy_ratio",
                   "energy_ratio_ci_low", "energy_ratio_ci_high", "memory_ratio", "time_ratio",
                   "noninferior", "verdict", "label", "confounds", "n_contended"):
        assert column in csv.columns, column
    assert list(csv["setting"]) == ["amp", "bnb8"]
    assert csv.loc[1, "noninferior"] != csv.loc[1, "noninferior"]  # NaN: no verdict
    md = (out / "rsna.md").read_text()
    assert "amp (bf16 autocast, no scaler — CPU)" in md
    assert "scanner (machine_id)-only predictor reaches test AUC 0.67" in md
    assert "tensor memory, measured from tensors" in md
    assert "<table>" in (out / "rsna.html").read_text()
    settings = pd.read_csv(out / "rsna.settings.csv")
    assert list(settings["setting"]) == ["baseline", "amp", "bnb8"]
    assert (settings["auc_ci_low"] <= settings["auc_mean"]).all()
    assert (settings["auc_mean"] <= settings["auc_ci_high"]).all()

    cli.recommendations([out / "rsna.csv"], [out / "rsna.settings.csv"], root / "rec.md",
                        root / "rec.html", study={**STUDY, "rank_by": "energy"},
                        confounds=[str(confounds)])
    rec = (root / "rec.md").read_text()
    assert "scanner (machine_id)-only predictor reaches test AUC 0.67" in rec
    assert "**Insufficient seeds**" in rec and "bnb8" in rec
    assert "Pareto-optimal over mean AUC, energy, memory, time" in rec


def test_recommendations_rank_noninferior_settings_and_say_when_none_is(study):
    root, manifest, test, metrics = study
    # amp and bnb8 both copies of baseline (non-inferior); bnb8 gets its third seed and is cheaper in time
    for seed in SEEDS:
        base = pd.read_csv(root / f"results/runs/rsna/s1/m/baseline/seed{seed}/predictions.csv")
        write_predictions(root, "rsna", 1, "m", "amp", seed, test, base["prob"].to_numpy())
    metrics = [m for m in metrics if "/bnb8/" not in str(m)]
    metrics += [write_run(root, "rsna", 1, "m", "bnb8", seed, test, energy_kwh=0.0088,
                          train_time_s=30.0, tensor_memory_bytes=int(1.6e6)) for seed in SEEDS]
    for seed in SEEDS:
        base = pd.read_csv(root / f"results/runs/rsna/s1/m/baseline/seed{seed}/predictions.csv")
        write_predictions(root, "rsna", 1, "m", "bnb8", seed, test, base["prob"].to_numpy())
    out = root / "results/comparisons"
    cli.comparisons(metrics, str(manifest), "rsna", out / "rsna.csv", out / "rsna.md",
                    out / "rsna.html", out / "rsna.settings.csv", study=STUDY)

    def table_order(rank_by):
        cli.recommendations([out / "rsna.csv"], [out / "rsna.settings.csv"], root / "rec.md",
                            root / "rec.html", study={**STUDY, "rank_by": rank_by})
        rows = [line for line in (root / "rec.md").read_text().splitlines()
                if line.startswith("| 1 |") or line.startswith("| 2 |")]
        return [row.split("|")[2].strip().split(" ")[0] for row in rows]

    assert table_order("energy") == ["amp", "bnb8"]   # 0.5x vs ~0.8x the energy
    assert table_order("time") == ["bnb8", "amp"]     # bnb8 takes 30 s, amp about 50 s

    for seed in SEEDS:  # now both inverted: nothing is non-inferior
        base = pd.read_csv(root / f"results/runs/rsna/s1/m/baseline/seed{seed}/predictions.csv")
        for setting in ("amp", "bnb8"):
            write_predictions(root, "rsna", 1, "m", setting, seed, test, 1 - base["prob"].to_numpy())
    cli.comparisons(metrics, str(manifest), "rsna", out / "rsna.csv", out / "rsna.md",
                    out / "rsna.html", out / "rsna.settings.csv", study=STUDY)
    cli.recommendations([out / "rsna.csv"], [out / "rsna.settings.csv"], root / "rec.md",
                        root / "rec.html", study=STUDY)
    assert "**No setting is non-inferior** to baseline at margin 0.02" in (root / "rec.md").read_text()


def test_confounds_in_words():
    conf = read_confounds(None, "lidc")
    assert conf.sentences() == [] and "No confound report" in conf.checked_note()


def test_confounds_file_in_a_wrong_layout_names_the_file(tmp_path):
    from frugalmed.results.confounds import ConfoundsError

    path = tmp_path / "confounds.json"
    path.write_text(json.dumps({"flagged": []}))
    with pytest.raises(ConfoundsError, match="confounds.json: not a confound report"):
        read_confounds(path, "rsna")


def test_tiny_or_one_class_test_split_is_said_not_hidden(tmp_path):
    """A demo-sized test split (few patients; or one class only) gives a verdict that says so."""
    manifest = write_manifest(tmp_path, "lidc", n_patients=8)
    test = manifest_test_rows(manifest)
    metrics = [write_run(tmp_path, "lidc", 1, "m", s, seed, test) for s in ("baseline", "amp")
               for seed in SEEDS]
    amp = _row(_compare(metrics, manifest)[0], "amp")
    assert amp["n_test_patients"] == 4
    assert "only 4 test patients: the interval understates test-set variation" in amp["verdict"]

    frame = pd.read_csv(manifest)
    frame.loc[frame["split"] == "test", "label"] = 0
    frame.to_csv(manifest, index=False)
    test = manifest_test_rows(manifest)
    for path in metrics:
        run = json.loads(path.read_text())
        write_predictions(tmp_path, "lidc", 1, "m", run["setting"], run["seed"], test,
                          scores_for(test, 1.0, run["seed"]))
    comp, settings = _compare(metrics, manifest)
    assert _row(comp, "amp")["verdict"] == "no ΔAUC: the test split has one class only"
    assert _row(comp, "amp")["noninferior"] is None
    out = tmp_path / "c"
    cli.comparisons(metrics, str(manifest), "lidc", out / "l.csv", out / "l.md", out / "l.html",
                    out / "l.settings.csv", study=STUDY)
    cli.recommendations([out / "l.csv"], [out / "l.settings.csv"], out / "r.md", out / "r.html", study=STUDY)
    assert "mean test AUC n/a" in (out / "r.md").read_text()


def test_worked_example_is_written_from_a_comparisons_file(study, capsys):
    from frugalmed.results.example import main

    root, manifest, test, metrics = study
    out = root / "results/comparisons"
    cli.comparisons(metrics, str(manifest), "rsna", out / "rsna.csv", out / "rsna.md",
                    out / "rsna.html", out / "rsna.settings.csv", study=STUDY)
    assert main([str(out / "rsna.csv"), "--setting", "amp"]) == 0
    text = capsys.readouterr().out
    row = pd.read_csv(out / "rsna.csv").set_index("setting").loc["amp"]
    assert "**amp (bf16 autocast, no scaler — CPU)**" in text
    assert f"{row['auc_baseline']:.3f}" in text and "0.50× the energy" in text
    assert row["verdict"] in text
