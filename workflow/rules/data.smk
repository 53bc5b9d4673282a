# Load the campaign's source (QM9 / Materials Project / the user's table), drop bad rows,
# check the target against the data's range and assign deterministic splits.


rule prepare_dataset:
    output:
        dataset=f"{RESULTS}/{{campaign}}/data/dataset.parquet",
    params:
        campaign=campaign_params("domain", "dataset", "split"),
    log:
        log_path("prepare_dataset"),
    benchmark:
        bench_path("prepare_dataset")
    threads: 1
    priority: chain_priority
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/prepare.py"
