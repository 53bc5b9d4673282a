# Independent checks of the best candidates, the same rules for every oracle (invdesign/oracles): molecules -
# GFN2-xTB (tblite) optimisation, connectivity check, gap calibrated to the data's DFT scale; crystals - CHGNet
# relaxation, energy above the hull of the known phases, EOS bulk modulus (matcalc). The candidates to check
# are split into batches by a checkpoint, one job per batch, so a cluster profile runs them side by side. An
# oracle's confirming tier (molecules: B3LYP DFT at the data's level of theory) then checks the best rows of that
# ranking, fanned out the same way, and `verify` ranks by the highest tier that ran.
# Then the chemists' export: an SDF of the molecules (3D, xTB geometries where checked), a zip of CIFs.


rule oracle_prepare:
    """What the oracle computes once per campaign; it never depends on the target (a new target re-uses it)."""
    input:
        dataset=intact(DATASET),
    output:
        prepared=PREPARED,
    params:
        domain=lambda wc: camp(wc).domain,
        oracle=lambda wc: camp(wc).oracle.prepare_part(),
        property_column=lambda wc: camp(wc).dataset.property_column,
        property_kind=property_kind,
    log:
        log_path("oracle_prepare"),
    benchmark:
        bench_path("oracle_prepare")
    threads: 1
    priority: chain_priority
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/oracle_prepare.py"


checkpoint oracle_batches:
    input:
        candidates=intact(CANDIDATES),
        feedback=oracle_feedback,
    output:
        batches=directory(f"{RESULTS}/{{campaign}}/oracle/batches"),
    params:
        domain=lambda wc: camp(wc).domain,
        oracle=lambda wc: camp(wc).oracle.check_part(),
        target=lambda wc: camp(wc).target.to_dict(),
        property_column=lambda wc: camp(wc).dataset.property_column,
        property_kind=property_kind,
    log:
        log_path("oracle_batches"),
    threads: 1
    priority: chain_priority
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/oracle_batches.py"


rule oracle_batch:
    input:
        batch=intact(BATCH),
        known=intact(KNOWN),
        prepared=intact(PREPARED),
    output:
        checked=f"{RESULTS}/{{campaign}}/oracle/checked/batch_{{batch}}.parquet",
    wildcard_constraints:
        batch=r"\d+",
    params:
        domain=lambda wc: camp(wc).domain,
        oracle=lambda wc: camp(wc).oracle.check_part(),
        target=lambda wc: camp(wc).target.to_dict(),
        property_column=lambda wc: camp(wc).dataset.property_column,
        property_kind=property_kind,
    log:
        f"{RESULTS}/logs/{{campaign}}/oracle_batch_{{batch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{campaign}}/oracle_batch_{{batch}}.tsv"
    threads: 1  # xTB on small molecules and CHGNet on small cells are fastest single-threaded
    priority: chain_priority
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/oracle_batch.py"


rule oracle_merge:
    """The first tier's verdicts merged and ranked."""
    input:
        checked=intact(checked_batches),
        candidates=intact(CANDIDATES),
        known=intact(KNOWN),
        prepared=intact(PREPARED),
    output:
        table=CHECKED,
        tier_metrics=f"{RESULTS}/{{campaign}}/oracle/checked_metrics.json",
    params:
        domain=lambda wc: camp(wc).domain,
        oracle=lambda wc: camp(wc).oracle.check_part(),
        target=lambda wc: camp(wc).target.to_dict(),
        property_column=lambda wc: camp(wc).dataset.property_column,
        property_kind=property_kind,
    log:
        log_path("oracle_merge"),
    benchmark:
        bench_path("oracle_merge")
    threads: 1
    priority: chain_priority
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/oracle_merge.py"


checkpoint confirm_batches:
    """The best rows of the first tier's ranking that the oracle's confirming tier checks (molecules: DFT)."""
    input:
        table=intact(CHECKED),
    output:
        batches=directory(f"{RESULTS}/{{campaign}}/oracle/confirm/batches"),
    params:
        domain=lambda wc: camp(wc).domain,
        oracle=lambda wc: camp(wc).oracle.to_dict(),
        target=lambda wc: camp(wc).target.to_dict(),
        property_column=lambda wc: camp(wc).dataset.property_column,
        property_kind=property_kind,
    log:
        log_path("confirm_batches"),
    threads: 1
    priority: chain_priority
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/confirm_batches.py"


rule confirm_batch:
    input:
        batch=intact(CONFIRM_BATCH),
        known=intact(KNOWN),
        prepared=intact(PREPARED),
    output:
        confirmed=f"{RESULTS}/{{campaign}}/oracle/confirm/checked/batch_{{batch}}.parquet",
    wildcard_constraints:
        batch=r"\d+",
    params:
        domain=lambda wc: camp(wc).domain,
        oracle=lambda wc: camp(wc).oracle.to_dict(),
        target=lambda wc: camp(wc).target.to_dict(),
        property_column=lambda wc: camp(wc).dataset.property_column,
        property_kind=property_kind,
    log:
        f"{RESULTS}/logs/{{campaign}}/confirm_batch_{{batch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{campaign}}/confirm_batch_{{batch}}.tsv"
    threads: 1  # one DFT single point per job by default (oracle.dft.batch_size): jobs run side by side
    priority: chain_priority
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/confirm_batch.py"


