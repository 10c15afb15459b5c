"""Rule tables: one dataset's runs -> results/tables/{dataset}.csv|.md|.tex."""
from frugalmed.results.cli import setup_logging, tables

setup_logging(snakemake.log[0])
tables(list(snakemake.input.metrics), snakemake.wildcards.dataset,
       snakemake.output.csv, snakemake.output.md, snakemake.output.tex)
