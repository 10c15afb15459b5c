"""Snakemake script: one RSNA image at every scale (logic in frugalmed.figures.downsampling_examples)."""

from frugalmed.figures.downsampling_examples import make_downsampling_examples
from frugalmed.logs import log_to

log_to(snakemake.log[0])  # noqa: F821 - injected by Snakemake
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
