"""Rule preprocess_rsna: manifest + images_s{scale}.npy (logic: frugalmed.rsna.preprocess)."""

from frugalmed.logs import log_to
from frugalmed.rsna.preprocess import ImageSpec, preprocess_rsna

log_to(snakemake.log[0])  # noqa: F821
params = snakemake.params  # noqa: F821
preprocess_rsna(
    raw_dir=params.raw_dir,
    outputs=dict(snakemake.output.items()),  # noqa: F821
    max_age=float(params.max_age),
    label=params.label,
    spec=ImageSpec(
        image_size=int(params.image_size),
        scales=tuple(int(s) for s in params.scales),
        crop_breast=bool(params.crop_breast),
        flip_left=bool(params.flip_left),
        j2k_reduce=bool(params.j2k_reduce),
    ),
    splits=dict(params.splits),
    max_reject_fraction=float(params.max_reject_fraction),
    threads=int(snakemake.threads),  # noqa: F821
    dataset=params.dataset,
)
