"""Statistics of the study: confidence intervals computed from the per-run prediction files."""
