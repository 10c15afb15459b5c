# Preprocessing stage: each dataset's raw files -> row-aligned uint8 images_s{scale}.npy,
# manifest.csv, rejects.csv and selection.json under results/data/{dataset}/ (one rule per
# dataset: its outputs depend on its own scales). Rule preprocess_<kind> -> script
# preprocess_<kind>.py -> frugalmed.<kind>.preprocess.preprocess_<kind>; outputs written by
# frugalmed.dataset.writer for every kind.


# --- RSNA mammograms ---
for ds in datasets_of_kind("rsna"):

    rule:
        """Select (age <= max_age, label present), decode (reduced-resolution JPEG 2000 where
        possible), crop to the breast, flip, pad and area-resize; patient-level splits."""
        name:
            dataset_rule("preprocess_rsna", ds)
        input:
            **raw_data_input(ds),
        output:
            **data_outputs(ds),
        log:
            f"logs/{ds}/preprocess.log",
        benchmark:
            f"results/benchmarks/preprocess/{ds}.tsv"
        params:
            dataset=ds,
            raw_dir=raw_dir_param(ds),
            max_age=dataset_config(ds)["max_age"],
            label=dataset_config(ds)["label"],
            image_size=dataset_config(ds)["image_size"],
            scales=dataset_config(ds)["scales"],
            crop_breast=dataset_config(ds)["crop_breast"],
            flip_left=dataset_config(ds)["flip_left"],
            j2k_reduce=dataset_config(ds)["j2k_reduce"],
            max_reject_fraction=dataset_config(ds)["max_reject_fraction"],
            splits=config["splits"],
        threads: dataset_config(ds)["threads"]
        resources:
            gpu=0,
            mem_mb=dataset_config(ds)["mem_mb"],
            runtime=dataset_config(ds)["runtime"],
        conda:
            "../../envs/frugalmed.yaml"
        script:
            "../scripts/preprocess_rsna.py"


# --- LIDC-IDRI nodule patches ---
for ds in datasets_of_kind("lidc"):

    rule:
        """One patch per nodule (pylidc cluster_annotations) and axial slice with a rater mask;
        label = (raters marking that slice >= min_raters); patient-level splits."""
        name:
            dataset_rule("preprocess_lidc", ds)
        input:
            **raw_data_input(ds),
        output:
            **data_outputs(ds),
        log:
            f"logs/{ds}/preprocess.log",
        benchmark:
            f"results/benchmarks/preprocess/{ds}.tsv"
        params:
            dataset=ds,
            raw_dir=raw_dir_param(ds),
            patch_size=dataset_config(ds)["patch_size"],
            min_raters=dataset_config(ds)["min_raters"],
            hu_window=dataset_config(ds)["hu_window"],
            pixel_spacing_mm=dataset_config(ds)["pixel_spacing_mm"],
            max_reject_fraction=dataset_config(ds)["max_reject_fraction"],
            scans=dataset_config(ds)["scans"],
            splits=config["splits"],
        threads: 4
        resources:
            gpu=0,
            mem_mb=lambda wildcards, threads: 1000 + 1500 * threads,
            runtime=30 if dataset_config(ds)["source"] == "synthetic" else 12 * 60,
        conda:
            "../../envs/frugalmed.yaml"
        script:
            "../scripts/preprocess_lidc.py"


# --- a user's own labelled images (kind: table) ---
for ds in datasets_of_kind("table"):

    rule:
        """Every row of the labels file: DICOM (any syntax the RSNA decoder reads, LUTs, colour
        -> luminance, one frame of a multi-frame file), PNG, JPEG or TIFF -> grey, square,
        area-resized; bad rows to rejects.csv; the given split column, or patient-level splits."""
        name:
            dataset_rule("preprocess_table", ds)
        input:
            **raw_data_input(ds),
        output:
            **data_outputs(ds),
        log:
            f"logs/{ds}/preprocess.log",
        benchmark:
            f"results/benchmarks/preprocess/{ds}.tsv"
        params:
            dataset=ds,
            raw_dir=raw_dir_param(ds),
            positive=dataset_config(ds)["positive"],
            negative=dataset_config(ds)["negative"],
            image_size=dataset_config(ds)["image_size"],
            scales=dataset_config(ds)["scales"],
            frame=dataset_config(ds)["frame"],
            intensity_16bit=dataset_config(ds)["intensity_16bit"],
            crop_foreground=dataset_config(ds)["crop_foreground"],
            flip_left=dataset_config(ds)["flip_left"],
            square=dataset_config(ds)["square"],
            j2k_reduce=dataset_config(ds)["j2k_reduce"],
            max_reject_fraction=dataset_config(ds)["max_reject_fraction"],
            splits=config["splits"],
        threads: dataset_config(ds)["threads"]
        resources:
            gpu=0,
            mem_mb=dataset_config(ds)["mem_mb"],
            runtime=dataset_config(ds)["runtime"],
        conda:
            "../../envs/frugalmed.yaml"
        script:
            "../scripts/preprocess_table.py"


rule confounds:
    """Test AUC of a group-only predictor (each image scored by its group's training-split
    positive share) per grouping column; columns at or above study.confound_auc are flagged."""
    input:
        manifest=lambda wildcards: data_outputs(wildcards.dataset)["manifest"],
    output:
        confounds="results/data/{dataset}/confounds.json",
    log:
        "logs/{dataset}/confounds.log",
    params:
        columns=lambda wildcards: confound_columns(wildcards.dataset),
        threshold=config["study"]["confound_auc"],
    threads: 1
    resources:
        gpu=0,
        mem_mb=1000,
        runtime=10,
    localrule: True
    conda:
        "../../envs/frugalmed.yaml"
    script:
        "../scripts/confounds.py"
