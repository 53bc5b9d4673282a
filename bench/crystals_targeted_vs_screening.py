"""Targeted crystal search against screening, pooled over sampling batches, with a significance test.

    python -m bench.crystals_targeted_vs_screening --targeted bench/out/crystals_seed{2,3,4,5} \
        [--earlier bench/out/crystals] --screening bench/out/crystals [--screening-from N] [--threads 1]

Reads the ``results.json`` that ``bench/crystals_generators.py`` wrote in each folder (the diffusion
generator's targeted CHGNet check in the ``--targeted`` and ``--earlier`` folders, the screening
baseline in the ``--screening`` folder) and counts, per CHGNet evaluation:

* hits: stable (E_hull <= 0.1 eV/atom) with a CHGNet-EOS bulk modulus at or above the target;
* S.U.N. hits: hits that are still novel *after* relaxation (the generator's novelty filter compares the
  unrelaxed sample with the training cells, and CHGNet may relax a sample onto a known phase) and unique
  across all batches (the same pymatgen StructureMatcher as the campaign: stol 0.5, ltol 0.3, angle_tol 10).
  Relaxed hit structures come from the per-candidate records of the check; for checks run before those
  records existed the hits are found again in the saved samples (same predictor ranking, same formula)
  and re-relaxed with CHGNet.

The screening arm evaluates training cells, which are known by construction, so its hits are counted as hits.
Reported: the rate ratio with a 90% two-sided (i.e. one-sided 95% lower bound) confidence interval and the
one-sided Fisher exact p-value, for the ``--targeted`` folders alone (primary: fresh batches, fixed depth)
and pooled with ``--earlier`` (secondary). Writes ``--out`` (JSON) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import date
from pathlib import Path

import numpy as np

from bench.lib.common import ROOT, provenance, setup_run
from bench.lib.crystals import campaign, label_hits, make_chgnet, predicted, targeted_order
from bench.lib.stats import compare_rates

log = logging.getLogger("bench")
#: the packages whose versions the summary records
PACKAGES = ("pymatgen", "chgnet", "matcalc", "scipy", "torch")


def _check(folder: Path, generator: str) -> dict:
    path = folder / "results.json"
    if not path.exists():
        raise SystemExit(f"{path}: missing; run bench/crystals_generators.py --out {folder} --chgnet N first")
    res = json.loads(path.read_text())
    try:
        return res["generators"][generator]["targeted"]["chgnet"]
    except KeyError:
        raise SystemExit(f"{path}: no targeted CHGNet check of {generator}; run with --modes targeted --chgnet N") \
            from None


def _relaxed_hits_again(folder: Path, check: dict, generator: str) -> list:
    """Hits of a check without per-candidate records: find them in the saved samples and relax them again, with
    the product's CHGNet oracle (the bench's settings; the cells as generated, as those checks took them; no
    EOS: only the relaxed cells are wanted)."""
    from invdesign.artifacts import load_graphs, load_model, read_table
    from pymatgen.core import Structure

    samples = read_table(folder / f"samples_{generator}_targeted.parquet", ["formula", "structure", "valid"])
    meta = load_graphs(folder / "graphs.pt").meta
    predictor, _ = load_model(folder / "predictor.pt")
    order = targeted_order(samples, predicted(samples, predictor, meta))
    lo, hi = check["ranks"]
    ranked = samples.iloc[order[lo:hi]]
    wanted, found = list(check["hits"]), []
    for i, f in enumerate(ranked["formula"]):
        if f in wanted:
            wanted.remove(f)
            found.append(i)
    if wanted:
        raise SystemExit(f"{folder}: hits {wanted} are not among the saved samples' ranks {lo}-{hi}")
    log.info("%s: re-relaxing %d hits %s (no per-candidate records)", folder, len(found), check["hits"])
    train = read_table(folder / "dataset.parquet", ["id", "formula", "structure", "split"])
    train = train[train["split"] == "train"].reset_index(drop=True)
    oracle = make_chgnet(campaign(), "none", False)
    res = oracle.evaluate(ranked.iloc[found][["formula", "structure"]].assign(rank=1), train, {})
    return [Structure.from_str(c, fmt="cif") if c else None for c in res["relaxed_cif"]]


def _screening(results: dict, start: int, path: Path) -> dict:
    """The screening baseline, or only its cells from rank ``start`` on: the record minus the snapshot of the
    first ``start`` cells that ``crystals_generators.py --screening-start start`` keeps."""
    screen = results.get("screening_baseline")
    if not screen:
        raise SystemExit(f"{path}: no screening_baseline; run bench/crystals_generators.py --screening N")
    if not start:
        return screen
    first = results.get(f"screening_baseline_first{start}")
    if not first:
        raise SystemExit(f"{path}: no snapshot of the first {start} screened cells (screening_baseline_first{start}); "
                         f"it is kept by a run with --screening-start {start}")
    out = {k: screen[k] - first[k] for k in ("evaluated", "stable", "stable_and_on_target")}
    hits = list(screen["hits"])
    for f in first["hits"]:
        hits.remove(f)
    # EOS values are appended in rank order: the later cells' values are the tail
    eos = screen["eos_bulk_modulus_gpa"][len(first["eos_bulk_modulus_gpa"]):]
    return out | {"hits": hits, "eos_bulk_modulus_gpa": eos, "ranks": [start, screen["ranks"][1]]}


def _hits(folder: Path, check: dict, generator: str) -> list[dict]:
    from pymatgen.core import Structure

    if "candidates" in check:
        return [{"formula": c["formula"], "structure": Structure.from_str(c["relaxed_cif"], fmt="cif"),
                 "eos_bulk_modulus_gpa": c["eos_bulk_modulus_gpa"], "e_hull": c["e_hull"], "batch": str(folder)}
                for c in check["candidates"] if c["hit"]]
    cache = folder / f"relaxed_hits_{generator}_targeted.json"  # the re-relaxation takes minutes: done once
    key = {"ranks": check["ranks"], "hits": check["hits"]}
    cached = json.loads(cache.read_text()) if cache.exists() else {}
    if cached.get("key") == key:
        structures = [Structure.from_str(c, fmt="cif") if c else None for c in cached["cifs"]]
    else:
        structures = _relaxed_hits_again(folder, check, generator) if check["hits"] else []
        cache.write_text(json.dumps({"key": key, "cifs": [s.to(fmt="cif") if s else "" for s in structures]}))
    return [{"formula": f, "structure": s, "batch": str(folder)} for f, s in zip(check["hits"], structures)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targeted", nargs="+", required=True, help="folders with fresh targeted batches (primary)")
    ap.add_argument("--earlier", nargs="*", default=[], help="folders with earlier targeted batches (pooled only)")
    ap.add_argument("--screening", required=True, help="folder whose results.json holds screening_baseline")
    ap.add_argument("--screening-from", type=int, default=0,
                    help="count only the screened cells from this rank on (a comparison on new data only)")
    ap.add_argument("--depth", type=int, default=20, help="candidates CHGNet-checked per --targeted batch")
    ap.add_argument("--generator", default="diffusion")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "crystals_targeted_vs_screening.json"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--thresholds", type=float, nargs="*", default=[200.0, 250.0, 300.0],
                    help="also compare stable cells with EOS K at or above each of these (GPa)")
    args = ap.parse_args(argv)
    setup_run(argparse.Namespace(threads=args.threads, out=str(Path(args.out).parent)))
    screen_path = Path(args.screening) / "results.json"
    screen = _screening(json.loads(screen_path.read_text()) if screen_path.exists() else {}, args.screening_from,
                        screen_path)
    from invdesign.artifacts import read_table

    train = read_table(Path(args.screening) / "dataset.parquet", ["id", "formula", "structure", "split"])
    train = train[train["split"] == "train"]

    folders = [(Path(f), "primary") for f in args.targeted] + [(Path(f), "earlier") for f in args.earlier]
    batches, checks, hits = [], [], []
    for folder, role in folders:
        check = _check(folder, args.generator)
        if role == "primary" and check["ranks"] != [0, args.depth]:
            raise SystemExit(f"{folder}: ranks {check['ranks']} checked; the primary comparison counts complete "
                             f"batches only (ranks [0, {args.depth}]): finish it with --chgnet-start, or leave it out")
        checks.append(check)
        batch_hits = _hits(folder, check, args.generator)
        for h in batch_hits:
            h["role"] = role
        hits += batch_hits
        batches.append({"folder": str(folder), "role": role, "ranks": check["ranks"], "evaluated": check["evaluated"],
                        "stable": check["stable"], "hits": check["hits"]})
    label_hits(hits, train)
    summary = {"date": str(date.today()), "provenance": provenance(PACKAGES), "generator": args.generator,
               "batches": batches,
               "screening": {k: screen[k] for k in ("evaluated", "stable", "stable_and_on_target", "hits")}
               | {"ranks": screen.get("ranks", [0, screen["evaluated"]])},
               "hits": [{k: v for k, v in h.items() if k != "structure"} for h in hits]}
    for name, roles in (("primary", {"primary"}), ("pooled", {"primary", "earlier"})):
        n_t = sum(b["evaluated"] for b in batches if b["role"] in roles)
        mine = [h for h in hits if h["role"] in roles]
        sun = [h for h in mine if h["novel"] and (h["duplicate_of"] is None or hits[h["duplicate_of"]]["role"]
                                                   not in roles)]
        n_s, k_s = screen["evaluated"], screen["stable_and_on_target"]
        summary[name] = {"hits": compare_rates(n_t, len(mine), n_s, k_s),
                         "sun_hits": compare_rates(n_t, len(sun), n_s, k_s),
                         "sun_formulas": [h["formula"] for h in sun]}
    # the same comparison at other thresholds (stable cells with EOS K >= t). A check run with eos_for "all" also
    # lists the EOS of unstable cells and older checks keep no per-cell record, so: targeted counts are lower
    # bounds, screening counts upper bounds (the comparison can only understate the targeted search here)
    def at(check_like, t, lower):
        if "candidates" in check_like:
            return sum(bool(c["stable"]) and (c["eos_bulk_modulus_gpa"] or 0) >= t for c in check_like["candidates"])
        k = np.asarray(check_like["eos_bulk_modulus_gpa"], float)
        extra = max(0, len(k) - check_like["stable"]) if lower else 0
        return max(0, int((k >= t).sum()) - extra)

    summary["thresholds"] = {}
    for t in args.thresholds:
        for name, roles in (("primary", {"primary"}), ("pooled", {"primary", "earlier"})):
            k_t = sum(at(c, t, True) for b, c in zip(batches, checks) if b["role"] in roles)
            n_t = sum(b["evaluated"] for b in batches if b["role"] in roles)
            summary["thresholds"].setdefault(str(t), {})[name] = compare_rates(n_t, k_t, screen["evaluated"],
                                                                               at(screen, t, False))
    Path(args.out).write_text(json.dumps(summary, indent=2))

    def cell(c):
        ci = f" (90% CI {c['ci90'][0]:.1f}-{c['ci90'][1]:.1f})" if "ci90" in c else ""
        rr = "-" if c["rate_ratio"] is None else f"{c['rate_ratio']:.1f}x{ci}"
        return f"{c['targeted'][0]}/{c['targeted'][1]} | {c['screening'][0]}/{c['screening'][1]} | {rr} | " \
               f"{c['p_one_sided_fisher']:.3g}"

    print("| arm | count | targeted | screening | rate ratio | one-sided Fisher p |")
    print("|---|---|---|---|---|---|")
    for name in ("primary", "pooled"):
        for what in ("hits", "sun_hits"):
            print(f"| {name} | {what} | {cell(summary[name][what])} |")
    print("\n| stable and EOS K >= | arm | targeted | screening | rate ratio | one-sided Fisher p |")
    print("|---|---|---|---|---|---|")
    for t, arms in summary["thresholds"].items():
        for name, c in arms.items():
            print(f"| {t} GPa | {name} | {cell(c)} |")
    for h in hits:
        print(f"- {h['formula']} ({Path(h['batch']).name}): novel after relaxation {h['novel']}"
              + (f", matches training {h['known_as']}" if h.get("known_as") else "")
              + ("" if h["duplicate_of"] is None else f", duplicate of hit {h['duplicate_of']}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
