"""The campaign report checked in a real browser (issue #25): headless Chromium renders each campaign's landing page
and the Snakemake report, takes screenshots, and checks that every image of every card loaded.

    python -m bench.report_browser [--configfile config/tests/tiny.yaml] [--results results/tiny] [--run]

``--run`` runs the campaign first (``snakemake --cores 2``); otherwise its results must exist. Then
``snakemake --report report.zip`` (the report with every item as its own file) and ``--report report.html``.
Each landing page (``report/index.html`` of a campaign, taken from the unpacked report) is opened in headless
Chromium; the page writes ``data-images="loaded/total"`` on its body once loaded, read back from the rendered DOM,
and every card of the rendered DOM is checked against its row of the campaign's ``candidates_verified.parquet``
(:mod:`bench.lib.report_truth`: labels name the campaign's property and unit, verdict words match the verdict columns).
Screenshots and ``results.json`` go to ``--out`` (default bench/out/report_browser); ``--records`` keeps
results.json. Needs a Chromium (Debian: ``apt-get install chromium``; ``--chromium`` names another binary).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bench.lib.common import ROOT, provenance
from bench.lib.report_truth import campaigns
from bench.lib.report_truth import check as check_cards

#: the packages whose versions the summary records
PACKAGES = ("snakemake", "pandas", "matplotlib")


def chromium(binary: str, *args, timeout: int = 120) -> subprocess.CompletedProcess:
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--virtual-time-budget=10000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def snakemake(configfile: str, *extra) -> None:
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", configfile, *extra]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")


def check_page(binary: str, page: Path, shot: Path, height: int, truth=None) -> dict:
    """Images loaded, cards and the lead of one landing page in Chromium; ``truth(dom)``: the cards checked against
    their rows (:func:`bench.lib.report_truth.check`)."""
    dom = chromium(binary, "--dump-dom", page.resolve().as_uri()).stdout
    m = re.search(r'<body[^>]*data-images="(\d+)/(\d+)"', dom)
    loaded, total = (int(m.group(1)), int(m.group(2))) if m else (0, -1)
    chromium(binary, f"--window-size=1300,{height}", f"--screenshot={shot}", page.resolve().as_uri())
    cards = dom.count('<div class="card ')
    verdicts = truth(dom) if truth else None  # None: not asked for
    return {"page": str(page), "images_loaded": loaded, "images": total, "cards": cards,
            "confirmed_cards": dom.count('<div class="card confirmed'),
            "lead": re.sub(r"<[^>]+>|\s+", " ", (re.search(r'<p class="lead">(.*?)</p>', dom, re.S) or
                                                   re.search("(.)", "?")).group(1)).strip(),
            "cards_against_rows": verdicts,
            "ok": bool(m) and total > 0 and loaded == total and cards > 0 and not (verdicts or {}).get("mismatches"),
            "screenshot": str(shot)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configfile", default="config/tests/tiny.yaml")
    ap.add_argument("--results", default=None, help="the config's results folder (default: read from it)")
    ap.add_argument("--run", action="store_true", help="run the campaign first")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "report_browser"))
    ap.add_argument("--records", default=None, help="folder to copy results.json to")
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser") or "chromium")
    args = ap.parse_args(argv)
    import yaml

    results = Path(args.results or yaml.safe_load((ROOT / args.configfile).read_text())["results"])
    results = results if results.is_absolute() else ROOT / results
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if args.run:
        snakemake(args.configfile)
    snakemake(args.configfile, "--report", str(out / "report.zip"))
    snakemake(args.configfile, "--report", str(out / "report.html"))
    with zipfile.ZipFile(out / "report.zip") as zf:
        zf.extractall(out / "unpacked")
    # the landing pages as the report serves them (each report item is a file of the unpacked report)
    pages = {re.search(r"<title>(.*?):", p.read_text()).group(1): p for p in (out / "unpacked").rglob("index.html")}
    expected = sorted(p.parent.parent.name for p in results.glob("*/report/index.html"))
    settings = {name: camp for name, (camp, _) in campaigns(str(ROOT / args.configfile)).items()}

    def truth(name):
        def cards_against_rows(dom: str) -> dict:
            table = results / name / "candidates_verified.parquet"
            if not table.exists():
                return {"cards": 0, "labels": 0, "mismatches": [f"no {table} to check the cards against"]}
            return check_cards(dom, pd.read_parquet(table), settings[name])
        return cards_against_rows

    checks = [check_page(args.chromium, p, out / f"landing_{name}.png", 2400, truth(name))
              for name, p in sorted(pages.items())]
    main_page = chromium(args.chromium, "--window-size=1300,900", f"--screenshot={out / 'snakemake_report.png'}",
                         (out / "report.html").resolve().as_uri())
    summary = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "configfile": args.configfile,
               "chromium": chromium(args.chromium, "--version").stdout.strip() or args.chromium,
               "pages": checks, "snakemake_report_screenshot": main_page.returncode == 0,
               "campaigns_in_report": sorted(pages), "campaigns_in_results": expected,
               "ok": bool(checks) and all(c["ok"] for c in checks) and sorted(pages) == expected,
               "provenance": provenance(PACKAGES)}
    (out / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    if args.records:
        Path(args.records).mkdir(parents=True, exist_ok=True)
        (Path(args.records) / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
