"""Rule downsampling: one model's RSNA runs at every scale -> figures/downsampling_{model}.pdf + .png."""
from frugalmed.results.cli import downsampling, setup_logging

setup_logging(snakemake.log[0])
downsampling(list(snakemake.input.metrics), snakemake.wildcards.model,
             snakemake.output.pdf, snakemake.output.png, snakemake.params.image_size)
