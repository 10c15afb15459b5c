"""Rule download_lidc: LIDC-IDRI CT series from TCIA or IDC (logic: frugalmed.lidc.download)."""

import logging

from frugalmed.lidc.download import download_idc, download_tcia

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,  # noqa: F821
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
try:
    fetch = download_tcia if snakemake.params.source == "tcia" else download_idc  # noqa: F821
    fetch(snakemake.params.raw_dir, snakemake.output.marker,  # noqa: F821
          list(snakemake.params.scans))  # noqa: F821
except Exception:
    logging.exception("download_lidc failed")
    raise
