"""Rule ``report_figures``: the figures of ``snakemake --report`` for one campaign: property distributions
(training data, generated, passing, and the oracle's values), the filter funnel with the oracle's stages, and
the domain's page of the best candidates."""

from __future__ import annotations

import json
from pathlib import Path

from ..artifacts import read_table
from .landing import campaign_columns, funnel_stages, property_name
from .plots import funnel, property_histogram
from .verify import make_oracle


def report_figures(*, domain: str, oracle: dict, target: dict, property_column: str, property_kind: str | None,
                   unit: str, dataset: str, candidates: str, metrics: str, verified: str, hist: str,
                   funnel_png: str, top: str) -> None:
    from ..domains import get_domain

    data = read_table(dataset, ["property", "split"])
    cands = read_table(candidates, ["predicted_property", "passes"])
    checked = read_table(verified)
    extra_hist = {}
    if "generator" in cands and cands["generator"].nunique() > 1:  # merged campaigns: one curve per generator
        for gen, part in cands[cands["passes"].astype(bool)].groupby("generator"):
            extra_hist[f"passing, {gen}"] = part["predicted_property"].to_numpy(float)
    orc = make_oracle(domain, oracle, target, property_column, property_kind)
    name = property_name(orc.property, property_column)
    label = f"{name} ({unit})" if unit else name
    extra_hist.update(orc.report_extras(checked)[0])
    property_histogram(data, cands["predicted_property"].to_numpy(float), cands, target, label, hist, extra_hist)
    m = json.loads(Path(metrics).read_text())
    funnel(funnel_stages(m["funnel"], orc, checked), f"{m['campaign']}: candidates kept at each stage", funnel_png)
    dom = get_domain(domain)
    dom.top_candidates_html(cands, checked, unit, top, campaign_columns(dom.report_columns, orc))


def report_requested(argv: list[str]) -> bool:
    """Whether Snakemake was asked for ``--report`` from existing results (not ``--report-after-run``)."""
    return any(a == "--report" or a.startswith("--report=") for a in argv) and "--report-after-run" not in argv


def require_finished(paths: list[str]) -> None:
    """``snakemake --report`` builds from a finished run: one line naming what is missing before one."""
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        from ..errors import InvdesignError

        raise InvdesignError(f"snakemake --report needs a finished run: {len(missing)} of the report's "
                             f"{len(paths)} files are missing (first: {missing[0]}); run `snakemake` first, or "
                             "add --report-after-run")
