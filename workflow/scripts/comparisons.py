"""Rule comparisons: one dataset's runs + predictions + manifest -> results/comparisons/{dataset}.*"""
from frugalmed.logs import log_to
from frugalmed.results.cli import comparisons

log_to(snakemake.log[0])
comparisons(list(snakemake.input.metrics), snakemake.input.manifest, snakemake.wildcards.dataset,
            snakemake.output.csv, snakemake.output.md, snakemake.output.html,
            snakemake.output.settings, study=snakemake.params.study,
            confounds=list(snakemake.input.confounds))
