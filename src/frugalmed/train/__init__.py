"""Training jobs: one model, one setting, one seed, measured (time, energy, memory, state bytes).

Deliberately empty of imports: `frugalmed.train.settings` must stay importable without torch
(the Snakefile and frugalmed.config read it while parsing the workflow).
"""
