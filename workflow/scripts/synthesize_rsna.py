"""Rule synthesize_rsna: RSNA-like DICOM cohort in raw_dir (logic: frugalmed.synthetic.rsna)."""

import logging

from frugalmed.synthetic.rsna import synthesize_rsna

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,  # noqa: F821
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
logging.getLogger("openjpeg").setLevel(logging.WARNING)  # one INFO line per encoded tile
try:
    synthesize_rsna(
        raw_dir=snakemake.params.raw_dir,  # noqa: F821
        marker=snakemake.output.marker,  # noqa: F821
        n_patients=int(snakemake.params.n_patients),  # noqa: F821
        rows=int(snakemake.params.image_rows),  # noqa: F821
        cols=int(snakemake.params.image_cols),  # noqa: F821
        seed=int(snakemake.params.seed),  # noqa: F821
        threads=int(snakemake.threads),  # noqa: F821
    )
except Exception:
    logging.exception("synthesize_rsna failed")
    raise
