"""`kind: table` -- a user's own labelled images: a labels CSV and DICOM/PNG/JPEG/TIFF files.

- :mod:`frugalmed.table.labels`: the labels file, checked at planning time and row by row;
- :mod:`frugalmed.table.images`: any supported file -> grey display intensities in [0, 1];
- :mod:`frugalmed.table.preprocess`: ``preprocess_table``, the rule's function.
"""
