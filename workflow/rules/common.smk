# Helper functions shared by every rule file. Logic lives in the frugalmed package.
import os.path
import re

from frugalmed.confounds import configured_columns
from frugalmed.grid import expand_runs, select
from frugalmed.host import has_nvidia_gpu

RUNS = expand_runs(config["experiments"])
DATASETS = sorted({run.dataset for run in RUNS})
MODELS = sorted({run.model for run in RUNS})
DOWNSAMPLING_MODELS = sorted(
    {run.model for run in RUNS if run.dataset == "rsna" and run.scale != 1}
)


wildcard_constraints:
    dataset="rsna|lidc",
    scale=r"\d+",
    seed=r"\d+",
    model=r"[A-Za-z0-9_\-]+",
    setting=r"[A-Za-z0-9_]+",


def alternatives(names):
    """A wildcard regex matching exactly these names (nothing, when there are none)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


def train_gpus():
    """GPUs one training job asks for (train.gpu): 1 or 0, or `auto`: 1 where this host has an
    NVIDIA device. A CPU-only host then runs training jobs side by side instead of queueing
    them on `--resources gpu=1`; cluster profiles set gpu explicitly for the train rule."""
    wanted = config["train"]["gpu"]
    if wanted == "auto":
        return int(has_nvidia_gpu())
    return int(wanted)


def dataset_config(dataset):
    """The config block of one dataset."""
    return config["datasets"][dataset]


def raw_dir(dataset):
    return dataset_config(dataset)["raw_dir"]


def raw_ready_marker(dataset):
    """A file that exists once the dataset's raw DICOMs are complete in raw_dir.

    Synthetic and download rules write it as their last step; for `source: local` the user's
    raw_dir is taken as it is (RSNA: its train.csv; LIDC: the marker is written by a check rule).
    """
    return f"{raw_dir(dataset)}/.frugalmed_raw_complete"


def data_outputs(dataset):
    """The preprocessed arrays and manifest of one dataset."""
    scales = dataset_config("rsna")["scales"] if dataset == "rsna" else [1]
    return {
        "manifest": f"results/data/{dataset}/manifest.csv",
        "rejects": f"results/data/{dataset}/rejects.csv",
        "selection": f"results/data/{dataset}/selection.json",
        **{f"images_s{s}": f"results/data/{dataset}/images_s{s}.npy" for s in scales},
    }


def train_inputs(wildcards):
    """What one training job reads: its dataset's manifest and the array at its scale."""
    outputs = data_outputs(wildcards.dataset)
    return {
        "manifest": outputs["manifest"],
        "images": outputs[f"images_s{wildcards.scale}"],
    }


def run_metrics(**fields):
    """metrics.json paths of the configured runs whose fields match (e.g. model='densenet')."""
    return [run.metrics_path for run in select(RUNS, **fields)]


def all_targets():
    """Everything the default target builds: summary, tables, figures."""
    targets = ["results/summary.csv"]
    targets += expand("results/tables/{dataset}.{ext}", dataset=DATASETS, ext=["csv", "md", "tex"])
    targets += expand("figures/radar_{model}.pdf", model=MODELS)
    targets += expand("figures/downsampling_{model}.pdf", model=DOWNSAMPLING_MODELS)
    targets += data_figure_targets()
    targets += confound_targets()  # workflow/rules/confounds.smk
    return targets


# --- results stage helpers (aggregation, tables, figures) ---


def run_values(field, **fields):
    """The distinct values of one run field among the configured runs matching `fields`.

    For report captions and figure rules: which settings/seeds/models a target covers.
    Settings come in the contract's order (baseline, amp, bnb8, bnb8_half, amp_bnb8, others).
    """
    from frugalmed.results.summary import setting_order

    values = sorted({getattr(run, field) for run in select(RUNS, **fields)})
    return setting_order(values) if field == "setting" else values


def radar_metrics(wildcards):
    """metrics.json of one model's scale-1 runs: all a radar figure needs, nothing more."""
    paths = run_metrics(model=wildcards.model, scale=1)
    if not paths:
        raise WorkflowError(
            f"figures/radar_{wildcards.model}.pdf: no configured run of model "
            f"'{wildcards.model}' at scale 1; add it to an experiment in the config"
        )
    return paths


