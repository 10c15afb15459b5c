# Downloads of the real datasets (local rules: compute nodes often have no internet).

# --- RSNA (Kaggle) ---
if dataset_config("rsna")["source"] == "kaggle":

    rule download_rsna:
        """Kaggle's rsna-breast-cancer-detection files (~314 GB zip), resumable: the zip is kept
        until it is fully extracted; needs Kaggle credentials and the competition rules accepted."""
        output:
            marker=raw_ready_marker("rsna"),
        log:
            "logs/download/rsna.log",
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


# --- LIDC-IDRI (TCIA / IDC) ---
if dataset_config("lidc")["source"] in ("tcia", "idc"):

    rule download_lidc:
        """The annotated LIDC-IDRI CT series (tcia_utils or idc-index), resumable, in pylidc's
        layout {PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/*.dcm (~125 GB)."""
        output:
            marker=raw_ready_marker("lidc"),
        log:
            "logs/download/lidc.log",
        params:
            source=dataset_config("lidc")["source"],
            raw_dir=lambda wildcards, output: os.path.dirname(output.marker),
            scans=dataset_config("lidc")["scans"],
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

elif dataset_config("lidc")["source"] == "local":

    rule check_lidc_local:
        """source: local -- take raw_dir as it is once it holds LIDC-IDRI patient folders."""
        output:
            marker=raw_ready_marker("lidc"),
        log:
            "logs/download/lidc_local.log",
        params:
            raw_dir=lambda wildcards, output: os.path.dirname(output.marker),
        localrule: True
        threads: 1
        resources:
            gpu=0,
            mem_mb=1000,
            runtime=10,
        conda:
            "../../envs/frugalmed.yaml"
        script:
            "../scripts/lidc_check_local.py"

