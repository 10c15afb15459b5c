"""Where a dataset's preprocessed outputs live: one folder per dataset name."""

from __future__ import annotations

from typing import Iterable

DATA_DIR = "results/data/{dataset}"

#: The columns every manifest starts with, whatever the kind (docs/interface.md).
MANIFEST_FIRST = ("sample_id", "patient_id", "split", "label", "source_file")
#: The columns of every rejects.csv.
REJECT_COLUMNS = ("source_file", "reason", "detail")


def dataset_outputs(dataset: str, scales: Iterable[int]) -> dict[str, str]:
    """Named output paths of one dataset: manifest, rejects, selection and images_s{scale}.

    The keys are the named outputs of every preprocessing rule and what the training rule,
    the figures and the tests look up (e.g. ``dataset_outputs("lidc", [1])["images_s1"]``).
    """
    folder = DATA_DIR.format(dataset=dataset)
    return {
        "manifest": f"{folder}/manifest.csv",
        "rejects": f"{folder}/rejects.csv",
        "selection": f"{folder}/selection.json",
        **{f"images_s{s}": f"{folder}/images_s{s}.npy" for s in scales},
    }


def image_outputs(outputs: dict[str, str]) -> dict[int, str]:
    """{scale: path} of the images_s{scale} entries of a dataset_outputs() mapping."""
    return {int(key[len("images_s"):]): path for key, path in outputs.items()
            if key.startswith("images_s")}