def downsampling_settings(model):
    """Settings run on RSNA at a scale other than 1 for `model` (the downsampling experiment)."""
    from frugalmed.results.summary import setting_order

    return setting_order(
        sorted({r.setting for r in select(RUNS, dataset="rsna", model=model) if r.scale != 1})
    )


def downsampling_metrics(wildcards):
    """metrics.json of the model's RSNA runs, every scale, in the downsampling settings."""
    settings = downsampling_settings(wildcards.model)
    if not settings:
        raise WorkflowError(
            f"figures/downsampling_{wildcards.model}.pdf: model '{wildcards.model}' has no "
            "configured RSNA run at a scale other than 1; add one to an experiment's scales"
        )
    return [
        run.metrics_path
        for run in select(RUNS, dataset="rsna", model=wildcards.model)
        if run.setting in settings
    ]


# --- data figures helpers (paper Figures 1 and 3; rules in data_figures.smk) ---


def data_figure_targets():
    """PDF and PNG of the data figures of the datasets the study uses."""
    names = []
    if "rsna" in DATASETS:
        names += ["rsna_samples", "rsna_age"]
        if len(dataset_config("rsna")["scales"]) > 1:
            names.append("downsampling_examples")
    if "lidc" in DATASETS:
        names.append("lidc_samples")
    return expand("figures/{name}.{ext}", name=names, ext=["pdf", "png"])


def rsna_base_images():
    """The RSNA array at the smallest configured scale (the base size when scale 1 is configured)."""
    scale = min(dataset_config("rsna")["scales"])
    return data_outputs("rsna")[f"images_s{scale}"]


def rsna_scale_images(wildcards):
    """images_s{scale}.npy of every configured RSNA scale, named images_s{scale}."""
    return {k: v for k, v in data_outputs("rsna").items() if k.startswith("images_s")}


def data_figure_report(name, title, fmt):
    """Wrap a data figure for `snakemake --report` (category Data, caption beside the rule files)."""
    return report(
        f"figures/{name}.{fmt}",
        caption=f"../report/data_{name}.rst",
        category="Data",
        labels={"figure": title, "format": fmt.upper()},
    )


def train_checkpoint(wildcards):
    """A training job's resume checkpoint: outside its outputs, so a failed job keeps it."""
    return (
        "results/checkpoints/{dataset}/s{scale}/{model}/{setting}/seed{seed}/last.pt".format(
            **wildcards
        )
    )


def pretrained_weights():
    """train.pretrained when it is a local weights file (an input, so new weights re-train); else []."""
    pretrained = config["train"]["pretrained"]
    return pretrained if isinstance(pretrained, str) else []


# --- RSNA helpers (rules in synthetic.smk, download.smk, rsna.smk) ---


def rsna_raw_input(wildcards):
    """What tells preprocess_rsna that raw_dir is complete.

    synthetic / kaggle: the marker that the generating step writes last. local: the user's raw_dir is taken
    as it is, so its train.csv; a clear error (not a missing-rule message) if it is absent.
    """
    if dataset_config("rsna")["source"] != "local":
        return {"raw": raw_ready_marker("rsna")}
    train_csv = os.path.join(raw_dir("rsna"), "train.csv")
    if not os.path.isfile(train_csv):
        raise WorkflowError(
            f"datasets.rsna.source is 'local' but {train_csv} does not exist. Put Kaggle's "
            "rsna-breast-cancer-detection files there (train.csv + train_images/{patient_id}/"
            "{image_id}.dcm), point datasets.rsna.raw_dir at them, or use source: kaggle "
            "(download) or source: synthetic (generated demo cohort)."
        )
    return {"raw": train_csv}


# --- data checks helpers (rule in confounds.smk) ---


def confound_columns(dataset):
    """The dataset's grouping columns: datasets.{name}.confound_columns, else its kind's default."""
    return configured_columns(dataset, dataset_config(dataset))


def confound_targets():
    """confounds.json of every dataset of the study that has grouping columns."""
    return [
        f"results/data/{dataset}/confounds.json"
        for dataset in DATASETS
        if confound_columns(dataset)
    ]
