"""Rule download_lidc: LIDC-IDRI CT series from TCIA or IDC (logic: frugalmed.lidc.download)."""

from frugalmed.lidc.download import download_lidc
from frugalmed.logs import log_to

log_to(snakemake.log[0])  # noqa: F821
download_lidc(snakemake.params.source, snakemake.params.raw_dir,  # noqa: F821
              snakemake.output.marker, list(snakemake.params.scans))  # noqa: F821
