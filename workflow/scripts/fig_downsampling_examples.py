"""Snakemake script: one RSNA image at every scale (logic in frugalmed.figures.downsampling_examples)."""

import logging

from frugalmed.figures.common import log_to_file
from frugalmed.figures.downsampling_examples import make_downsampling_examples

log_to_file(snakemake.log[0])  # noqa: F821 - injected by Snakemake
try:
    images = {
        int(name.removeprefix("images_s")): path
        for name, path in snakemake.input.items()  # noqa: F821
        if name.startswith("images_s")
    }
    make_downsampling_examples(
        manifest_path=snakemake.input.manifest,  # noqa: F821
        images_paths=images,
        pdf_path=snakemake.output.pdf,  # noqa: F821
        png_path=snakemake.output.png,  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
    )
except Exception:
    logging.exception("downsampling_examples figure failed")
    raise
