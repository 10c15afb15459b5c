# results stage: every run's metrics.json and predictions.csv -> summary, per-dataset tables,
# paired comparisons with the baseline, recommendations. Figures: figures.smk.
# Aggregation is cheap, so these rules run locally (no cluster job).


rule summarize:
    input:
        metrics=run_metrics(),
    output:
        summary=report(
            "results/summary.csv",
            caption="../report/summary.rst",
            category="Tables",
            labels={"table": "all runs (summary.csv)"},
        ),
    log:
        "logs/results/summarize.log",
    params:
        datasets=DATASETS,
        models=MODELS,
        settings=run_values("setting"),
        seeds=run_values("seed"),
    threads: 1
    resources:
        gpu=0,
        mem_mb=1000,
        runtime=10,
    localrule: True
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/summarize.py"


rule tables:
    input:
        metrics=lambda wildcards: run_metrics(dataset=wildcards.dataset),
        confounds=lambda wildcards: confounds_json(wildcards.dataset),
    output:
        csv=report(
            "results/tables/{dataset}.csv",
            caption="../report/tables.rst",
            category="Tables",
            labels={"table": "{dataset}"},
        ),
        md="results/tables/{dataset}.md",
        tex="results/tables/{dataset}.tex",
    log:
        "logs/results/tables_{dataset}.log",
    params:
        models=lambda wildcards: run_values("model", dataset=wildcards.dataset),
        settings=lambda wildcards: run_values("setting", dataset=wildcards.dataset),
        seeds=lambda wildcards: run_values("seed", dataset=wildcards.dataset),
        scales=lambda wildcards: run_values("scale", dataset=wildcards.dataset),
        study=study_config(),
    threads: 1
    resources:
        gpu=0,
        mem_mb=1000,
        runtime=10,
    localrule: True
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/tables.py"


rule comparisons:
    """Each setting against baseline of the same dataset, model and scale, paired by seed:
    ΔAUC with a hierarchical bootstrap interval, resource ratios, non-inferiority verdict."""
    input:
        unpack(comparison_inputs),
    output:
        csv=report(
            "results/comparisons/{dataset}.csv",
            caption="../report/comparisons.rst",
            category="Comparisons",
            labels={"dataset": "{dataset}", "format": "CSV"},
        ),
        html=report(
            "results/comparisons/{dataset}.html",
            caption="../report/comparisons.rst",
            category="Comparisons",
            labels={"dataset": "{dataset}", "format": "table"},
        ),
        md="results/comparisons/{dataset}.md",
        settings="results/comparisons/{dataset}.settings.csv",
    log:
        "logs/results/comparisons_{dataset}.log",
    params:
        study=study_config(),
        seeds=lambda wildcards: run_values("seed", dataset=wildcards.dataset),
        settings=lambda wildcards: run_values("setting", dataset=wildcards.dataset),
    threads: 1
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    localrule: True
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/comparisons.py"


rule recommendations:
    """Per dataset x model x scale: the non-inferior settings ranked by study.rank_by, the
    Pareto-optimal settings, and plain statements where nothing qualifies."""
    input:
        comparisons=expand("results/comparisons/{dataset}.csv", dataset=DATASETS),
        settings=expand("results/comparisons/{dataset}.settings.csv", dataset=DATASETS),
        # an input function: evaluated once every rule file is read, so the data stage's
        # confound rule is seen wherever it is included
        confounds=lambda wildcards: [p for dataset in DATASETS for p in confounds_json(dataset)],
    output:
        md="results/recommendations.md",
        html=report(
            "results/recommendations.html",
            caption="../report/recommendations.rst",
            category="Recommendations",
            labels={"document": "recommendations"},
        ),
    log:
        "logs/results/recommendations.log",
    params:
        study=study_config(),
    threads: 1
    resources:
        gpu=0,
        mem_mb=1000,
        runtime=10,
    localrule: True
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/recommendations.py"
