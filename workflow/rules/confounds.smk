# Data checks: how far a grouping column alone (site, scanner) predicts a dataset's label.
# Logic: frugalmed.confounds. (To be merged into the preprocessing rule files.)


rule confounds:
    """Test AUC of a group-only predictor (each image scored by its group's training-split
    positive share) per grouping column; columns at or above study.confound_auc are flagged."""
    input:
        manifest=lambda wildcards: data_outputs(wildcards.dataset)["manifest"],
    output:
        confounds="results/data/{dataset}/confounds.json",
    log:
        "logs/data/confounds_{dataset}.log",
    params:
        columns=lambda wildcards: confound_columns(wildcards.dataset),
        threshold=config["study"]["confound_auc"],
    threads: 1
    resources:
        gpu=0,
        mem_mb=1000,
        runtime=10,
    localrule: True
    conda:
        "../../envs/frugalmed.yaml"
    script:
        "../scripts/confounds.py"
