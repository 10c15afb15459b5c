"""Snakemake script of rule `train`: one training run (frugalmed.train.run)."""

from pathlib import Path

from frugalmed.logs import log_to
from frugalmed.train.run import RunSpec, train_run

log_to(snakemake.log[0])

wc, hyper, model = snakemake.wildcards, snakemake.params.hyper, snakemake.params.model
train_run(
    RunSpec(
        dataset=wc.dataset,
        scale=int(wc.scale),
        model=wc.model,
        setting=wc.setting,
        seed=int(wc.seed),
        arch=model["arch"],
        model_kwargs=dict(model.get("kwargs") or {}),
        manifest=snakemake.input.manifest,
        images=snakemake.input.images,
        metrics_path=snakemake.output.metrics,
        epochs_path=snakemake.output.epochs,
        checkpoint_path=snakemake.params.checkpoint,
        epochs=hyper["epochs"],
        batch_size=hyper["batch_size"],
        lr=hyper["lr"],
        patience=hyper["patience"],
        pretrained=hyper["pretrained"],
        threads=snakemake.threads,
        num_workers=snakemake.params.num_workers,
        energy_country=snakemake.params.energy_country,
        use_gpu=int(snakemake.resources.get("gpu", 0)) >= 1,
        keep_checkpoint=snakemake.params.keep_checkpoint,
        repo_dir=str(Path(snakemake.scriptdir).parents[1]),
    )
)
