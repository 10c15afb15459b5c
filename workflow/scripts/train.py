"""Snakemake script of rule `train`: one training run (frugalmed.train.run)."""

from pathlib import Path

from frugalmed.logs import log_to
from frugalmed.train.run import RunSpec, train_run

log_to(snakemake.log[0])

wc, hyper, model = snakemake.wildcards, snakemake.params.hyper, snakemake.params.model
train = snakemake.config["train"]
study = snakemake.config.get("study", {})
weights = snakemake.input.get("weights") or []
weights = [weights] if isinstance(weights, str) else list(weights)
# With train.exclusive the rule reserves every core (so nothing runs beside it); the job still
# computes with train.threads, the number the study reports.
threads = min(snakemake.threads, train["threads"]) if train["exclusive"] else snakemake.threads
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
        predictions_path=snakemake.output.predictions,
        checkpoint_path=snakemake.params.checkpoint,
        epochs=hyper["epochs"],
        batch_size=hyper["batch_size"],
        lr=hyper["lr"],
        patience=hyper["patience"],
        pretrained=hyper["pretrained"],
        hub_weights=weights[0] if hyper["pretrained"] is True and weights else None,
        deterministic=hyper["deterministic"],
        threads=threads,
        num_workers=train["num_workers"],
        energy_country=train["energy_country"],
        use_gpu=int(snakemake.resources.get("gpu", 0)) >= 1,
        keep_checkpoint=train["keep_checkpoints"],
        # Read from the config, not params: they change how the test predictions are
        # summarised, not the training, so editing them must not re-train every run.
        confound_columns=list(snakemake.config["datasets"][wc.dataset]["confound_columns"]),
        bootstrap=study.get("bootstrap", 2000),
        bootstrap_seed=study.get("bootstrap_seed", 0),
        exclusive=train["exclusive"],
        progress_every_s=train.get("progress_every_s", 60),
        repo_dir=str(Path(snakemake.scriptdir).parents[1]),
    )
)
