"""Rule preprocess_table: a user's labels.csv + images -> the dataset's outputs (logic: frugalmed.table)."""

from frugalmed.logs import log_to
from frugalmed.table.preprocess import TableSpec, preprocess_table

log_to(snakemake.log[0])  # noqa: F821
p = snakemake.params  # noqa: F821
preprocess_table(
    raw_dir=p.raw_dir,
    labels=snakemake.input.labels,  # noqa: F821
    outputs=dict(snakemake.output.items()),  # noqa: F821
    spec=TableSpec(
        image_size=int(p.image_size),
        scales=tuple(int(s) for s in p.scales),
        crop_foreground=bool(p.crop_foreground),
        flip_left=bool(p.flip_left),
        square=str(p.square),
        frame=str(p.frame),
        intensity_16bit=str(p.intensity_16bit),
        j2k_reduce=bool(p.j2k_reduce),
    ),
    splits=dict(p.splits),
    max_reject_fraction=float(p.max_reject_fraction),
    positive=p.positive,
    negative=p.negative,
    threads=int(snakemake.threads),  # noqa: F821
    dataset=p.dataset,
)
