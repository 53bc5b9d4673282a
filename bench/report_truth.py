"""Every card of a campaign's landing page checked against its row of ``candidates_verified.parquet`` (issue #36):
the command line of :mod:`bench.lib.report_truth` (which ``bench.report_browser`` runs on each rendered page).

    python -m bench.report_truth --configfile bench/configs/report_homo.yaml [--page results/.../index.html]

Prints ``{campaign: {"cards", "labels", "mismatches": [...]}, "provenance": ...}``; exit status 1 when a card
says something its row does not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from bench.lib.common import provenance
from bench.lib.report_truth import campaigns, check

#: the packages whose versions the output records
PACKAGES = ("pandas", "invdesign")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configfile", required=True)
    ap.add_argument("--campaign", default=None, help="one campaign of the config (default: each)")
    ap.add_argument("--page", default=None, help="the landing page (default: results/<campaign>/report/index.html)")
    args = ap.parse_args(argv)
    out = {}
    for name, (camp, verified) in campaigns(args.configfile).items():
        if args.campaign not in (None, name):
            continue
        page = Path(args.page or verified.parent / "report" / "index.html").read_text()
        out[name] = check(page, pd.read_parquet(verified), camp)
    bad = any(r["mismatches"] for r in out.values())
    print(json.dumps(out | {"provenance": provenance(PACKAGES)}, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
