"""CHGNet against SevenNet on the same cells, the same known phases and the same hull (issue #23).

Takes relaxed cells from earlier verdicts (a bench study's ``lane*.jsonl`` records, e.g. protocol v6's hits, or a
campaign's ``oracle/checked.parquet``), and runs the product's crystal oracle chain on them with the committee on
every cell (``committee.select: all``): CHGNet re-relaxes each cell and places it on a hull of every known MP phase
of its chemical system (all sizes), SevenNet does the same on its MP2020-corrected hull, both fit an EOS.

    python -m bench.committee_agreement --records 'bench/records/crystals_v6/lane*.jsonl' --hits-only \\
        --target-min 300 --name v6_hits
    python -m bench.committee_agreement --checked results/mp_bulk/oracle/checked.parquet --target-min 250 \\
        --name default_campaign

Writes ``bench/out/committee/<name>/`` (the chain's files) and ``bench/records/committee_<name>/``
(``verdicts.csv`` without structures, ``metrics.json``).
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
from pathlib import Path

import pandas as pd

from bench.lib.common import provenance

#: the packages whose versions the metrics record
PACKAGES = ("chgnet", "sevenn", "matcalc", "pymatgen", "torch")


def candidates_from_records(pattern: str, hits_only: bool) -> pd.DataFrame:
    from pymatgen.core import Structure

    from invdesign.chem.crystals import structure_to_record

    rows = [json.loads(line) for f in sorted(glob.glob(pattern)) for line in Path(f).read_text().splitlines()]
    rows = [r for r in rows if r.get("relaxed_cif") and (r.get("hit") or not hits_only)]
    return pd.DataFrame({"formula": [r["formula"] for r in rows], "predicted_property": [r.get("pred") for r in rows],
                         "earlier_e_hull": [r.get("e_hull") for r in rows],
                         "earlier_eos_gpa": [r.get("eos_bulk_modulus_gpa") for r in rows],
                         "structure": [structure_to_record(Structure.from_str(r["relaxed_cif"], fmt="cif"))
                                       for r in rows]})


def candidates_from_checked(path: str) -> pd.DataFrame:
    from pymatgen.core import Structure

    from invdesign.chem.crystals import structure_to_record

    t = pd.read_parquet(path)
    t = t[t["relaxed_cif"].fillna("") != ""]
    return pd.DataFrame({"formula": t["formula"].to_numpy(), "predicted_property": t["predicted_property"].to_numpy(),
                         "earlier_e_hull": t["e_hull"].to_numpy(), "earlier_eos_gpa": t["eos_bulk_modulus_gpa"].to_numpy(),
                         "structure": [structure_to_record(Structure.from_str(c, fmt="cif")) for c in t["relaxed_cif"]]})


def main(argv=None) -> None:
    from invdesign.pipeline.data import known_reference
    from invdesign.pipeline.verify import run_oracle_chain

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", help="glob of lane*.jsonl verdict records")
    p.add_argument("--hits-only", action="store_true")
    p.add_argument("--checked", help="a campaign's oracle/checked.parquet")
    p.add_argument("--target-min", type=float, required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--mirror", default="../shared/data")
    p.add_argument("--model", default="7net-0")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import torch

    torch.set_num_threads(1)
    out = Path("bench/out/committee") / args.name
    out.mkdir(parents=True, exist_ok=True)
    cands = candidates_from_records(args.records, args.hits_only) if args.records else \
        candidates_from_checked(args.checked)
    cands.insert(0, "rank", range(1, len(cands) + 1))
    cands["passes"], cands["distance_to_target"] = True, 0.0
    cands.to_parquet(out / "candidates.parquet")
    known = out / "known.parquet"
    if not known.exists():
        known_reference(campaign=args.name, domain="crystals", dataset={"source": "mp_elasticity"}, known_library=[],
                        data={"mirror": args.mirror, "cache": "bench/out/cache"}, out=str(known))
    (out / "prepared.json").write_text("{}")
    oracle = {"top_k": None, "batch_size": 1000, "fmax": 0.05, "max_steps": 300, "rescale_volume": False,
              "eos_for": "all", "committee": {"select": "all", "model": args.model}}
    m = run_oracle_chain(campaign=args.name, domain="crystals", oracle=oracle, target={"min": args.target_min},
                         property_column="bulk_modulus_gpa", property_kind=None,
                         candidates=str(out / "candidates.parquet"), known=str(known),
                         prepared=str(out / "prepared.json"), folder=str(out / "oracle"))
    table = pd.read_parquet(out / "oracle" / "candidates_verified.parquet")
    rec = Path("bench/records") / f"committee_{args.name}"
    rec.mkdir(parents=True, exist_ok=True)
    keep = [c for c in table.columns if c not in ("structure", "relaxed_cif")]
    table[keep].to_csv(rec / "verdicts.csv", index=False)
    m = m | {"provenance": provenance(PACKAGES)}
    (rec / "metrics.json").write_text(json.dumps(m, indent=1, default=str) + "\n")
    print(json.dumps(m, indent=1, default=str))


if __name__ == "__main__":
    main()
