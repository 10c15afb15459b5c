"""Rule download_lidc: LIDC-IDRI CT series from TCIA or IDC (logic: frugalmed.lidc.download)."""

from frugalmed.lidc.download import download_idc, download_tcia
from frugalmed.logs import log_to

log_to(snakemake.log[0])  # noqa: F821
fetch = download_tcia if snakemake.params.source == "tcia" else download_idc  # noqa: F821
fetch(snakemake.params.raw_dir, snakemake.output.marker,  # noqa: F821
      list(snakemake.params.scans))  # noqa: F821
