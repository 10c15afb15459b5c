"""Rule download_rsna: Kaggle RSNA competition files into raw_dir (logic: frugalmed.rsna.download)."""

from frugalmed.logs import log_to
from frugalmed.rsna.download import download_rsna

log_to(snakemake.log[0])  # noqa: F821
download_rsna(
    raw_dir=snakemake.params.raw_dir,  # noqa: F821
    marker=snakemake.output.marker,  # noqa: F821
    competition=snakemake.params.competition,  # noqa: F821
)
