"""What the plausibility rules of issue #36 remove, measured on molecules DFT has judged.

    python -m bench.plausibility_new_rules [--cache data/cache] [--out bench/records/plausibility]

Plan: ``bench/records/plausibility/PLAN_strain_bredt_size_3d.md``. For every DFT-converged molecule of the default
campaign's verdict study, the matched baselines and the EDM bench: which of the new rules would reject it (the N-F /
O-F alert on aromatic atoms, each strain alert, the Bredt rule, the heavy-atom bound, no 3D coordinates), how that
splits between DFT-confirmed molecules (gap in 4-5 eV for at least 80% of the protocol's errors, the oracle's rule)
and the others, and how many the rules in force before would have removed anyway. Writes
``analysis_new_rules.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

WINDOW = (4.0, 5.0)
BASELINE_ARMS = ("generators", "ga", "ga_more1", "library")


def load_sets() -> dict[str, pd.DataFrame]:
    """The DFT-converged molecules of each record set (``smiles``, ``dft_gap_ev``), distinct SMILES within a set, and
    under ``_failed`` the rows of each set whose xTB or DFT stage failed (``dft_ok`` false; rows never sent to DFT,
    ``dft_ok`` empty, are neither)."""
    verdicts = pd.read_json(ROOT / "bench/records/dft_verdicts/records.jsonl", lines=True)
    base = pd.concat([pd.read_parquet(ROOT / f"bench/records/baselines/molecules/{arm}/candidates_verified.parquet",
                                      columns=["smiles", "dft_ok", "dft_gap_ev"]).assign(arm=arm)
                      for arm in BASELINE_ARMS], ignore_index=True)
    edm = pd.read_json(ROOT / "bench/records/edm_dft/records.jsonl", lines=True)
    sets = {"dft_verdicts (qm9_gap, 4-5 eV)": verdicts, "baselines (4-5 eV)": base, "edm_dft (own requests)": edm}
    sets["dft_verdicts + baselines"] = pd.concat([verdicts, base], ignore_index=True)
    return {name: d[d["dft_ok"].eq(True)].drop_duplicates("smiles").reset_index(drop=True)[["smiles", "dft_gap_ev"]]
            for name, d in sets.items()} | {"_failed": {name: int(d["dft_ok"].eq(False).sum())
                                                        for name, d in sets.items()}}


def rule_flags(smiles: list[str], shares: dict, qm9_largest: int) -> dict[str, np.ndarray]:
    """Per rule, whether it rejects each molecule; ``rules before`` are the alerts and rare groups in force before."""
    from rdkit import Chem

    from invdesign.chem.geometry import has_3d_coordinates
    from invdesign.chem.molecules import STRAIN_ALERTS, STRUCTURAL_ALERTS, bredt_violation, functional_groups

    old_nf = Chem.MolFromSmarts("[F]-[N,O]")
    old_alerts = [Chem.MolFromSmarts(s) for n, s in STRUCTURAL_ALERTS.items() if n != "N-F / O-F bond"] + [old_nf]
    new_nf = Chem.MolFromSmarts(STRUCTURAL_ALERTS["N-F / O-F bond"])
    strain = {name: Chem.MolFromSmarts(smarts) for name, (smarts, _) in STRAIN_ALERTS.items()}
    mols = [Chem.MolFromSmiles(s) for s in smiles]
    flags = {"N-F / O-F on an aromatic atom (new)": [m.HasSubstructMatch(new_nf) and not m.HasSubstructMatch(old_nf)
                                                      for m in mols]}
    flags |= {name: [m.HasSubstructMatch(p) for m in mols] for name, p in strain.items()}
    flags["anti-Bredt"] = [bredt_violation(m) for m in mols]
    flags["heavy atoms > 9 (margin 0, default)"] = [m.GetNumAtoms() > qm9_largest for m in mols]
    flags["heavy atoms > 10 (margin 1)"] = [m.GetNumAtoms() > qm9_largest + 1 for m in mols]
    flags["no 3D coordinates (RDKit ETKDG)"] = [not has_3d_coordinates(s) for s in smiles]
    out = {k: np.asarray(v, bool) for k, v in flags.items()}
    out["all new rules (default margin)"] = np.any([v for k, v in out.items() if k != "heavy atoms > 10 (margin 1)"],
                                                   axis=0)
    out["rules before"] = np.array([any(m.HasSubstructMatch(p) for p in old_alerts)
                                    or any(shares.get(g, 0.0) < 0.001 for g in functional_groups(m)) for m in mols])
    return out


def summary(d: pd.DataFrame, flags: dict, windowed: bool) -> dict:
    before = flags["rules before"]
    conf = d["confirmed"].to_numpy(bool) if windowed else None
    res = {"n_molecules": int(len(d)), "removed_by_rules_before": int(before.sum())}
    if windowed:
        res["n_confirmed"] = int(conf.sum())
        res["share_confirmed"] = float(conf.mean()) if len(d) else None
    res["rules"] = {}
    for name, flag in flags.items():
        if name == "rules before":
            continue
        r = {"flagged": int(flag.sum()), "flagged_also_by_rules_before": int((flag & before).sum()),
             "mean_dft_gap_flagged_ev": float(d.loc[flag, "dft_gap_ev"].mean()) if flag.any() else None,
             "mean_dft_gap_kept_ev": float(d.loc[~flag, "dft_gap_ev"].mean()) if (~flag).any() else None}
        if windowed:
            r |= {"flagged_confirmed": int((flag & conf).sum()), "flagged_not_confirmed": int((flag & ~conf).sum()),
                  "share_confirmed_kept": float(conf[~flag].mean()) if (~flag).any() else None}
        r["flagged_molecules"] = [f"{s} ({g:.2f} eV{', confirmed' if windowed and c else ''})" for s, g, c in
                                  zip(d.loc[flag, "smiles"], d.loc[flag, "dft_gap_ev"],
                                      conf[flag] if windowed else [False] * int(flag.sum()))]
        res["rules"][name] = r
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default=str(ROOT / "data" / "cache"))
    ap.add_argument("--out", default=str(ROOT / "bench/records/plausibility"))
    args = ap.parse_args(argv)
    from rdkit import RDLogger

    from invdesign.chem.molecules import group_shares
    from invdesign.data.qm9 import raw_table

    from bench.lib.common import provenance
    from bench.lib.stats import confirmed_share

    RDLogger.DisableLog("rdApp.*")
    qm9 = raw_table(args.cache)["SMILES"]
    shares = group_shares(qm9)
    sample = qm9.iloc[np.random.default_rng(0).choice(len(qm9), 10000, replace=False)].tolist()  # as group_shares
    qm9_flags = rule_flags(sample, shares, 9)
    sets = load_sets()
    failed = sets.pop("_failed")
    res = {"plan": "bench/records/plausibility/PLAN_strain_bredt_size_3d.md", "window_ev": list(WINDOW),
           "confirmed_rule": ">= 80% of the DFT protocol's gap errors keep the DFT gap in the window",
           "dft_failed_rows (xTB or DFT, not counted)": failed,
           "qm9_share_flagged": {k: float(v.mean()) for k, v in qm9_flags.items()},
           "qm9_flagged_examples": {k: [s for s, f in zip(sample, v) if f][:5] for k, v in qm9_flags.items()
                                    if k != "rules before"},
           "sets": {}, "provenance": provenance(["rdkit", "numpy", "pandas"])}
    for name, d in sets.items():
        windowed = not name.startswith("edm")
        if windowed:
            d = d.assign(confirmed=confirmed_share(d["dft_gap_ev"], WINDOW, 0.8))
        res["sets"][name] = summary(d, rule_flags(d["smiles"].tolist(), shares, 9), windowed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(res, indent=1)
    (out / "analysis_new_rules.json").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
