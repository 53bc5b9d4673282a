"""Molecule domain: QM9 or a user SMILES table -> graphs + SELFIES targets -> decoded SMILES -> checks, SDF,
report page."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..chem.molecules import (build_vocab, check_molecules, decode_tokens, encode_tokens, featurized_form,
                              selfies_tokens)
from ..config import block_settings, dataset_settings
from ..errors import InvdesignError
from ..io import is_missing
from ..featurize.molecule import EDGE_FEATURES, ELEMENTS, NODE_FEATURES, QM_FEATURES, feature_index, mol_to_graph
from ..io import atomic_path, replaced_folder
from ..models.samples import MoleculeSamples
from . import EXPORT_SUFFIX, Domain

log = logging.getLogger(__name__)


def load_source(ds, *, mirror: str | None, cache_dir: str) -> pd.DataFrame:
    """``ds``: :class:`~invdesign.config.data.QM9Source` or :class:`~invdesign.config.data.CsvSource` (or a
    mapping of their keys)."""
    ds = dataset_settings("molecules", ds)
    if ds.source == "qm9":
        from ..data.qm9 import load_qm9

        return load_qm9(ds, cache_dir)
    if ds.source == "csv":
        return _load_csv(ds)
    raise InvdesignError(f"dataset.source {ds.source!r} is not a molecule source; use qm9 or csv")


def load_known(ds, *, mirror: str | None, cache_dir: str) -> pd.DataFrame:
    """Every molecule of the campaign's source (``id``, ``smiles``): all of QM9 or all rows of the user's table."""
    ds = dataset_settings("molecules", ds)
    if ds.source == "qm9":
        from ..data.qm9 import raw_table

        raw = raw_table(cache_dir)
        return pd.DataFrame({"id": [f"qm9_{int(i):06d}" for i in raw["Index"]], "smiles": raw["SMILES"]})
    return _load_csv(ds.replace(max_rows=None))[["id", "smiles"]]


def read_library(path: str) -> pd.DataFrame:
    from ..data.known import read_smiles_library

    return read_smiles_library(path)


def _load_csv(ds) -> pd.DataFrame:
    from rdkit import Chem, RDLogger

    from ..data.user_tables import numeric_property, read_user_csv

    RDLogger.DisableLog("rdApp.*")
    path, smi_col, prop_col = ds.path, ds.smiles_column, ds.property_column
    required = {smi_col: "dataset.smiles_column", prop_col: "dataset.property_column"}
    if ds.id_column:
        required[ds.id_column] = "dataset.id_column"
    df = read_user_csv(path, required)
    if ds.max_rows and ds.max_rows < len(df):
        df = df.sample(n=ds.max_rows, random_state=ds.seed).sort_index()
    prop = numeric_property(df, prop_col, path)
    rows, bad, labelled = [], [], {}
    for i, (smi, y) in enumerate(zip(df[smi_col], prop)):
        mol = Chem.MolFromSmiles(smi) if isinstance(smi, str) and smi.strip() else None
        if mol is None or mol.GetNumAtoms() == 0:
            bad.append((i + 2, smi))  # +2: header line and 1-based numbering
            continue
        mol, removed = featurized_form(mol)
        for kind in removed:
            labelled.setdefault(kind, []).append(smi)
        rid = str(df[ds.id_column].iloc[i]) if ds.id_column else f"row{i + 2}"
        rows.append({"id": rid, "smiles": Chem.MolToSmiles(mol), "mulliken": None, "property": float(y),
                     "n_heavy": mol.GetNumHeavyAtoms()})
    _log_labels_removed(path, labelled)
    if bad:
        if ds.on_bad_rows == "error":
            line, smi = bad[0]
            raise InvdesignError(f"{path} line {line}: malformed SMILES {smi!r} in column {smi_col!r} "
                                 f"({len(bad)} bad rows in all); fix them or set dataset.on_bad_rows: skip")
        log.warning("%s: skipped %d rows with malformed SMILES (first: line %d %r)", path, len(bad), *bad[0])
    return pd.DataFrame(rows)


def _log_labels_removed(path, labelled: dict[str, list[str]]) -> None:
    """One log line for the rows read without their stereo or isotope labels (``{kind: [SMILES as given]}``)."""
    if labelled:
        log.warning("%s: removed %s (first: %s): the featurization has no chirality and no isotopes, so "
                    "stereoisomers and isotopologues (deuterium is hydrogen) are one molecule, merged as duplicates",
                    path, " and ".join(f"the {k} labels of {len(v)} rows" for k, v in labelled.items()),
                    ", ".join(f"{v[0]!r}" for v in labelled.values()))


def featurize(df: pd.DataFrame, settings=None):
    """Graphs and meta of every row; ``settings``: :class:`~invdesign.config.featurize.MoleculeFeaturize`. With a
    ``split`` column, the dense generators' statistics (``meta['dense']``) come from the training rows. A mapping
    (or None) is read with the campaign defaults."""
    settings = block_settings("featurize", "molecules", settings)
    from ..models.dense import dense_statistics

    tokens = [selfies_tokens(s) for s in df["smiles"]]
    if any(t is None for t in tokens):
        bad = df["smiles"][[t is None for t in tokens]].iloc[0]
        raise InvdesignError(f"molecule {bad!r} cannot be written as SELFIES; remove it from the dataset")
    vocab = build_vocab(tokens)
    longest = max(len(t) for t in tokens) + 1
    max_len = longest
    graphs = []
    mulliken = df["mulliken"] if "mulliken" in df else [None] * len(df)
    orbitals = _xtb_orbitals(df["smiles"]) if settings.xtb_orbitals else [None] * len(df)
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
    train = df["split"].eq("train").to_numpy() if "split" in df else np.ones(len(df), bool)
    meta["dense"] = dense_statistics([g for g, t in zip(graphs, train) if t])  # whole-graph generators
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


def _n_heavy(smiles: str) -> int:
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    return mol.GetNumAtoms() if mol else 0


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


def decode(out: MoleculeSamples, meta: dict) -> pd.DataFrame:
    """Samples -> SMILES: SELFIES tokens (VAE) or dense graphs (diffusion, EBM; ``raw_valid`` says whether the
    graph was a valid molecule before any valency correction)."""
    if out.representation == "selfies":
        rows = [decode_tokens(ids, meta["vocab"]) for ids in out.tokens.tolist()]
        return pd.DataFrame(rows, columns=["selfies", "smiles"])
    from ..chem.molecules import graph_to_smiles

    correct = out.valency_correction
    elements = meta["elements"]
    rows = []
    for k, (atoms, bonds) in enumerate(zip(out.atom_classes.tolist(), out.bonds.numpy())):
        keep = [i for i, a in enumerate(atoms) if a >= 0]
        symbols = [elements[atoms[i]] for i in keep]
        sub = bonds[np.ix_(keep, keep)]
        raw = graph_to_smiles(symbols, sub)
        row = {"smiles": raw, "raw_valid": raw is not None and "." not in raw}
        if correct:
            scores = out.bond_scores[k].numpy()[np.ix_(keep, keep)] if out.bond_scores is not None else None
            row["smiles"] = graph_to_smiles(symbols, sub, correct=True, scores=scores)
        rows.append(row)
    return pd.DataFrame(rows)


def filter_candidates(samples: pd.DataFrame, reference: pd.DataFrame, filters=None,
                      known: pd.DataFrame | None = None) -> pd.DataFrame:
    """``filters``: :class:`~invdesign.config.filters.MoleculeFilters` (a mapping or None: campaign defaults);
    ``reference``: the training data (its elements are the allowed ones); ``known``: the novelty reference
    (:mod:`invdesign.data.known`; default ``reference``)."""
    filters = block_settings("filters", "molecules", filters)
    from ..chem.molecules import group_shares

    sizes = reference["n_heavy"] if "n_heavy" in reference else reference["smiles"].map(_n_heavy)
    allowed = sorted({a for s in reference["smiles"] for a in _elements(s)})
    shares = group_shares(reference["smiles"]) if filters.rare_group_share is not None else None
    largest = int(sizes.max()) + filters.heavy_atom_margin if filters.heavy_atom_margin is not None else None
    return check_molecules(samples, (known if known is not None else reference)["smiles"], filters.min_heavy_atoms,
                           allowed, alerts=filters.structural_alerts, rare_shares=shares,
                           rare_below=filters.rare_group_share, max_heavy_atoms=largest)


def write_sdf(cands: pd.DataFrame, out_sdf: str) -> int:
    """SDF of all candidates: the oracle's GFN2-xTB geometry (``molblock``) where it has one, else an MMFF-relaxed
    ETKDG conformer (the filters reject a molecule ETKDG cannot embed; a table made before that keeps such a record
    with 2D coordinates); every scalar column as an SD tag (SA score, alerts, reject reason, ...), and the
    ``coordinates`` tag saying where the record's coordinates come from. Returns the number of records."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    from ..chem.geometry import COORDINATES_TAG, embed

    hidden = {"molblock", "xtb_homo_density", "xtb_lumo_density", "xtb_charges", "structure"}
    scalar = [c for c in cands.columns if c not in hidden]
    tags = scalar + [c for c in ("xtb_homo_density", "xtb_lumo_density") if c in cands]
    n = 0
    with atomic_path(out_sdf) as tmp:
        writer = Chem.SDWriter(str(tmp))
        for row in cands.to_dict("records"):
            mb = row.get("molblock")
            if isinstance(mb, str):
                mol = Chem.MolFromMolBlock(mb, removeHs=False)
                converged = row.get("xtb_converged")
                coordinates = "GFN2-xTB optimised" + ("" if is_missing(converged) or bool(converged) else
                                                      " (not converged within the oracle's max_steps)")
            else:
                mol = embed(row["smiles"])
                coordinates = mol.GetProp(COORDINATES_TAG) if mol is not None else ""
            if mol is None:
                mol = Chem.MolFromSmiles(row["smiles"])
                if mol is None:
                    continue
                AllChem.Compute2DCoords(mol)
                coordinates = "2D only (RDKit ETKDG found no 3D coordinates)"
                log.warning("%s: %s has no 3D coordinates; written in 2D", out_sdf, row["smiles"])
            mol.SetProp(COORDINATES_TAG, coordinates)
            mol.SetProp("_Name", f"{row.get('campaign', '')} rank {row.get('final_rank', row.get('rank'))}")
            for col in tags:
                value = row.get(col)
                if is_missing(value) or (isinstance(value, float) and not np.isfinite(value)):
                    continue
                mol.SetProp(col, str(value))
            writer.write(mol)
            n += 1
        writer.close()
    return n


