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