checkpoint confirm_batches_round:
    """Round 2, 3, ... of the confirming tier (oracle.dft.rounds): its picks are chosen knowing the verdicts of the
    rounds before (the chance of confirmation refitted on them; the picks split across generators by their confirmed
    rates). Each round is its own step: a finished round is never recomputed."""
    input:
        table=intact(CHECKED),
        tier_metrics=f"{RESULTS}/{{campaign}}/oracle/checked_metrics.json",
        earlier=intact(earlier_confirmed),
    output:
        batches=directory(f"{RESULTS}/{{campaign}}/oracle/confirm/round_{{round}}/batches"),
    wildcard_constraints:
        round=r"[2-9]|[1-9]\d+",
    params:
        domain=lambda wc: camp(wc).domain,
        oracle=lambda wc: camp(wc).oracle.to_dict(),
        target=lambda wc: camp(wc).target.to_dict(),
        property_column=lambda wc: camp(wc).dataset.property_column,
        property_kind=property_kind,
        round_no=lambda wc: int(wc.round),
    log:
        f"{RESULTS}/logs/{{campaign}}/confirm_batches_round_{{round}}.log",
    threads: 1
    priority: chain_priority
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/confirm_batches.py"


rule confirm_batch_round:
    input:
        batch=intact(f"{RESULTS}/{{campaign}}/oracle/confirm/round_{{round}}/batches/batch_{{batch}}.parquet"),
        known=intact(KNOWN),
        prepared=intact(PREPARED),
    output:
        confirmed=f"{RESULTS}/{{campaign}}/oracle/confirm/round_{{round}}/checked/batch_{{batch}}.parquet",
    wildcard_constraints:
        batch=r"\d+",
        round=r"[2-9]|[1-9]\d+",
    params:
        domain=lambda wc: camp(wc).domain,
        oracle=lambda wc: camp(wc).oracle.to_dict(),
        target=lambda wc: camp(wc).target.to_dict(),
        property_column=lambda wc: camp(wc).dataset.property_column,
        property_kind=property_kind,
    log:
        f"{RESULTS}/logs/{{campaign}}/confirm_batch_round_{{round}}_{{batch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{campaign}}/confirm_batch_round_{{round}}_{{batch}}.tsv"
    threads: 1
    priority: chain_priority
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/confirm_batch.py"


rule verify:
    input:
        table=intact(CHECKED),
        tier_metrics=f"{RESULTS}/{{campaign}}/oracle/checked_metrics.json",
        confirmed=intact(confirmed_batches),
    output:
        csv=f"{RESULTS}/{{campaign}}/candidates_verified.csv",
        parquet=VERIFIED,
        metrics=ORACLE_METRICS,
    params:
        campaign=lambda wc: wc.campaign,
        domain=lambda wc: camp(wc).domain,
        oracle=lambda wc: camp(wc).oracle.to_dict(),
        target=lambda wc: camp(wc).target.to_dict(),
        property_column=lambda wc: camp(wc).dataset.property_column,
        property_kind=property_kind,
    log:
        log_path("verify"),
    benchmark:
        bench_path("verify")
    threads: 1
    priority: chain_priority
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/verify.py"


rule export_structures:
    input:
        verified=intact(VERIFIED),
        candidates=intact(CANDIDATES),
    output:
        export=f"{RESULTS}/{{campaign}}/candidates{{suffix}}",
    wildcard_constraints:
        suffix="|".join(re.escape(s) for s in EXPORT_SUFFIX.values()),
    params:
        domain=lambda wc: camp(wc).domain,
    log:
        f"{RESULTS}/logs/{{campaign}}/export_structures{{suffix}}.log",
    threads: 1
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/export_structures.py"


rule export_relaxed:
    """The relaxed structures of the verified table, symmetrised (crystals: confirmed.zip with the confirmed hits,
    checked.zip with every cell the oracle relaxed; invdesign.domains.RELAXED_EXPORTS)."""
    input:
        verified=intact(VERIFIED),
    output:
        **{name: f"{RESULTS}/{{campaign}}/{file}" for name, file in RELAXED_EXPORTS["crystals"].items()},
    params:
        domain=lambda wc: camp(wc).domain,
        oracle=lambda wc: camp(wc).oracle.to_dict(),
        target=lambda wc: camp(wc).target.to_dict(),
        property_column=lambda wc: camp(wc).dataset.property_column,
        property_kind=property_kind,
    log:
        log_path("export_relaxed"),
    threads: 1
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/export_relaxed.py"