class MoleculeDomain(Domain):
    name = "molecules"
    identifier = "smiles"
    export_suffix = EXPORT_SUFFIX["molecules"]
    report_columns = ("final_rank", "rank", "smiles", "predicted_property", "unit", "qed", "sa_score",
                      "nearest_known_similarity", "generator")

    def n_unique(self, valid):
        return int(valid["smiles"].nunique())

    def export_candidates(self, cands, folder: Path):
        """``candidates.smi``: the SMILES of every passing candidate with its rank."""
        lines = [f"{smi} rank{rank}" for smi, rank, ok in zip(cands["smiles"], cands["rank"], cands["passes"]) if ok]
        with replaced_folder(folder) as tmp:
            (tmp / "candidates.smi").write_text("\n".join(lines) + ("\n" if lines else ""))
        return cands

    def write_export(self, verified, candidates, out_path):
        return write_sdf(verified, out_path)

    def top_candidates_html(self, candidates, verified, unit, out_html, columns=None):
        from ..pipeline.plots import molecule_page

        molecule_page(verified if verified is not None else candidates[candidates["passes"].astype(bool)], unit,
                      out_html, columns or self.report_columns)


def row_problems(df: pd.DataFrame, ds) -> list:
    """Per row: why it cannot train a model (:func:`invdesign.data.checks.molecule_problem`), or None."""
    from ..data.checks import molecule_problem

    from ..data.checks import size_outliers

    known = set(ELEMENTS) - {"other"}
    problems = [molecule_problem(s, ds.max_heavy_atoms, known) for s in df["smiles"]]
    sizes = df["n_heavy"].to_numpy(float) if "n_heavy" in df else np.full(len(df), np.nan)
    return size_outliers(problems, sizes, ds.size_outlier_ratio, "heavy atoms")


def duplicate_groups(df: pd.DataFrame) -> list[list[int]]:
    """Rows with the same canonical SMILES (the loaders write canonical SMILES without stereo or isotope labels, so
    stereoisomers and isotopologues, which the featurization cannot tell apart, are one group)."""
    return [list(idx) for idx in pd.Series(range(len(df))).groupby(df["smiles"].to_numpy()).groups.values()
            if len(idx) > 1]
