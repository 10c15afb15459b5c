"""Rule downsampling: one model's RSNA runs at every scale -> figures/downsampling_{model}.pdf + .png."""
from frugalmed.logs import log_to
from frugalmed.results.cli import downsampling

log_to(snakemake.log[0])
downsampling(list(snakemake.input.metrics), snakemake.wildcards.model,
             snakemake.output.pdf, snakemake.output.png, snakemake.params.image_size)
