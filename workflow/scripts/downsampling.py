"""Rule downsampling: one model's runs at every scale -> figures/downsampling_{model}.pdf + .png."""
from frugalmed.logs import log_to
from frugalmed.results.cli import downsampling

log_to(snakemake.log[0])
downsampling(list(snakemake.input.metrics), snakemake.wildcards.model,
             snakemake.output.pdf, snakemake.output.png,
             image_sizes=dict(snakemake.params.image_sizes), study=snakemake.params.study)
