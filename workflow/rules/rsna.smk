# rsna stage: RSNA mammograms in raw_dir -> square uint8 arrays at every scale + manifest.
# Logic: frugalmed.rsna.


def rsna_raw_input(wildcards):
    """What tells preprocess_rsna that raw_dir is complete.

    synthetic / kaggle: the marker their rule writes last. local: the user's raw_dir is taken
    as it is, so its train.csv; a clear error (not a missing-rule message) if it is absent.
    """
    if dataset_config("rsna")["source"] != "local":
        return {"raw": raw_ready_marker("rsna")}
    train_csv = Path(raw_dir("rsna")) / "train.csv"
    if not train_csv.is_file():
        raise WorkflowError(
            f"datasets.rsna.source is 'local' but {train_csv} does not exist. Put Kaggle's "
            "rsna-breast-cancer-detection files there (train.csv + train_images/{patient_id}/"
            "{image_id}.dcm), point datasets.rsna.raw_dir at them, or use source: kaggle "
            "(download) or source: synthetic (generated demo cohort)."
        )
    return {"raw": str(train_csv)}


rule preprocess_rsna:
    """Select (age <= max_age, label present), decode (reduced-resolution JPEG 2000 where
    possible), crop to the breast, flip, pad and area-resize; patient-level splits."""
    input:
        unpack(rsna_raw_input),
    output:
        **data_outputs("rsna"),
    log:
        "logs/rsna/preprocess.log",
    params:
        raw_dir=raw_dir("rsna"),
        max_age=dataset_config("rsna")["max_age"],
        label=dataset_config("rsna")["label"],
        image_size=dataset_config("rsna")["image_size"],
        scales=dataset_config("rsna")["scales"],
        crop_breast=dataset_config("rsna")["crop_breast"],
        flip_left=dataset_config("rsna")["flip_left"],
        j2k_reduce=dataset_config("rsna")["j2k_reduce"],
        max_reject_fraction=dataset_config("rsna")["max_reject_fraction"],
        splits=config["splits"],
    threads: dataset_config("rsna")["threads"]
    resources:
        mem_mb=dataset_config("rsna")["mem_mb"],
        runtime=dataset_config("rsna")["runtime"],
    script:
        "../scripts/rsna_preprocess.py"
