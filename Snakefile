# frugalmed: what resource-efficient training costs and saves for medical-imaging models.
# Default target `all` runs the study in config/config.yaml (the embedded demo).
import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

# The frugalmed package is this workflow's own src/ whenever its source is on a local path (a
# clone, or a `module` used from a local path; current_basedir, unlike basedir, is this file's
# directory then). The jobs import the same code: PYTHONPATH for plain runs, and Snakemake's
# script preamble appends this process's sys.path (conda envs, which drop PYTHONPATH).
FRUGALMED_SRC = os.path.join(str(workflow.current_basedir), "src")
if os.path.isfile(os.path.join(FRUGALMED_SRC, "frugalmed", "__init__.py")):
    sys.path.insert(0, FRUGALMED_SRC)
    os.environ.update(  # set for the jobs, not required from the user: no envvars directive
        PYTHONPATH=os.pathsep.join(
            [FRUGALMED_SRC]
            + [p for p in os.getenv("PYTHONPATH", "").split(os.pathsep) if p and p != FRUGALMED_SRC]
        )
    )
try:
    from frugalmed.archs import check_model_archs
    from frugalmed.config import (
        check_config,
        check_schema,
        drop_null_experiments,
        fill_confound_columns,
        prepare_datasets,
    )
    from frugalmed.errors import ConfigError
except ImportError as err:
    raise WorkflowError(
        f"Cannot import the frugalmed package ({err}). It comes from {FRUGALMED_SRC} when the "
        "workflow's source is on a local path; otherwise install the package of the workflow's "
        "version into the environment Snakemake runs in (pip install <repository or clone>)."
    ) from None


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


if "experiments" not in config and not os.path.isfile("config/config.yaml"):
    raise WorkflowError(
        f"No study config: config/config.yaml is not in the working directory {os.getcwd()}. "
        "Run Snakemake in the frugalmed directory, copy its config/ into the working directory "
        "(as snakedeploy does for a module), or pass --configfile."
    )
try:
    prepare_datasets(config)  # kind and path defaults; datasets set to null dropped
    check_schema(config, workflow.source_path("config/schema.yaml"))
    drop_null_experiments(config)
    validate(config, "config/schema.yaml", set_default=True)
    check_config(config)
    fill_confound_columns(config)  # datasets.<name>.confound_columns: the effective list
    if workflow.is_main_process:  # planning happens there; jobs need not check again
        check_model_archs(config["models"])
except ConfigError as err:
    raise WorkflowError(f"Invalid config: {err}. Fix it in config/config.yaml or your --configfile.") from None


include: "workflow/rules/common.smk"
include: "workflow/rules/raw_data.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/results.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/data_figures.smk"


rule all:
    input:
        all_targets(),
    default_target: True
