# Generators (one job per generator type of a campaign) and the independent property predictor. torch +
# torch-geometric only: these rules run on GPU nodes without rdkit/pymatgen (runtime.device: auto picks CUDA).
# A job's params are the model and train parts of its settings, so changing how to sample never re-trains.
# runtime.gpus > 1 trains data-parallel with torchrun (DDP) and asks the executor for that many GPUs;
# runtime.nodes > 1 spreads it over that many SLURM nodes (see invdesign/pipeline/launch.py).


rule train_generator:
    wildcard_constraints:
        # the classical arms (generator types the workflow does not train) have no model
        generator="|".join(TRAINED_TYPES),
    input:
        graphs=intact(GRAPHS),
        target_checked=ancient(TARGET_CHECK),
    output:
        model=GENERATOR,
        metrics=f"{RESULTS}/{{campaign}}/models/generator_{{generator}}_metrics.json",
    params:
        campaign=lambda wc: wc.campaign,
        generator=training_params,
    log:
        log_path("train_generator_{generator}"),
    benchmark:
        bench_path("train_generator_{generator}")
    threads: THREADS
    priority: chain_priority
    resources:
        **TRAIN_RESOURCES,
    conda:
        "../../envs/train.yaml"
    script:
        "../scripts/train_generator.py"


rule train_predictor:
    input:
        graphs=intact(GRAPHS),
        target_checked=ancient(TARGET_CHECK),
    output:
        model=PREDICTOR,
        metrics=f"{RESULTS}/{{campaign}}/models/predictor_metrics.json",
    params:
        campaign=lambda wc: wc.campaign,
        predictor=lambda wc: camp(wc).predictor.training_params(),
    log:
        log_path("train_predictor"),
    benchmark:
        bench_path("train_predictor")
    threads: THREADS
    priority: chain_priority
    resources:
        **TRAIN_RESOURCES,
    conda:
        "../../envs/train.yaml"
    script:
        "../scripts/train_predictor.py"
