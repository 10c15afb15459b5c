"""Rule preprocess_lidc: nodule patches, manifest, rejects, selection (logic: frugalmed.lidc)."""

from frugalmed.lidc.extract import ExtractParams
from frugalmed.lidc.preprocess import preprocess_lidc
from frugalmed.logs import log_to

log_to(snakemake.log[0])  # noqa: F821
p = snakemake.params  # noqa: F821
preprocess_lidc(
    raw_dir=p.raw_dir,
    outputs=dict(snakemake.output.items()),  # noqa: F821
    params=ExtractParams(
        patch_size=int(p.patch_size),
        min_raters=int(p.min_raters),
        hu_window=(float(p.hu_window[0]), float(p.hu_window[1])),
        pixel_spacing_mm=None if p.pixel_spacing_mm is None else float(p.pixel_spacing_mm),
    ),
    splits=dict(p.splits),
    max_reject_fraction=float(p.max_reject_fraction),
    restrict=list(p.scans),
    workers=snakemake.threads,  # noqa: F821
    dataset=p.dataset,
)
