"""Rule radar: one model's scale-1 runs -> figures/radar_{model}.pdf + .png."""
from frugalmed.logs import log_to
from frugalmed.results.cli import radar

log_to(snakemake.log[0])
radar(list(snakemake.input.metrics), snakemake.wildcards.model,
      snakemake.output.pdf, snakemake.output.png)
