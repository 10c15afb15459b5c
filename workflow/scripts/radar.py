"""Rule radar: one model's scale-1 runs + predictions -> figures/radar_{model}.pdf + .png."""
from pathlib import Path

from frugalmed.logs import log_to
from frugalmed.results.cli import radar

log_to(snakemake.log[0])
manifests = {Path(path).parent.name: path for path in snakemake.input.manifests}
radar(list(snakemake.input.metrics), manifests, snakemake.wildcards.model,
      snakemake.output.pdf, snakemake.output.png, study=snakemake.params.study)
