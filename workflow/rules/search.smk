# Sampling toward the target, one job per generator, with the generator's current sampling settings:
# latent-space optimisation (vae), classifier-free guided diffusion (diffusion) or Langevin sampling with a
# property energy (ebm); the classical arms (graph_ga, edit_library, substitution) propose without a model.


rule search:
    input:
        # a trained generator: its checkpoint and the graphs; a classical arm: the data set, the known table and
        # the predictor (search_inputs)
        unpack(search_inputs),
        target_checked=TARGET_CHECK,
        # structure prediction from earlier campaigns' verdicts (compositions.from_feedback) reads them
        feedback=composition_feedback,
        # a molecule arm seeded with earlier campaigns' confirmed molecules (seeds_from) reads their verified tables
        seeds=arm_seeds,
    output:
        samples=f"{RESULTS}/{{campaign}}/samples/samples_{{generator}}.parquet",
    params:
        campaign=lambda wc: wc.campaign,
        domain=lambda wc: camp(wc).domain,
        kind=lambda wc: wc.generator,
        sample=sampling_params,
        latent_search=latent_search_params,
        target=lambda wc: camp(wc).target.to_dict(),
        unit=lambda wc: camp(wc).unit,
        feedback_measure=lambda wc: camp(wc).feedback_measure,
    log:
        log_path("search_{generator}"),
    benchmark:
        bench_path("search_{generator}")
    threads: THREADS
    priority: chain_priority
    resources:
        gpu=search_gpus,
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/search.py"
