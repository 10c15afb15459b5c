# Downloads of the real datasets (local rules: compute nodes often have no internet).

# --- RSNA (Kaggle) ---

# --- LIDC-IDRI (TCIA / IDC) ---
