# rsna stage: RSNA mammograms in raw_dir -> square uint8 arrays at every scale + manifest.
# Logic: frugalmed.rsna.


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
        raw_dir=lambda wildcards, input: os.path.dirname(input.raw),
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
        gpu=0,
        mem_mb=dataset_config("rsna")["mem_mb"],
        runtime=dataset_config("rsna")["runtime"],
    conda:
        "../../envs/frugalmed.yaml"
    script:
        "../scripts/rsna_preprocess.py"
