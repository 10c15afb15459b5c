# Helper functions shared by every rule file. Logic lives in the frugalmed package.
import os.path
import re

import frugalmed.config
from frugalmed.dataset.outputs import dataset_outputs
from frugalmed.grid import expand_runs, select
from frugalmed.host import has_nvidia_gpu

RUNS = expand_runs(config["experiments"])
DATASETS = sorted({run.dataset for run in RUNS})  # the datasets the study trains on
MODELS = sorted({run.model for run in RUNS})
# models run at a scale other than 1 on some dataset: each gets a downsampling figure
DOWNSAMPLING_MODELS = sorted({run.model for run in RUNS if run.scale != 1})
WEIGHTS_DIR = config["train"]["weights_dir"].rstrip("/")


def alternatives(names):
    """A wildcard regex matching exactly these names (nothing, when there are none)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


wildcard_constraints:
    dataset=alternatives(config["datasets"]),
    arch=r"[A-Za-z0-9_.\-]+",
    scale=r"\d+",
    seed=r"\d+",
    # configured names only: a path of an unknown model or setting gets Snakemake's "no rule
    # to produce" message instead of a KeyError from inside an input function
    model=alternatives(config["models"]),
    setting=alternatives(frugalmed.config.SETTINGS),


def train_gpus():
    """The `gpu` resource of the train rule, as a function Snakemake evaluates per job once it
    knows the executor (the Snakefile is parsed before that).

    train.gpu 0 or 1 is taken as it is. `auto`: 1 when a cluster executor runs the job (SLURM
    and the like: the request must not hang on the profile's set-resources entry for train,
    which a `--set-resources train:...` on the command line replaces as a whole), or when this
    host has an NVIDIA device; else 0, so a CPU-only host runs training jobs side by side
    instead of queueing them on --resources gpu=1.
    """
    wanted = config["train"]["gpu"]

    def gpus(wildcards):
        if wanted == "auto":
            n = int(workflow.non_local_exec or has_nvidia_gpu())
        else:
            n = int(wanted)
        if n and _local_run_without_gpu_cap():
            raise WorkflowError(
                "Training jobs ask for a GPU (train.gpu: {}) but this run sets no GPU cap, so they "
                "would share the GPU and contaminate each other's time, energy and memory: "
                "--resources on the command line replaced the default profile's gpu=1. Add it "
                "(e.g. --resources gpu=1 mem_mb=8000), or set train.gpu: 0 to train on the "
                "CPU.".format(wanted)
            )
        return n

    return gpus


def _local_run_without_gpu_cap():
    """A real local run on several cores with no global `gpu` resource (unlimited GPU jobs).

    Only the main Snakemake process schedules jobs side by side; the processes a cluster job
    runs (remote, subprocess) execute one given job and are not checked.
    """
    cap = workflow.global_resources.get("gpu")  # a Resource; its value is None when not given
    return (
        workflow.is_main_process
        and workflow.executor_plugin is not None
        and workflow.local_exec
        and not workflow.dryrun
        and getattr(cap, "value", cap) is None
        and (workflow.cores or 1) > 1
    )


# --- datasets (rules in raw_data.smk and preprocess.smk; logic in frugalmed.config) ---


def dataset_config(dataset):
    """The config block of one dataset."""
    if dataset not in config["datasets"]:
        raise WorkflowError(
            f"no dataset '{dataset}' under `datasets` in the config (known: {sorted(config['datasets'])})"
        )
    return config["datasets"][dataset]


def dataset_kind(dataset):
    """rsna | lidc | table (datasets.<name>.kind; rsna and lidc default to their name)."""
    return frugalmed.config.dataset_kind(dataset, dataset_config(dataset))


def has_dataset(dataset, kind=None):
    """True if a dataset of this name (and kind, when given) is configured."""
    return dataset in config["datasets"] and (kind is None or dataset_kind(dataset) == kind)


def datasets_of_kind(kind):
    """Names of the configured datasets of one kind, in config order."""
    return [name for name in config["datasets"] if dataset_kind(name) == kind]


def dataset_rule(base, dataset):
    """What a dataset's step is called -- `base` (e.g. preprocess_lidc) for the dataset named
    like its kind, `base_<name>` for the others (preprocess_lidc_lidc_r3, preprocess_table_mycohort)."""
    return base if dataset == dataset_kind(dataset) else f"{base}_{dataset}"


def confound_columns(dataset):
    """Manifest columns grouping the dataset's samples (site, scanner): the confound report's and
    the per-group test AUC's columns. datasets.<name>.confound_columns, else the kind's default."""
    return frugalmed.config.confound_columns(config, dataset)


def raw_dir(dataset):
    return dataset_config(dataset)["raw_dir"]


def raw_dir_param(dataset):
    """raw_dir as a rule parameter, evaluated per job. The raw files a preprocessing rule reads
    are not declared inputs one by one (tens of thousands): raw_dir must be reachable from the
    job (a shared file system on a cluster)."""
    folder = raw_dir(dataset)
    return lambda wildcards: folder


def raw_ready_marker(dataset):
    """A file that exists once the dataset's raw DICOMs are complete in raw_dir.

    Synthetic and download rules write it into raw_dir (a folder they fill themselves) as their
    last step. Never for `source: local`: the user's raw_dir is read, never written.
    """
    return f"{raw_dir(dataset)}/.frugalmed_raw_complete"


def local_check_marker(dataset):
    """Where the check of a `source: local` raw_dir records its result (outside raw_dir)."""
    return f"results/raw/{dataset}/local_check.json"


def raw_dir_owner(dataset):
    """The first dataset (config order) with the same raw_dir: its rule fills the folder."""
    folder = os.path.normpath(raw_dir(dataset))
    return next(n for n in config["datasets"] if os.path.normpath(raw_dir(n)) == folder)


def raw_dir_owners(kind, sources):
    """Datasets of `kind` with a `source` in `sources` whose raw_dir no earlier dataset has:
    one raw-data job per folder (raw_data.smk)."""
    return [
        name
        for name in datasets_of_kind(kind)
        if dataset_config(name)["source"] in sources and raw_dir_owner(name) == name
    ]


def raw_data_input(dataset):
    """What tells a dataset's preprocessing that its raw data is complete, as named inputs.

    rsna synthetic/kaggle, lidc synthetic/tcia/idc: the marker the generating or downloading rule
    writes last. rsna local: the user's train.csv (a clear error now if it is absent). lidc
    local: the check rule's record under results/. table: the labels file (checked at planning).
    """
    block, kind = dataset_config(dataset), dataset_kind(dataset)
    if kind == "table":
        return {"labels": block["labels"]}
    if block["source"] != "local":
        return {"raw": raw_ready_marker(dataset)}
    if kind == "lidc":
        return {"raw": local_check_marker(dataset)}
    train_csv = os.path.join(raw_dir(dataset), "train.csv")
    if not os.path.isfile(train_csv):
        raise WorkflowError(
            f"datasets.{dataset}.source is 'local' but {train_csv} does not exist. Put Kaggle's "
            "rsna-breast-cancer-detection files there (train.csv + train_images/{patient_id}/"
            f"{{image_id}}.dcm), point datasets.{dataset}.raw_dir at them, or use source: kaggle "
            "(download) or source: synthetic (generated demo cohort)."
        )
    return {"raw": train_csv}


def data_outputs(dataset):
    """The preprocessed arrays and manifest of one dataset (frugalmed.dataset.outputs)."""
    return dataset_outputs(
        dataset, frugalmed.config.dataset_scales(dataset, dataset_config(dataset))
    )


def train_inputs(wildcards):
    """What one training job reads: its dataset's manifest and the array at its scale."""
    outputs = data_outputs(wildcards.dataset)
    images = outputs.get(f"images_s{wildcards.scale}")
    if images is None:
        scales = frugalmed.config.dataset_scales(wildcards.dataset, dataset_config(wildcards.dataset))
        raise WorkflowError(
            f"results/runs/{wildcards.dataset}/s{wildcards.scale}/...: scale {wildcards.scale} is "
            f"not built for dataset {wildcards.dataset} (its scales: {list(scales)}); add it to "
            f"datasets.{wildcards.dataset}.scales (RSNA, tables) or ask for one of those"
        )
    return {"manifest": outputs["manifest"], "images": images}


