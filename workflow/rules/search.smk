# Sampling toward the target, one job per generator: latent-space optimisation (vae),
# classifier-free guided diffusion (diffusion) or Langevin sampling with a property energy (ebm).


rule search:
    input:
        generator=rules.train_generator.output.model,
        graphs=rules.featurize.output.graphs,
        # structure prediction from earlier campaigns' verdicts (compositions.from_feedback) reads them
        feedback=composition_feedback,
    output:
        samples=f"{RESULTS}/{{campaign}}/samples/samples_{{generator}}.parquet",
    params:
        generator=generator_params(),
        campaign=campaign_params("search", "target"),
    log:
        log_path("search_{generator}"),
    benchmark:
        bench_path("search_{generator}")
    threads: THREADS
    priority: chain_priority
    resources:
        **SEARCH_RESOURCES,
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/search.py"
