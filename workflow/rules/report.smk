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
                    caption="../report/property_distribution.rst", category="{campaign}", subcategory="3. plots"),
        funnel_png=report(f"{RESULTS}/{{campaign}}/report/funnel.png", caption="../report/funnel.rst",
                          category="{campaign}", subcategory="3. plots"),
        top=report(f"{RESULTS}/{{campaign}}/report/top_candidates.html", caption="../report/top_candidates.rst",
                   category="{campaign}", subcategory="2. candidates"),
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


rule report_landing:
    """The page a chemist opens first: confirmed hits as cards with pictures, then the ranked table, the funnel and
    the distributions (invdesign.pipeline.landing)."""
    input:
        verified=intact(VERIFIED),
        oracle_metrics=intact(ORACLE_METRICS),
        funnel_metrics=intact(FUNNEL),
        hist=f"{RESULTS}/{{campaign}}/report/property_distribution.png",
        funnel_png=f"{RESULTS}/{{campaign}}/report/funnel.png",
        prepared=intact(PREPARED),
        provenance=PROVENANCE,
    output:
        out_html=report(f"{RESULTS}/{{campaign}}/report/index.html", caption="../report/landing.rst",
                        category="{campaign}", subcategory="1. confirmed hits (start here)"),
    params:
        campaign=lambda wc: wc.campaign,
        domain=lambda wc: camp(wc).domain,
        oracle=lambda wc: camp(wc).oracle.to_dict(),
        target=lambda wc: camp(wc).target.to_dict(),
        property_column=lambda wc: camp(wc).dataset.property_column,
        property_kind=property_kind,
        unit=lambda wc: camp(wc).unit,
    log:
        log_path("report_landing"),
    threads: 1
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/report_landing.py"


rule provenance:
    """What produced the campaign's results (invdesign.pipeline.provenance): the resolved config, commit, package and
    tool versions, the trained models' sha256 and the device; the landing page shows it in its footer."""
    input:
        models=lambda wc: [f"{RESULTS}/{wc.campaign}/models/generator_{g}.pt" for g in trained_types(wc.campaign)]
        + [f"{RESULTS}/{wc.campaign}/models/predictor.pt"],
    output:
        provenance=PROVENANCE,
    params:
        campaign=lambda wc: wc.campaign,
        config=lambda wc: {"results": RESULTS, "data": SETTINGS.data.to_dict(), "campaign": camp(wc).to_dict()},
        runtime=SETTINGS.runtime.to_dict(),
    log:
        log_path("provenance"),
    threads: 1
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/provenance.py"


# `snakemake --report` before a finished run: one line instead of Snakemake's "marked for report but does not exist"
if report_requested(sys.argv):
    one_line(require_finished, [p for r in (rules.report_figures, rules.report_landing) for pattern in r.output
                                for p in expand(pattern, campaign=CAMPAIGNS)])
