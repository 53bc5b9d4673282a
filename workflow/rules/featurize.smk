# Invariant graphs (molecules: bonds + atom descriptors incl. Mulliken group charges;
# crystals: periodic radius graphs + valence-orbital occupations) and decoder targets.


rule featurize:
    input:
        dataset=intact(DATASET),
    output:
        graphs=GRAPHS,
    params:
        domain=lambda wc: camp(wc).domain,
        settings=lambda wc: camp(wc).featurize.to_dict(),
        property_column=lambda wc: camp(wc).dataset.property_column,
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
