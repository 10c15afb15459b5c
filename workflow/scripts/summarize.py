"""Rule summarize: every run's metrics.json -> results/summary.csv (one flat row per run)."""
from frugalmed.logs import log_to
from frugalmed.results.cli import summarize

log_to(snakemake.log[0])
summarize(list(snakemake.input.metrics), snakemake.output.summary)
