"""Statistics of the study: intervals and paired comparisons computed from test predictions.

auc       -- per-run test AUC with a patient-bootstrap interval (written by the training job)
resample  -- the bootstrap's random draws (patient weights, seed draws), one documented scheme
weighted_auc -- ROC AUC under many weightings of the same predictions at once (vectorised)
paired    -- paired setting-vs-baseline differences and ratios: hierarchical bootstrap over
             seeds and test patients, geometric-mean ratios with t intervals
"""
