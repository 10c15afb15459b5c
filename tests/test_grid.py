from frugalmed.grid import Run, expand_runs, select


def test_union_of_experiments_without_duplicates():
    exps = {
        "main": {"datasets": ["rsna", "lidc"], "models": ["m"], "settings": ["baseline", "amp"],
                 "seeds": [1, 10], "scales": [1]},
        "ds": {"datasets": ["rsna"], "models": ["m"], "settings": ["baseline"], "seeds": [1, 10],
               "scales": [1, 2]},
    }
    runs = expand_runs(exps)
    assert len(runs) == 2 * 2 * 2 + 2  # main grid + the two new scale-2 runs
    assert Run("rsna", 2, "m", "baseline", 10) in runs
    assert runs[0].metrics_path.startswith("results/runs/")
    assert Run("lidc", 1, "m", "amp", 1).metrics_path == "results/runs/lidc/s1/m/amp/seed1/metrics.json"
    assert len(select(runs, dataset="rsna", scale=2)) == 2

