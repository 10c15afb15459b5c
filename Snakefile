# frugalmed: what resource-efficient training costs and saves for medical-imaging models.
# Default target `all` runs the study in config/config.yaml (the embedded demo).
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/schema.yaml", set_default=True)


include: "workflow/rules/common.smk"
include: "workflow/rules/synthetic.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/rsna.smk"
include: "workflow/rules/lidc.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/results.smk"


rule all:
    input:
        all_targets(),
    default_target: True
