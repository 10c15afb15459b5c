# Helper functions shared by every rule file. Logic lives in the frugalmed package.
from frugalmed.grid import expand_runs, select

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
    return targets
