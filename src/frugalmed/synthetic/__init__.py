"""Synthetic cohorts: real DICOM files in exactly the layout of the real datasets.

They let the whole workflow run with no credentials and no download, and exercise the same
readers (transfer syntaxes, photometric interpretations, windows) the real data needs.
"""
