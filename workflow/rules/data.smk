# Load the campaign's source (QM9 / Materials Project / the user's table), drop bad rows and assign
# deterministic splits; then check the target against the data's range. The dataset does not depend on the
# target, so a new target re-runs only the check, the search and what follows.


rule prepare_dataset:
    output:
        out=DATASET,
    params:
        campaign=lambda wc: wc.campaign,
        domain=lambda wc: camp(wc).domain,
        dataset=lambda wc: camp(wc).dataset.to_dict(),
        split=lambda wc: camp(wc).split.to_dict(),
    log:
        log_path("prepare_dataset"),
    benchmark:
        bench_path("prepare_dataset")
    threads: 1
    priority: chain_priority
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/prepare_dataset.py"


rule check_target:
    """Stops the campaign with one line when its target lies outside the data's range. Training waits for it (the
    training rules take its output as an ancient() input: for the order, not as something that re-runs them)."""
    input:
        dataset=intact(DATASET),
    output:
        stats=TARGET_CHECK,
    params:
        campaign=lambda wc: wc.campaign,
        target=lambda wc: camp(wc).target.to_dict(),
        unit=lambda wc: camp(wc).unit,
    log:
        log_path("check_target"),
    threads: 1
    priority: chain_priority
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/check_target.py"


rule known_reference:
    """Everything the project knows (the whole source data set, whatever max_rows and size limits, and the
    filters.known_library files): novelty, the nearest known neighbour and the crystal hull are judged against it."""
    output:
        out=KNOWN,
    params:
        campaign=lambda wc: wc.campaign,
        domain=lambda wc: camp(wc).domain,
        # the subset settings choose training rows, not what is known: a change there does not re-run this rule
        dataset=lambda wc: {k: v for k, v in camp(wc).dataset.to_dict().items()
                            if k not in ("max_rows", "seed", "max_atoms")},
        known_library=lambda wc: list(camp(wc).filters.known_library),
    log:
        log_path("known_reference"),
    benchmark:
        bench_path("known_reference")
    threads: 1
    priority: chain_priority
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/known_reference.py"
