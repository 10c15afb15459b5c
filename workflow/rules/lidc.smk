# lidc stage: LIDC-IDRI scans in raw_dir -> labelled 2-D nodule patches. Logic: frugalmed.lidc.


rule preprocess_lidc:
    """One patch per nodule (pylidc cluster_annotations) and axial slice with a rater mask;
    label = (raters marking that slice >= min_raters); patient-level splits."""
    input:
        marker=raw_ready_marker("lidc"),
    output:
        **data_outputs("lidc"),
    log:
        "logs/lidc/preprocess.log",
    params:
        raw_dir=lambda wildcards, input: os.path.dirname(input.marker),
        patch_size=dataset_config("lidc")["patch_size"],
        min_raters=dataset_config("lidc")["min_raters"],
        hu_window=dataset_config("lidc")["hu_window"],
        pixel_spacing_mm=dataset_config("lidc")["pixel_spacing_mm"],
        max_reject_fraction=dataset_config("lidc")["max_reject_fraction"],
        scans=dataset_config("lidc")["scans"],
        splits=config["splits"],
    threads: 4
    resources:
        gpu=0,
        mem_mb=lambda wildcards, threads: 1000 + 1500 * threads,
        runtime=30 if dataset_config("lidc")["source"] == "synthetic" else 12 * 60,
    conda:
        "../../envs/frugalmed.yaml"
    script:
        "../scripts/lidc_preprocess.py"
