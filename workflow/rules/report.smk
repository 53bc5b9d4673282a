# Figures for `snakemake --report report.html`: property distributions, filter funnel and the top
# candidates of every campaign. Captions live in workflow/report/.


rule report_molecules:
    input:
        dataset=rules.prepare_dataset.output.dataset,
        samples=campaign_samples,
        candidates=rules.filter_rank.output.parquet,
        metrics=rules.filter_rank.output.metrics,
        verified=rules.verify_molecules.output.parquet,
    output:
        hist=report(f"{RESULTS}/{{campaign}}/report/property_distribution.png",
                    caption="../report/property_distribution.rst", category="{campaign}", subcategory="plots"),
        funnel=report(f"{RESULTS}/{{campaign}}/report/funnel.png", caption="../report/funnel.rst",
                      category="{campaign}", subcategory="plots"),
        top=report(f"{RESULTS}/{{campaign}}/report/top_candidates.png", caption="../report/top_molecules.rst",
                   category="{campaign}", subcategory="candidates"),
    wildcard_constraints:
        campaign=_only(MOL_CAMPAIGNS),
    log:
        log_path("report_molecules"),
    threads: 1
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/report_figures.py"


rule report_crystals:
    input:
        dataset=rules.prepare_dataset.output.dataset,
        samples=campaign_samples,
        candidates=rules.filter_rank.output.parquet,
        metrics=rules.filter_rank.output.metrics,
        verified=rules.verify_crystals.output.parquet,
    output:
        hist=report(f"{RESULTS}/{{campaign}}/report/property_distribution.png",
                    caption="../report/property_distribution.rst", category="{campaign}", subcategory="plots"),
        funnel=report(f"{RESULTS}/{{campaign}}/report/funnel.png", caption="../report/funnel.rst",
                      category="{campaign}", subcategory="plots"),
        top=report(f"{RESULTS}/{{campaign}}/report/top_candidates.html", caption="../report/top_crystals.rst",
                   category="{campaign}", subcategory="candidates"),
    wildcard_constraints:
        campaign=_only(CRY_CAMPAIGNS),
    log:
        log_path("report_crystals"),
    threads: 1
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/report_figures.py"


def report_outputs():
    return (expand(f"{RESULTS}/{{campaign}}/report/top_candidates.png", campaign=MOL_CAMPAIGNS)
            + expand(f"{RESULTS}/{{campaign}}/report/top_candidates.html", campaign=CRY_CAMPAIGNS))
