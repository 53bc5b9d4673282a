# Figures for `snakemake --report report.html`: property distributions, filter funnel and the top
# candidates of every campaign. Captions live in workflow/report/.


rule report_figures:
    input:
        dataset=intact(DATASET),
        candidates=intact(CANDIDATES),
        metrics=intact(FUNNEL),
        verified=intact(VERIFIED),
    output:
        hist=report(f"{RESULTS}/{{campaign}}/report/property_distribution.png",
                    caption="../report/property_distribution.rst", category="{campaign}", subcategory="plots"),
        funnel_png=report(f"{RESULTS}/{{campaign}}/report/funnel.png", caption="../report/funnel.rst",
                          category="{campaign}", subcategory="plots"),
        top=report(f"{RESULTS}/{{campaign}}/report/top_candidates.html", caption="../report/top_candidates.rst",
                   category="{campaign}", subcategory="candidates"),
    params:
        domain=lambda wc: camp(wc).domain,
        oracle=lambda wc: camp(wc).oracle.to_dict(),
        target=lambda wc: camp(wc).target.to_dict(),
        property_column=lambda wc: camp(wc).dataset.property_column,
        property_kind=property_kind,
        unit=lambda wc: camp(wc).unit,
    log:
        log_path("report_figures"),
    threads: 1
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/report_figures.py"