def run_metrics(**fields):
    """metrics.json paths of the configured runs whose fields match (e.g. model='densenet')."""
    return [run.metrics_path for run in select(RUNS, **fields)]


def all_targets():
    """Everything the default target builds: summary, tables, comparisons, recommendations,
    figures."""
    targets = ["results/summary.csv", "results/recommendations.md"]
    targets += expand("results/tables/{dataset}.{ext}", dataset=DATASETS, ext=["csv", "md", "tex"])
    targets += expand("results/comparisons/{dataset}.{ext}", dataset=DATASETS, ext=["csv", "md"])
    targets += expand("figures/radar_{model}.pdf", model=MODELS)
    targets += expand("figures/curves_{model}.pdf", model=scale_one_models())
    targets += expand("figures/pareto_{dataset}.pdf", dataset=DATASETS)
    targets += expand("figures/downsampling_{model}.pdf", model=DOWNSAMPLING_MODELS)
    targets += data_figure_targets()
    targets += confound_targets()  # rule confounds, workflow/rules/preprocess.smk
    return targets


# --- results stage helpers (results.smk: tables, comparisons; figures.smk: figures) ---


def run_values(field, **fields):
    """The distinct values of one run field among the configured runs matching `fields`.

    For report captions and figure rules: which settings/seeds/models a target covers.
    Settings come in the contract's order (baseline, amp, bnb8, bnb8_half, amp_bnb8, others).
    """
    from frugalmed.results.summary import setting_order

    values = sorted({getattr(run, field) for run in select(RUNS, **fields)})
    return setting_order(values) if field == "setting" else values


