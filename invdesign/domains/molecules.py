"""Molecule domain: QM9 or a user SMILES table -> graphs + SELFIES targets -> decoded SMILES -> checks."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from ..chem.molecules import build_vocab, check_molecules, decode_tokens, encode_tokens, selfies_tokens
from ..errors import InvdesignError
from ..featurize.molecule import EDGE_FEATURES, ELEMENTS, NODE_FEATURES, QM_FEATURES, feature_index, mol_to_graph

log = logging.getLogger(__name__)


def load_source(dataset_cfg: dict, *, mirror: str | None, cache_dir: str) -> pd.DataFrame:
    if dataset_cfg["source"] == "qm9":
        from ..data.qm9 import load_qm9

        return load_qm9(dataset_cfg, cache_dir)
    if dataset_cfg["source"] == "csv":
        return _load_csv(dataset_cfg)
    raise InvdesignError(f"dataset.source {dataset_cfg['source']!r} is not a molecule source; use qm9 or csv")


def _load_csv(ds: dict) -> pd.DataFrame:
    from rdkit import Chem, RDLogger

    from ..data.user_tables import numeric_property, read_user_csv

    RDLogger.DisableLog("rdApp.*")
    path, smi_col, prop_col = ds["path"], ds.get("smiles_column", "smiles"), ds["property_column"]
    required = {smi_col: "dataset.smiles_column", prop_col: "dataset.property_column"}
    if ds.get("id_column"):
        required[ds["id_column"]] = "dataset.id_column"
    df = read_user_csv(path, required)
    if ds.get("max_rows") and ds["max_rows"] < len(df):
        df = df.sample(n=ds["max_rows"], random_state=ds.get("seed", 0)).sort_index()
    prop = numeric_property(df, prop_col, path)
    rows, bad = [], []
    for i, (smi, y) in enumerate(zip(df[smi_col], prop)):
        mol = Chem.MolFromSmiles(smi) if isinstance(smi, str) and smi.strip() else None
        if mol is None or mol.GetNumAtoms() == 0:
            bad.append((i + 2, smi))  # +2: header line and 1-based numbering
            continue
        rid = str(df[ds["id_column"]].iloc[i]) if ds.get("id_column") else f"row{i + 2}"
        rows.append({"id": rid, "smiles": Chem.MolToSmiles(mol), "mulliken": None, "property": float(y),
                     "n_heavy": mol.GetNumAtoms()})
    if bad:
        if ds.get("on_bad_rows", "skip") == "error":
            line, smi = bad[0]
            raise InvdesignError(f"{path} line {line}: malformed SMILES {smi!r} in column {smi_col!r} "
                                 f"({len(bad)} bad rows in all); fix them or set dataset.on_bad_rows: skip")
        log.warning("%s: skipped %d rows with malformed SMILES (first: line %d %r)", path, len(bad), *bad[0])
    return pd.DataFrame(rows)


def featurize(df: pd.DataFrame, feat_cfg: dict):
    tokens = [selfies_tokens(s) for s in df["smiles"]]
    if any(t is None for t in tokens):
        bad = df["smiles"][[t is None for t in tokens]].iloc[0]
        raise InvdesignError(f"molecule {bad!r} cannot be written as SELFIES; remove it from the dataset")
    vocab = build_vocab(tokens)
    longest = max(len(t) for t in tokens) + 1
    max_len = longest
    graphs = []
    mulliken = df["mulliken"] if "mulliken" in df else [None] * len(df)
    orbitals = _xtb_orbitals(df["smiles"]) if feat_cfg.get("xtb_orbitals") else [None] * len(df)
    for done, (smi, toks, q, y, orb) in enumerate(zip(df["smiles"], tokens, mulliken, df["property"].astype(float),
                                                      orbitals), 1):
        if done % 10000 == 0:
            log.info("featurized %d/%d molecules", done, len(df))
        q = None if q is None or (not isinstance(q, (list, np.ndarray))) or len(q) == 0 else list(q)
        from rdkit import Chem

        g = mol_to_graph(Chem.MolFromSmiles(smi), q, y, orb)
        ids = encode_tokens(toks, vocab, max_len)
        g.tokens = torch.tensor([ids if ids is not None else [0] * max_len], dtype=torch.long)
        g.has_tokens = torch.tensor([ids is not None])
        graphs.append(g)
    meta = {"domain": "molecules", "node_dim": len(NODE_FEATURES), "edge_dim": len(EDGE_FEATURES),
            "node_feature_names": NODE_FEATURES, "edge_feature_names": EDGE_FEATURES, "elements": ELEMENTS,
            "training_elements": sorted({a for s in df["smiles"] for a in _elements(s)}),
            "vocab": vocab, "max_len": max_len,
            "sample_unavailable_node_features": feature_index(QM_FEATURES)}
    return graphs, meta


def _xtb_orbitals(smiles_list) -> list:
    """Atom-resolved GFN2-xTB HOMO/LUMO densities per molecule (None where xTB fails)."""
    import time

    from ..oracles.xtb import xtb_verify

    out, t0 = [], time.monotonic()
    for i, smi in enumerate(smiles_list, start=1):
        r = xtb_verify(smi)
        ok = r.get("xtb_ok") and r.get("xtb_connectivity_ok")
        out.append((r["xtb_homo_density"], r["xtb_lumo_density"]) if ok else None)
        if i % 500 == 0 or i == len(smiles_list):
            el = time.monotonic() - t0
            log.info("xTB orbital densities: %d/%d molecules [%.0fs elapsed, ETA %.0fs]", i, len(smiles_list), el,
                     el / i * (len(smiles_list) - i))
    return out


def _elements(smiles: str) -> set[str]:
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    return {a.GetSymbol() for a in mol.GetAtoms()} if mol else set()


def featurize_like(df: pd.DataFrame, meta: dict) -> list:
    """Graphs of new molecules (no Mulliken charges or orbital densities: their flags are 0).

    None where the SMILES does not parse or has an element the training data did not have.
    """
    from rdkit import Chem

    allowed = set(meta.get("training_elements") or [])
    out = []
    for smi in df["smiles"]:
        mol = Chem.MolFromSmiles(smi) if isinstance(smi, str) and smi else None
        if mol is None or mol.GetNumAtoms() == 0 or (allowed and any(a.GetSymbol() not in allowed
                                                                     for a in mol.GetAtoms())):
            out.append(None)
            continue
        out.append(mol_to_graph(mol))
    return out


def decode(out: dict, meta: dict) -> pd.DataFrame:
    """Generator output -> SMILES: SELFIES tokens (VAE) or dense graphs (diffusion, EBM)."""
    if "tokens" in out:
        rows = [decode_tokens(ids, meta["vocab"]) for ids in out["tokens"].tolist()]
        return pd.DataFrame(rows, columns=["selfies", "smiles"])
    from ..chem.molecules import graph_to_smiles

    correct = bool(out.get("valency_correction", False))
    elements = meta["elements"]
    rows = []
    for k, (atoms, bonds) in enumerate(zip(out["atom_classes"].tolist(), out["bonds"].numpy())):
        keep = [i for i, a in enumerate(atoms) if a >= 0]
        symbols = [elements[atoms[i]] for i in keep]
        sub = bonds[np.ix_(keep, keep)]
        raw = graph_to_smiles(symbols, sub)
        row = {"smiles": raw, "raw_valid": raw is not None and "." not in raw}
        if correct:
            scores = out["bond_scores"][k].numpy()[np.ix_(keep, keep)] if "bond_scores" in out else None
            row["smiles"] = graph_to_smiles(symbols, sub, correct=True, scores=scores)
        rows.append(row)
    return pd.DataFrame(rows)


def filter_candidates(samples: pd.DataFrame, reference: pd.DataFrame, filt_cfg: dict) -> pd.DataFrame:
    allowed = sorted({a for s in reference["smiles"] for a in _elements(s)})
    return check_molecules(samples, reference["smiles"], filt_cfg.get("min_heavy_atoms", 3), allowed,
                           alerts=filt_cfg.get("structural_alerts", True))
