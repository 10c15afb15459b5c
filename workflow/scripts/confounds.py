"""Rule confounds: a dataset's manifest -> confounds.json (logic: frugalmed.confounds)."""

from frugalmed.confounds import confounds
from frugalmed.logs import log_to

log_to(snakemake.log[0])  # noqa: F821
confounds(
    manifest_path=snakemake.input.manifest,  # noqa: F821
    output_path=snakemake.output.confounds,  # noqa: F821
    columns=list(snakemake.params.columns),  # noqa: F821
    threshold=float(snakemake.params.threshold),  # noqa: F821
)
