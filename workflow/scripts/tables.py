"""Rule tables: one dataset's runs -> results/tables/{dataset}.csv|.md|.tex."""
from frugalmed.logs import log_to
from frugalmed.results.cli import tables

log_to(snakemake.log[0])
tables(list(snakemake.input.metrics), snakemake.wildcards.dataset,
       snakemake.output.csv, snakemake.output.md, snakemake.output.tex,
       study=snakemake.params.study, confounds=list(snakemake.input.confounds))
