# results stage: every run's metrics.json -> summary, per-dataset tables, radar and
# downsampling figures. Aggregation is cheap, so these rules run locally (no cluster job).


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
        "../../envs/frugalmed.yaml"
    script:
        "../scripts/summarize.py"


rule tables:
    input:
        metrics=lambda wildcards: run_metrics(dataset=wildcards.dataset),
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
    threads: 1
    resources:
        gpu=0,
        mem_mb=1000,
        runtime=10,
    localrule: True
    conda:
        "../../envs/frugalmed.yaml"
    script:
        "../scripts/tables.py"


rule radar:
    input:
        metrics=radar_metrics,
    output:
        pdf=report(
            "figures/radar_{model}.pdf",
            caption="../report/radar.rst",
            category="Figures",
            subcategory="Radar (scale 1)",
            labels={"model": "{model}", "format": "PDF"},
        ),
        png=report(
            "figures/radar_{model}.png",
            caption="../report/radar.rst",
            category="Figures",
            subcategory="Radar (scale 1)",
            labels={"model": "{model}", "format": "PNG"},
        ),
    log:
        "logs/results/radar_{model}.log",
    params:
        datasets=lambda wildcards: run_values("dataset", model=wildcards.model, scale=1),
        settings=lambda wildcards: run_values("setting", model=wildcards.model, scale=1),
        seeds=lambda wildcards: run_values("seed", model=wildcards.model, scale=1),
    threads: 1
    resources:
        gpu=0,
        mem_mb=1000,
        runtime=10,
    localrule: True
    conda:
        "../../envs/frugalmed.yaml"
    script:
        "../scripts/radar.py"


rule downsampling:
    # only the models of the downsampling grid, so figures/downsampling_examples.pdf (a data
    # figure) is never mistaken for a model's curve
    wildcard_constraints:
        model=alternatives(DOWNSAMPLING_MODELS),
    input:
        metrics=downsampling_metrics,
    output:
        pdf=report(
            "figures/downsampling_{model}.pdf",
            caption="../report/downsampling.rst",
            category="Figures",
            subcategory="Downsampling (RSNA)",
            labels={"model": "{model}", "format": "PDF"},
        ),
        png=report(
            "figures/downsampling_{model}.png",
            caption="../report/downsampling.rst",
            category="Figures",
            subcategory="Downsampling (RSNA)",
            labels={"model": "{model}", "format": "PNG"},
        ),
    log:
        "logs/results/downsampling_{model}.log",
    params:
        image_size=dataset_config("rsna")["image_size"] if has_dataset("rsna", kind="rsna") else None,
        settings=lambda wildcards: downsampling_settings(wildcards.model),
        scales=lambda wildcards: run_values("scale", dataset="rsna", model=wildcards.model),
        seeds=lambda wildcards: run_values("seed", dataset="rsna", model=wildcards.model),
    threads: 1
    resources:
        gpu=0,
        mem_mb=1000,
        runtime=10,
    localrule: True
    conda:
        "../../envs/frugalmed.yaml"
    script:
        "../scripts/downsampling.py"
