"""Rule synthesize_rsna: RSNA-like DICOM cohort in raw_dir (logic: frugalmed.synthetic.rsna)."""

import logging

from frugalmed.logs import log_to
from frugalmed.synthetic.rsna import synthesize_rsna

log_to(snakemake.log[0])  # noqa: F821
logging.getLogger("openjpeg").setLevel(logging.WARNING)  # one INFO line per encoded tile
synthesize_rsna(
    raw_dir=snakemake.params.raw_dir,  # noqa: F821
    marker=snakemake.output.marker,  # noqa: F821
    n_patients=int(snakemake.params.n_patients),  # noqa: F821
    rows=int(snakemake.params.image_rows),  # noqa: F821
    cols=int(snakemake.params.image_cols),  # noqa: F821
    seed=int(snakemake.params.seed),  # noqa: F821
    threads=int(snakemake.threads),  # noqa: F821
)
