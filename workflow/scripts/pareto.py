"""Rule pareto: one dataset's settings table -> figures/pareto_{dataset}.pdf + .png."""
from frugalmed.logs import log_to
from frugalmed.results.cli import pareto

log_to(snakemake.log[0])
pareto(snakemake.input.settings, snakemake.wildcards.dataset, snakemake.output.pdf,
       snakemake.output.png, confounds=list(snakemake.input.confounds))
