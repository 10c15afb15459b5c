"""Rule synthesize_lidc: synthetic LIDC-like CT series (logic: frugalmed.synthetic.lidc)."""

import logging

from frugalmed.synthetic.lidc import synthesize_lidc_cohort

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,  # noqa: F821
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
try:
    synthesize_lidc_cohort(
        raw_dir=snakemake.params.raw_dir,  # noqa: F821
        marker=snakemake.output.marker,  # noqa: F821
        patient_ids=list(snakemake.params.patient_ids),  # noqa: F821
        n_scans=int(snakemake.params.n_scans),  # noqa: F821
        seed=int(snakemake.params.seed),  # noqa: F821
    )
except Exception:
    logging.exception("synthesize_lidc failed")
    raise
