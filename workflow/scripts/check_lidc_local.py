"""Rule check_lidc_local: accept a user's LIDC-IDRI raw_dir, read-only (logic: frugalmed.lidc.download)."""

from frugalmed.lidc.download import check_lidc_local
from frugalmed.logs import log_to

log_to(snakemake.log[0])  # noqa: F821
check_lidc_local(snakemake.params.raw_dir, snakemake.output.marker,  # noqa: F821
                 dataset=snakemake.params.dataset)  # noqa: F821
