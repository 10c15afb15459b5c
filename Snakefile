# frugalmed: what resource-efficient training costs and saves for medical-imaging models.
# Default target `all` runs the study in config/config.yaml (the embedded demo).
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

sys.path.insert(0, f"{workflow.basedir}/src")
from frugalmed.config import check_config, check_schema, drop_null_experiments
from frugalmed.errors import ConfigError


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


try:
    check_schema(config, workflow.source_path("config/schema.yaml"))
    drop_null_experiments(config)
    validate(config, "config/schema.yaml", set_default=True)
    check_config(config)
except ConfigError as err:
    raise WorkflowError(f"Invalid config: {err}. Fix it in config/config.yaml or your --configfile.") from None


include: "workflow/rules/common.smk"
include: "workflow/rules/synthetic.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/rsna.smk"
include: "workflow/rules/lidc.smk"
include: "workflow/rules/confounds.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/results.smk"
include: "workflow/rules/data_figures.smk"


rule all:
    input:
        all_targets(),
    default_target: True
