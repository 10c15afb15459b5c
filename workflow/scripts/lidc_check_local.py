"""Rule check_lidc_local: accept a user's LIDC-IDRI raw_dir (logic: frugalmed.lidc.download)."""

import logging

from frugalmed.lidc.download import check_local

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,  # noqa: F821
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
try:
    check_local(snakemake.params.raw_dir, snakemake.output.marker)  # noqa: F821
except Exception:
    logging.exception("check_lidc_local failed")
    raise