def study_config():
    """The study.* block (statistics, verdicts, flags), defaults filled in by the schema."""
    return dict(config.get("study") or {})


def run_predictions(**fields):
    """predictions.csv of the configured runs whose fields match (rule train writes them)."""
    return [f"{run.directory}/predictions.csv" for run in select(RUNS, **fields)]


def run_epochs(**fields):
    """epochs.csv of the configured runs whose fields match."""
    return [f"{run.directory}/epochs.csv" for run in select(RUNS, **fields)]


def confounds_json(dataset):
    """[results/data/{dataset}/confounds.json] when the dataset has grouping columns (rule
    confounds builds it), else []: the tables, comparisons and recommendations then say that no
    confound report exists."""
    return confound_targets([dataset])


def comparison_inputs(wildcards):
    """One dataset's runs (metrics + predictions), its manifest and confound report."""
    return {
        "metrics": run_metrics(dataset=wildcards.dataset),
        "predictions": run_predictions(dataset=wildcards.dataset),
        "manifest": data_outputs(wildcards.dataset)["manifest"],
        "confounds": confounds_json(wildcards.dataset),
    }


def scale_one_models():
    """Models with runs at scale 1 (the radar and learning-curve figures show scale 1)."""
    return sorted({run.model for run in RUNS if run.scale == 1})


def radar_inputs(wildcards):
    """One model's scale-1 runs (metrics + predictions) and the manifests of their datasets:
    all a radar figure needs, nothing more."""
    runs = select(RUNS, model=wildcards.model, scale=1)
    if not runs:
        raise WorkflowError(
            f"figures/radar_{wildcards.model}.pdf: no configured run of model "
            f"'{wildcards.model}' at scale 1; add it to an experiment in the config"
        )
    datasets = sorted({run.dataset for run in runs})
    return {
        "metrics": [run.metrics_path for run in runs],
        "predictions": [f"{run.directory}/predictions.csv" for run in runs],
        "manifests": [data_outputs(d)["manifest"] for d in datasets],
    }


def curves_inputs(wildcards):
    """One model's scale-1 runs: metrics.json (identity, best epoch) and epochs.csv."""
    runs = select(RUNS, model=wildcards.model, scale=1)
    if not runs:
        raise WorkflowError(
            f"figures/curves_{wildcards.model}.pdf: no configured run of model "
            f"'{wildcards.model}' at scale 1; add it to an experiment in the config"
        )
    return {
        "metrics": [run.metrics_path for run in runs],
        "epochs": [f"{run.directory}/epochs.csv" for run in runs],
    }


