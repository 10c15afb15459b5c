"""Rule recommendations: every dataset's comparisons -> results/recommendations.md (+ .html)."""
from frugalmed.logs import log_to
from frugalmed.results.cli import recommendations

log_to(snakemake.log[0])
recommendations(list(snakemake.input.comparisons), list(snakemake.input.settings),
                snakemake.output.md, snakemake.output.html, study=snakemake.params.study,
                confounds=list(snakemake.input.confounds))
