"""Aggregation of training runs into the study's summary, tables and figures.

summary       -- read metrics.json files into one flat table (one row per run)
aggregate     -- mean +- std over seeds per dataset x model x scale x setting, % change, PePR
pepr          -- the PePR score (Selvan et al. 2024)
tables        -- the per-dataset tables as CSV, Markdown and LaTeX
radar         -- radar figure per model (P_T, E, memory, T; outward = better)
downsampling  -- test AUC against the RSNA downsampling scale
"""
