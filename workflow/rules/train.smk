# train stage: one job per run (dataset x scale x model x setting x seed). Logic: frugalmed.train.


rule train:
    """Train one model under one setting and seed; measure time, energy, memory, state bytes.

    Resumable: a per-epoch checkpoint under results/checkpoints/ (not a declared output, so
    Snakemake keeps it when the job fails) lets a re-started job continue from its last epoch.
    """
    input:
        unpack(train_inputs),
        weights=pretrained_weights(),
    output:
        metrics="results/runs/{dataset}/s{scale}/{model}/{setting}/seed{seed}/metrics.json",
        epochs="results/runs/{dataset}/s{scale}/{model}/{setting}/seed{seed}/epochs.csv",
    log:
        "logs/train/{dataset}/s{scale}/{model}/{setting}/seed{seed}.log",
    params:
        # only what changes the results, so editing threads or mem_mb re-runs nothing
        hyper={
            key: config["train"][key]
            for key in ("epochs", "batch_size", "lr", "patience", "pretrained")
        },
        model=lambda wildcards: config["models"][wildcards.model],
        energy_country=config["train"]["energy_country"],
        num_workers=config["train"]["num_workers"],
        keep_checkpoint=config["train"]["keep_checkpoints"],
        checkpoint=lambda wildcards: train_checkpoint(wildcards),
    threads: config["train"]["threads"]
    resources:
        gpu=train_gpus(),
        mem_mb=config["train"]["mem_mb"],
        runtime=config["train"]["runtime"],
    conda:
        "../../envs/frugalmed.yaml"
    script:
        "../scripts/train.py"
