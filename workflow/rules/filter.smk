# Validity / uniqueness / novelty / domain checks, independent property prediction,
# ranking, and the candidate tables handed to chemists. Candidates of all of a campaign's
# generators are merged here; a campaign with an ebm generator gets an OOD score on every row.


rule filter_rank:
    input:
        samples=intact(campaign_samples),
        dataset=intact(DATASET),
        known=intact(KNOWN),
        predictor=intact(PREDICTOR),
        ebm=intact(ood_model),
    output:
        csv=f"{RESULTS}/{{campaign}}/candidates.csv",
        parquet=CANDIDATES,
        metrics=FUNNEL,
        structures=directory(f"{RESULTS}/{{campaign}}/structures"),
    params:
        campaign=lambda wc: wc.campaign,
        domain=lambda wc: camp(wc).domain,
        filters=lambda wc: camp(wc).filters.to_dict(),
        target=lambda wc: camp(wc).target.to_dict(),
        property_column=lambda wc: camp(wc).dataset.property_column,
        unit=lambda wc: camp(wc).unit,
    log:
        log_path("filter_rank"),
    benchmark:
        bench_path("filter_rank")
    threads: 1
    priority: chain_priority
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/filter_rank.py"


rule summary:
    input:
        metrics=expand(f"{RESULTS}/{{campaign}}/metrics.json", campaign=CAMPAIGNS),
        oracle=expand(ORACLE_METRICS, campaign=CAMPAIGNS),
    output:
        csv=f"{RESULTS}/summary.csv",
        by_generator=f"{RESULTS}/summary_by_generator.csv",
    log:
        f"{RESULTS}/logs/summary.log",
    threads: 1
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/summary.py"
