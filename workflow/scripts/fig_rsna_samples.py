"""Snakemake script: RSNA sample grid (thin wrapper; logic in frugalmed.figures.rsna_samples)."""

from frugalmed.figures.rsna_samples import make_rsna_samples
from frugalmed.logs import log_to

log_to(snakemake.log[0])  # noqa: F821 - injected by Snakemake
make_rsna_samples(
    manifest_path=snakemake.input.manifest,  # noqa: F821
    images_path=snakemake.input.images,  # noqa: F821
    pdf_path=snakemake.output.pdf,  # noqa: F821
    png_path=snakemake.output.png,  # noqa: F821
    raw_table_path=snakemake.params.raw_table,  # noqa: F821
    n=snakemake.params.n,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    label_name=snakemake.params.label,  # noqa: F821
)
