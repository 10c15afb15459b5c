# train stage: one job per run (dataset x scale x model x setting x seed). Logic: frugalmed.train.


rule fetch_pretrained_weights:
    """Fetch timm's pretrained weights of one architecture once, for train.pretrained: true.

    A local rule: it runs where Snakemake runs (a login node with network, like the downloads),
    never on a compute node; training jobs then load the file and never touch the network.
    """
    output:
        weights=f"{WEIGHTS_DIR}/{{arch}}.safetensors",
    log:
        "logs/weights/{arch}.log",
    threads: 1
    resources:
        gpu=0,
        mem_mb=4000,
        runtime=30,
    localrule: True
    conda:
        "../../envs/frugalmed.yaml"
    script:
        "../scripts/fetch_weights.py"


rule train:
    """Train one model under one setting and seed; measure time, energy, memory, state bytes,
    host load; score the test split once (predictions.csv, AUC with a patient-bootstrap CI).

    Resumable: a per-epoch checkpoint under results/checkpoints/ (not a declared output, so
    Snakemake keeps it when the job fails) lets a re-started job continue from its last epoch.
    With train.exclusive, a job reserves every core Snakemake has (locally) or its whole node
    (cluster: sbatch --exclusive), so no other job runs beside it (train_threads, train_slurm_extra).
    """
    input:
        unpack(train_inputs),
        weights=train_weights,
    output:
        metrics="results/runs/{dataset}/s{scale}/{model}/{setting}/seed{seed}/metrics.json",
        epochs="results/runs/{dataset}/s{scale}/{model}/{setting}/seed{seed}/epochs.csv",
        predictions="results/runs/{dataset}/s{scale}/{model}/{setting}/seed{seed}/predictions.csv",
    log:
        "logs/train/{dataset}/s{scale}/{model}/{setting}/seed{seed}.log",
    benchmark:
        # Snakemake's own wall time, max RSS and CPU time of the whole job: an independent
        # cross-check of metrics.json (which covers the epochs only, see docs/training.md)
        "results/benchmarks/train/{dataset}/s{scale}/{model}/{setting}/seed{seed}.tsv"
    params:
        # only what changes the results, so editing threads or mem_mb re-runs nothing
        hyper={
            key: config["train"][key]
            for key in ("epochs", "batch_size", "lr", "patience", "pretrained", "deterministic")
        },
        model=lambda wildcards: config["models"][wildcards.model],
        checkpoint=lambda wildcards: train_checkpoint(wildcards),
        # confound columns, energy_country, num_workers, keep_checkpoints and study.* are read
        # from the config by the script: they change how a run is reported or executed, not
        # what it learns, so editing them must not re-train every run
    threads: train_threads
    resources:
        gpu=train_gpus(),
        mem_mb=config["train"]["mem_mb"],
        runtime=config["train"]["runtime"],
        slurm_extra=train_slurm_extra,
    conda:
        "../../envs/frugalmed.yaml"
    script:
        "../scripts/train.py"
