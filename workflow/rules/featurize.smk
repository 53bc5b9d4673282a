# Invariant graphs (molecules: bonds + atom descriptors incl. Mulliken group charges;
# crystals: periodic radius graphs + valence-orbital occupations) and decoder targets.


rule featurize:
    input:
        dataset=rules.prepare_dataset.output.dataset,
    output:
        graphs=f"{RESULTS}/{{campaign}}/data/graphs.pt",
    params:
        campaign=campaign_params("featurize"),
    log:
        log_path("featurize"),
    benchmark:
        bench_path("featurize")
    threads: 1
    priority: chain_priority
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/featurize.py"
