"""The study's data figures: what the preprocessed RSNA images and LIDC patches look like.

One module per figure; each exposes a pure selection function (testable), a plotting function
returning the matplotlib Figure (and the artists a test can inspect), and a `make_*` entry point
that the thin workflow scripts call with paths.
"""
