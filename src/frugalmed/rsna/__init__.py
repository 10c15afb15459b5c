"""RSNA Screening Mammography: cohort selection, DICOM decoding, resizing, preprocessing, download."""