def downsampling_datasets(model):
    """Datasets on which `model` runs at a scale other than 1."""
    return sorted({r.dataset for r in select(RUNS, model=model) if r.scale != 1})


def downsampling_settings(model):
    """Settings run at a scale other than 1 for `model` (the downsampling experiment)."""
    from frugalmed.results.summary import setting_order

    return setting_order(sorted({r.setting for r in select(RUNS, model=model) if r.scale != 1}))


def downsampling_metrics(wildcards):
    """metrics.json of the model's runs, every scale, on the datasets and in the settings of
    its downsampling experiment."""
    settings = downsampling_settings(wildcards.model)
    if not settings:
        raise WorkflowError(
            f"figures/downsampling_{wildcards.model}.pdf: model '{wildcards.model}' has no "
            "configured run at a scale other than 1; add one to an experiment's scales"
        )
    datasets = downsampling_datasets(wildcards.model)
    return [
        run.metrics_path
        for run in select(RUNS, model=wildcards.model)
        if run.setting in settings and run.dataset in datasets
    ]


def base_image_sizes(model):
    """Side in px of the scale-1 images of each dataset `model` is downsampled on."""
    sizes = {}
    for dataset in downsampling_datasets(model):
        block = dataset_config(dataset)
        size = block.get("image_size") or block.get("patch_size")
        if size:
            sizes[dataset] = int(size)
    return sizes


# --- data figures helpers (paper Figures 1 and 3; rules in data_figures.smk) ---


def data_figure_targets():
    """PDF and PNG of the data figures of the datasets the study uses (those named rsna and
    lidc, of their own kind; other datasets have no data figure)."""
    names = []
    if "rsna" in DATASETS and has_dataset("rsna", kind="rsna"):
        names += ["rsna_samples", "rsna_age"]
        if len(dataset_config("rsna")["scales"]) > 1:
            names.append("downsampling_examples")
    if "lidc" in DATASETS and has_dataset("lidc", kind="lidc"):
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


def train_threads(wildcards):
    """Cores one training job reserves.

    train.exclusive on local execution: every core Snakemake was given (--cores), so no other
    job (training or not) runs beside it; the job still computes with train.threads. `_cores`
    is the one resource Snakemake always enforces: unlike a custom resource, it cannot be lost
    when `--resources ...` on the command line replaces a profile's `resources`. On a cluster
    the job's node is reserved instead (train_slurm_extra) and threads stay train.threads.
    """
    threads = config["train"]["threads"]
    if config["train"]["exclusive"] and workflow.local_exec:
        cores = getattr(workflow.global_resources.get("_cores"), "value", None)
        if isinstance(cores, int):
            return max(threads, cores)
    return threads


def train_slurm_extra(wildcards):
    """`--exclusive` for training jobs submitted to SLURM when train.exclusive (else none).

    A profile's `set-resources: train: slurm_extra` replaces it: add --exclusive there too.
    The job checks its allocation (scontrol OverSubscribe) and warns when it is shared.
    """
    if config["train"]["exclusive"] and not workflow.local_exec:
        return "--exclusive"
    return None


def train_weights(wildcards):
    """A training job's weights input: the fetched hub weights of its architecture for
    train.pretrained: true (rule fetch_pretrained_weights), a local file for a path, else none."""
    pretrained = config["train"]["pretrained"]
    arch = config["models"][wildcards.model]["arch"]
    if isinstance(pretrained, str):
        return pretrained
    if pretrained is True and arch != "mlp":
        return f"{WEIGHTS_DIR}/{arch}.safetensors"
    return []


def train_checkpoint(wildcards):
    """A training job's resume checkpoint: outside its outputs, so a failed job keeps it."""
    return (
        "results/checkpoints/{dataset}/s{scale}/{model}/{setting}/seed{seed}/last.pt".format(
            **wildcards
        )
    )


def confound_targets(datasets=None):
    """confounds.json of every dataset (of `datasets`, default the study's) with grouping columns."""
    return [
        f"results/data/{dataset}/confounds.json"
        for dataset in (DATASETS if datasets is None else datasets)
        if confound_columns(dataset)
    ]
