# results figures: radar (P_T, E, memory, T per setting), downsampling, Pareto fronts, learning
# curves. Logic: frugalmed.results. Data figures (the paper's Figures 1 and 3): data_figures.smk.


rule radar:
    input:
        unpack(radar_inputs),
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
        "logs/figures/radar_{model}.log",
    params:
        datasets=lambda wildcards: run_values("dataset", model=wildcards.model, scale=1),
        settings=lambda wildcards: run_values("setting", model=wildcards.model, scale=1),
        seeds=lambda wildcards: run_values("seed", model=wildcards.model, scale=1),
        study=study_config(),
    threads: 1
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    localrule: True
    conda:
        "../../envs/results.yaml"
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
            subcategory="Downsampling",
            labels={"model": "{model}", "format": "PDF"},
        ),
        png=report(
            "figures/downsampling_{model}.png",
            caption="../report/downsampling.rst",
            category="Figures",
            subcategory="Downsampling",
            labels={"model": "{model}", "format": "PNG"},
        ),
    log:
        "logs/figures/downsampling_{model}.log",
    params:
        image_sizes=lambda wildcards: base_image_sizes(wildcards.model),
        datasets=lambda wildcards: downsampling_datasets(wildcards.model),
        settings=lambda wildcards: downsampling_settings(wildcards.model),
        scales=lambda wildcards: run_values("scale", model=wildcards.model),
        seeds=lambda wildcards: run_values("seed", model=wildcards.model),
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
        "../scripts/downsampling.py"


rule pareto:
    """Test AUC against energy and memory, every model and setting of one dataset."""
    input:
        settings="results/comparisons/{dataset}.settings.csv",
        confounds=lambda wildcards: confounds_json(wildcards.dataset),
    output:
        pdf=report(
            "figures/pareto_{dataset}.pdf",
            caption="../report/pareto.rst",
            category="Figures",
            subcategory="Pareto fronts",
            labels={"dataset": "{dataset}", "format": "PDF"},
        ),
        png=report(
            "figures/pareto_{dataset}.png",
            caption="../report/pareto.rst",
            category="Figures",
            subcategory="Pareto fronts",
            labels={"dataset": "{dataset}", "format": "PNG"},
        ),
    log:
        "logs/figures/pareto_{dataset}.log",
    threads: 1
    resources:
        gpu=0,
        mem_mb=1000,
        runtime=10,
    localrule: True
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/pareto.py"


rule curves:
    """Validation AUC and training loss per epoch of one model, one line per setting."""
    wildcard_constraints:
        model=alternatives(MODELS),
    input:
        unpack(curves_inputs),
    output:
        pdf=report(
            "figures/curves_{model}.pdf",
            caption="../report/curves.rst",
            category="Figures",
            subcategory="Learning curves (scale 1)",
            labels={"model": "{model}", "format": "PDF"},
        ),
        png=report(
            "figures/curves_{model}.png",
            caption="../report/curves.rst",
            category="Figures",
            subcategory="Learning curves (scale 1)",
            labels={"model": "{model}", "format": "PNG"},
        ),
    log:
        "logs/figures/curves_{model}.log",
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
        "../../envs/results.yaml"
    script:
        "../scripts/curves.py"
