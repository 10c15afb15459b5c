"""Rule summarize: every run's metrics.json -> results/summary.csv (one flat row per run)."""
from frugalmed.results.cli import setup_logging, summarize

setup_logging(snakemake.log[0])
summarize(list(snakemake.input.metrics), snakemake.output.summary)
