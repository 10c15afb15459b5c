"""Rule synthesize_lidc: synthetic LIDC-like CT series (logic: frugalmed.synthetic.lidc)."""

from frugalmed.logs import log_to
from frugalmed.synthetic.lidc import synthesize_lidc

log_to(snakemake.log[0])  # noqa: F821
synthesize_lidc(
    raw_dir=snakemake.params.raw_dir,  # noqa: F821
    marker=snakemake.output.marker,  # noqa: F821
    patient_ids=list(snakemake.params.patient_ids),  # noqa: F821
    n_scans=int(snakemake.params.n_scans),  # noqa: F821
    seed=int(snakemake.params.seed),  # noqa: F821
)
