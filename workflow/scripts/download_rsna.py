"""Rule download_rsna: Kaggle RSNA competition files into raw_dir (logic: frugalmed.rsna.download)."""

import logging

from frugalmed.rsna.download import download_rsna

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,  # noqa: F821
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
try:
    download_rsna(
        raw_dir=snakemake.params.raw_dir,  # noqa: F821
        marker=snakemake.output.marker,  # noqa: F821
        competition=snakemake.params.competition,  # noqa: F821
    )
except Exception:
    logging.exception("download_rsna failed")
    raise
