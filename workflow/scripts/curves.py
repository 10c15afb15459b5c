"""Rule curves: one model's scale-1 runs (epochs.csv) -> figures/curves_{model}.pdf + .png."""
from frugalmed.logs import log_to
from frugalmed.results.cli import curves

log_to(snakemake.log[0])
curves(list(snakemake.input.metrics), snakemake.wildcards.model, snakemake.output.pdf,
       snakemake.output.png)
