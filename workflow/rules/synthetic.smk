# Synthetic cohorts: real DICOM files in exactly the layout of the real data, written into
# raw_dir when a dataset's `source` is `synthetic`.

# --- RSNA-like cohort ---

# --- LIDC-like cohort ---
