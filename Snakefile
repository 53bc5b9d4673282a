# invdesign: property-guided inverse design of molecules and crystals.
#   snakemake --cores 2                                              # default campaign (both targets, small, CPU)
#   snakemake --cores 8 --configfile config/molecules_gap.yaml       # swap the campaign by config only
# The rules live in workflow/rules/; the logic in the invdesign Python package.

from snakemake.utils import min_version

min_version("9.17")  # rules take their priority from a function (older releases stop with an unclear error)

report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/featurize.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/filter.smk"
include: "workflow/rules/verify.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        expand(f"{RESULTS}/{{campaign}}/candidates.csv", campaign=CAMPAIGNS),
        f"{RESULTS}/summary.csv",
        final_outputs(),
    default_target: True
