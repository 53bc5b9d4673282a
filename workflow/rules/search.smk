# Property-guided search in the generator's latent space, then decoding.


rule search:
    input:
        generator=rules.train_generator.output.model,
        graphs=rules.featurize.output.graphs,
    output:
        samples=f"{RESULTS}/{{campaign}}/samples/samples.parquet",
    params:
        campaign=campaign_params("search", "target"),
    log:
        log_path("search"),
    benchmark:
        bench_path("search")
    threads: THREADS
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/search.py"
