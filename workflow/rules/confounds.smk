# Data checks: how far a grouping column alone (site, scanner) predicts a dataset's label.
# Logic: frugalmed.confounds. (To be merged into the preprocessing rule files.)


def confound_columns(dataset):
    """The dataset's grouping columns: datasets.{name}.confound_columns, else its kind's default."""
    from frugalmed.confounds import configured_columns

    return configured_columns(dataset, dataset_config(dataset))


def confound_targets():
    """confounds.json of every dataset of the study that has grouping columns."""
    return [
        f"results/data/{dataset}/confounds.json"
        for dataset in DATASETS
        if confound_columns(dataset)
    ]


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
