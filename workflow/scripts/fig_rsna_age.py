"""Snakemake script: RSNA age histogram (thin wrapper; logic in frugalmed.figures.rsna_age)."""

from frugalmed.figures.rsna_age import make_rsna_age
from frugalmed.logs import log_to

log_to(snakemake.log[0])  # noqa: F821 - injected by Snakemake
make_rsna_age(
    raw_table_path=snakemake.params.raw_table,  # noqa: F821
    manifest_path=snakemake.input.manifest,  # noqa: F821
    pdf_path=snakemake.output.pdf,  # noqa: F821
    png_path=snakemake.output.png,  # noqa: F821
    max_age=snakemake.params.max_age,  # noqa: F821
    bin_width=snakemake.params.bin_width,  # noqa: F821
    selection_path=snakemake.input.selection,  # noqa: F821
)
