"""What the molecule plausibility rules remove, measured on molecules DFT has judged (issue #24).

    python -m bench.plausibility_rules [--records bench/records/dft_verdicts/records.jsonl ...]

For every DFT-judged molecule of the given records (generated candidates of a campaign, or the EDM bench's answers):
which rules of ``filters`` would reject it (``structural_alerts``; ``rare_group_share`` at several thresholds, with
group shares from a 10,000-molecule seeded sample of QM9, as the rule computes them on a campaign's training
data), and how that splits between DFT-confirmed molecules (gap in 4-5 eV for at least 80% of the protocol's
errors, the oracle's rule) and the others. Writes ``analysis.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bench.lib.common import ROOT, write_analysis
from bench.lib.stats import confirmed_share

#: the packages whose versions the analysis records
PACKAGES = ("rdkit", "pandas")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", nargs="+", default=[str(ROOT / "bench/records/dft_verdicts/records.jsonl")])
    ap.add_argument("--out", default=str(ROOT / "bench/records/plausibility"))
    ap.add_argument("--window", type=float, nargs=2, default=[4.0, 5.0])
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.0005, 0.001, 0.002, 0.005])
    ap.add_argument("--cache", default=str(ROOT / "data" / "cache"))
    args = ap.parse_args(argv)
    from rdkit import Chem, RDLogger

    from invdesign.chem.molecules import functional_groups, group_shares, structural_alerts
    from invdesign.data.qm9 import raw_table

    RDLogger.DisableLog("rdApp.*")
    frames = []
    for path in args.records:
        d = pd.read_json(path, lines=True)
        frames.append(d.assign(source=str(Path(path).relative_to(ROOT)) if Path(path).is_relative_to(ROOT) else path))
    d = pd.concat(frames, ignore_index=True)
    d = d[d["dft_ok"].eq(True)].drop_duplicates("smiles").reset_index(drop=True)
    d["confirmed"] = confirmed_share(d["dft_gap_ev"], args.window, 0.8)
    shares = group_shares(raw_table(args.cache)["SMILES"])
    mols = [Chem.MolFromSmiles(s) for s in d["smiles"]]
    groups = [functional_groups(m) for m in mols]
    d["alerts"] = ["; ".join(structural_alerts(m)) for m in mols]

    def split(flag: np.ndarray) -> dict:
        conf = d["confirmed"].to_numpy(bool)
        return {"flagged": int(flag.sum()), "flagged_confirmed": int((flag & conf).sum()),
                "flagged_not_confirmed": int((flag & ~conf).sum()),
                "mean_dft_gap_flagged_ev": float(d.loc[flag, "dft_gap_ev"].mean()) if flag.any() else None,
                "mean_dft_gap_kept_ev": float(d.loc[~flag, "dft_gap_ev"].mean()) if (~flag).any() else None,
                "share_confirmed_kept": float(conf[~flag].mean()) if (~flag).any() else None,
                "flagged_molecules": [f"{s} ({g:.2f} eV{', confirmed' if c else ''})" for s, g, c in
                                      zip(d.loc[flag, "smiles"], d.loc[flag, "dft_gap_ev"], d.loc[flag, "confirmed"])]}

    res = {"records": args.records, "n_molecules": int(len(d)), "n_confirmed": int(d["confirmed"].sum()),
           "share_confirmed": float(d["confirmed"].mean()),
           "structural_alerts": split(d["alerts"].ne("").to_numpy()), "rare_group_share": {}}
    for t in args.thresholds:
        flag = np.array([any(shares.get(g, 0.0) < t for g in gs) for gs in groups])
        res["rare_group_share"][str(t)] = split(flag)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_analysis(out, res, PACKAGES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
