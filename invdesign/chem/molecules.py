"""SELFIES vocabulary, decoding, and molecule validity / uniqueness / novelty checks."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"


def canonical(smiles: str | None) -> str | None:
    from rdkit import Chem

    if not smiles:
        return None
    mol = Chem.MolFromSmiles(smiles)
    return Chem.MolToSmiles(mol) if mol is not None else None


def featurized_form(mol):
    """``(mol, removed)``: an RDKit molecule as the featurization sees it, with the labels that tell apart
    molecules of one graph removed: stereo (chirality, double-bond geometry), isotopes (deuterium becomes
    hydrogen) and explicit hydrogens; ``removed`` names the kinds of label it had ("stereo", "isotope")."""
    from rdkit import Chem

    mol = Chem.Mol(mol)
    removed = []
    if (any(a.GetChiralTag() != Chem.ChiralType.CHI_UNSPECIFIED for a in mol.GetAtoms())
            or any(b.GetStereo() != Chem.BondStereo.STEREONONE for b in mol.GetBonds())):
        removed.append("stereo")
    if any(a.GetIsotope() for a in mol.GetAtoms()):
        removed.append("isotope")
    for a in mol.GetAtoms():
        a.SetIsotope(0)
    Chem.RemoveStereochemistry(mol)
    return Chem.RemoveHs(mol), removed


def novelty_key(smiles) -> str | None:
    """The form molecules are compared in for novelty: RDKit canonical SMILES of :func:`featurized_form` (no
    stereo or isotope labels, deuterium as hydrogen); None if it does not parse."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) and smiles else None
    return Chem.MolToSmiles(featurized_form(mol)[0]) if mol is not None else None


def selfies_tokens(smiles: str) -> list[str] | None:
    import selfies as sf

    try:
        return list(sf.split_selfies(sf.encoder(smiles)))
    except Exception:  # noqa: BLE001  (selfies raises EncoderError and others)
        return None


def build_vocab(token_lists) -> list[str]:
    tokens = sorted({t for toks in token_lists if toks for t in toks})
    return [PAD, BOS, EOS] + tokens


def encode_tokens(tokens: list[str], vocab: list[str], max_len: int) -> list[int] | None:
    """Token ids ending in EOS and padded to ``max_len``; None if too long or unknown tokens."""
    index = {t: i for i, t in enumerate(vocab)}
    if tokens is None or len(tokens) + 1 > max_len or any(t not in index for t in tokens):
        return None
    ids = [index[t] for t in tokens] + [index[EOS]]
    return ids + [index[PAD]] * (max_len - len(ids))


def decode_tokens(ids, vocab: list[str]) -> tuple[str, str | None]:
    """(selfies, canonical smiles or None) from a row of token ids."""
    import selfies as sf

    out = []
    for i in ids:
        tok = vocab[int(i)]
        if tok == EOS:
            break
        if tok in (PAD, BOS):
            continue
        out.append(tok)
    s = "".join(out)
    try:
        smi = sf.decoder(s) if s else None
    except Exception:  # noqa: BLE001
        smi = None
    return s, canonical(smi)


MAX_VALENCE = {"C": 4, "N": 3, "O": 2, "F": 1, "S": 6, "Cl": 1, "Br": 1, "P": 5}


def graph_to_smiles(symbols: list[str], bonds, *, correct: bool = False, scores=None) -> str | None:
    """Canonical SMILES of a heavy-atom graph with Kekule bond orders ``bonds[i][j]`` in {0,1,2,3}.

    Without ``correct`` the graph is taken as it is (an over-bonded atom makes it invalid, None;
    a 4-bonded N becomes N+ as in the data). With ``correct`` bonds are added in order of ``scores``
    (confidence that the pair is bonded, default: the bond order) and lowered until every atom is
    within its valence, and the largest connected fragment is kept (the valency correction used by
    one-shot graph generators; counted separately from raw validity in the benchmarks).
    """
    from rdkit import Chem

    n = len(symbols)
    if n == 0:
        return None
    bonds = np.asarray(bonds, dtype=int)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if bonds[i, j] > 0]
    if correct:
        sc = np.asarray(scores, dtype=float) if scores is not None else bonds.astype(float)
        pairs.sort(key=lambda p: -sc[p[0], p[1]])
        used = [0] * n
        kept = []
        for i, j in pairs:
            order = min(int(bonds[i, j]), MAX_VALENCE.get(symbols[i], 4) - used[i],
                        MAX_VALENCE.get(symbols[j], 4) - used[j])
            if order > 0:
                kept.append((i, j, order))
                used[i] += order
                used[j] += order
    else:
        kept = [(i, j, int(bonds[i, j])) for i, j in pairs]
    rw = Chem.RWMol()
    for s in symbols:
        rw.AddAtom(Chem.Atom(s))
    kinds = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}
    valence = [0] * n
    for i, j, order in kept:
        rw.AddBond(int(i), int(j), kinds[order])
        valence[i] += order
        valence[j] += order
    for k, s in enumerate(symbols):
        if s == "N" and valence[k] == 4:
            rw.GetAtomWithIdx(k).SetFormalCharge(1)
    mol = rw.GetMol()
    try:
        Chem.SanitizeMol(mol)
    except Exception:  # noqa: BLE001  (valence and kekulization errors)
        return None
    if correct:
        frags = Chem.GetMolFrags(mol, asMols=True)
        mol = max(frags, key=lambda m: m.GetNumAtoms())
    return Chem.MolToSmiles(mol)


# Structural alerts for kinetically unstable or implausible small molecules (SMARTS, heavy-atom graphs).
# They catch what one-shot graph generators produce and RDKit still sanitises. Atoms are written by atomic number
# (#7, #8, #9) where an aromatic atom must match too (F on an aromatic N of a tetrazole is still an N-F bond).
STRUCTURAL_ALERTS = {
    "cumulene in a ring": "[R]=[R]=[R]",
    "triple bond in a ring": "[R]#[R]",
    "cumulene chain (3+ double bonds)": "*=*=*=*",
    "peroxide / O-O bond": "[OX2]-[OX2]",
    "N-F / O-F bond": "[#9]~[#7,#8]",
    "polynitrogen chain": "[N;!a]~[N;!a]~[N;!a]~[N;!a]",
}

#: ring strain a chemist would not make (or could not keep): name -> (SMARTS, why). Rings of allenes and alkynes are
#: already :data:`STRUCTURAL_ALERTS` (any ring size; QM9 holds none). QM9 (GDB-9) holds none of these either.
STRAIN_ALERTS = {
    "strained ring: sp2 carbon in a fused or spiro 3-membered ring": (
        "[#6;$([#6]=*)]1~*~[!R1]1",
        "a cyclopropanone, cyclopropene or methylenecyclopropane already holds 40-55 kcal/mol of strain; sharing "
        "its ring atoms with another ring adds more (a cyclopropanone fused to a pyrroline opens at once)"),
    "strained ring: two 3-membered rings sharing an atom": (
        "[$(*1~*~*12~*~*~2),$(*1~*2~*~*~1~2)]",
        "spiropentanes and bicyclo[1.1.0]butanes hold over 60 kcal/mol of strain: isolable as parent hydrocarbons, "
        "not as the functionalised small molecules a generator proposes"),
    "strained ring: cyclobutadiene / azete": (
        "*1=*-*=*-1",
        "two double bonds in a 4-membered ring: antiaromatic, dimerises above about 35 K"),
}

#: largest bicyclic ring system (atoms of the two rings together) whose bridgehead cannot carry a double bond:
#: 8 atoms, Fawcett's S = 6 (bicyclo[2.2.2]oct-1-ene, bicyclo[3.2.1]oct-1-ene); from S = 7 (bicyclo[3.3.1]non-1-ene)
#: anti-Bredt alkenes are isolable
BREDT_MAX_RING_SYSTEM = 8
BREDT_ALERT = "anti-Bredt: double bond at a bridgehead of a small bicyclic"


@functools.lru_cache(maxsize=None)
def _alert_patterns():
    from rdkit import Chem

    return {name: Chem.MolFromSmarts(smarts) for name, smarts in
            [*STRUCTURAL_ALERTS.items(), *((n, smarts) for n, (smarts, _) in STRAIN_ALERTS.items())]}


def bredt_violation(mol) -> bool:
    """Whether a bridgehead atom carries a double (or aromatic) bond: two rings of RDKit's ring set that share more
    than two atoms (bridged, not fused) and hold at most :data:`BREDT_MAX_RING_SYSTEM` atoms together, and a
    double bond at an end of the path they share (norbornene passes, bicyclo[2.2.1]hept-1-ene fails)."""
    rings = [set(r) for r in mol.GetRingInfo().AtomRings()]
    for k, a in enumerate(rings):
        for b in rings[k + 1:]:
            shared = a & b
            if len(shared) <= 2 or len(a | b) > BREDT_MAX_RING_SYSTEM:
                continue
            for i in shared:
                atom = mol.GetAtomWithIdx(i)
                if sum(n.GetIdx() in shared for n in atom.GetNeighbors()) >= 2:
                    continue  # inside the shared bridge, not one of its two ends
                if any(bond.GetBondTypeAsDouble() >= 1.5 for bond in atom.GetBonds()):
                    return True
    return False


def structural_alerts(mol) -> list[str]:
    """Names of the structural alerts a molecule raises (empty = none): :data:`STRUCTURAL_ALERTS`,
    :data:`STRAIN_ALERTS` and the Bredt rule (:func:`bredt_violation`)."""
    found = [name for name, patt in _alert_patterns().items() if mol.HasSubstructMatch(patt)]
    return found + ([BREDT_ALERT] if bredt_violation(mol) else [])


#: groups beside the Brenk catalogue that the rare-group rule also checks: cumulated double bonds at a heteroatom,
#: C- or N-nitroso, an N=N outside a ring
EXTRA_GROUPS = {
    "heteroatom cumulene": "[!#6]=*=*",
    "cumulene with a heteroatom centre": "*=[!#6]=*",
    "nitroso": "[#6,#7]-[#7X2]=[OX1]",
    "acyclic N=N": "[#7]=!@[#7]",
}


@functools.lru_cache(maxsize=1)
def _brenk():
    from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

    params = FilterCatalogParams()
    params.AddCatalog(FilterCatalogParams.FilterCatalogs.BRENK)
    return FilterCatalog(params)


@functools.lru_cache(maxsize=1)
def _extra_patterns():
    from rdkit import Chem

    return {name: Chem.MolFromSmarts(smarts) for name, smarts in EXTRA_GROUPS.items()}


def functional_groups(mol) -> set[str]:
    """Names of the unwanted or reactive groups a molecule holds: the Brenk et al. (2008) catalogue shipped with
    RDKit (105 groups: diazo, isocyanate, N-nitroso, Michael acceptors, ...) and :data:`EXTRA_GROUPS`. Many are
    common in small-molecule data (QM9: three-membered heterocycles 20%, triple bonds 14%, aldehydes 13%); the
    rare-group rule only rejects those the data itself seldom holds."""
    found = {e.GetDescription() for e in _brenk().GetMatches(mol)}
    return found | {name for name, patt in _extra_patterns().items() if mol.HasSubstructMatch(patt)}


def group_shares(smiles, max_molecules: int = 10000, seed: int = 0) -> dict[str, float]:
    """Share of the molecules of ``smiles`` (a seeded sample of at most ``max_molecules``) holding each group of
    :func:`functional_groups`."""
    from rdkit import Chem

    smiles = list(smiles)
    if len(smiles) > max_molecules:
        smiles = [smiles[i] for i in np.random.default_rng(seed).choice(len(smiles), max_molecules, replace=False)]
    mols = [m for m in (Chem.MolFromSmiles(s) for s in smiles if isinstance(s, str)) if m is not None]
    counts: dict[str, int] = {}
    for m in mols:
        for g in functional_groups(m):
            counts[g] = counts.get(g, 0) + 1
    return {g: c / max(len(mols), 1) for g, c in counts.items()}


def check_molecules(samples: pd.DataFrame, reference_smiles, min_heavy_atoms: int, allowed_elements=None, *,
                    alerts: bool, rare_shares: dict | None = None, rare_below: float | None = None,
                    max_heavy_atoms: int | None = None) -> pd.DataFrame:
    """Validity, uniqueness, novelty and (``alerts``) structural-alert checks; ``passes`` needs all four. With
    ``rare_shares`` (:func:`group_shares` of the data) and ``rare_below``, a functional group found in a smaller share
    of the data's molecules also fails the alert check (``rare_groups``). A molecule with more than
    ``max_heavy_atoms`` heavy atoms is not valid; one that would pass but has no 3D coordinates (RDKit ETKDG finds
    none, as for the SDF export) is not ``stable``."""
    from rdkit import Chem

    from .geometry import has_3d_coordinates

    out = samples.copy()
    ref = {novelty_key(s) for s in reference_smiles}
    valid, n_heavy, reasons, raised, rare = [], [], [], [], []
    for smi in out["smiles"]:
        mol = Chem.MolFromSmiles(smi) if isinstance(smi, str) and smi else None
        found = structural_alerts(mol) if mol is not None and alerts else []
        odd = sorted(g for g in functional_groups(mol) if rare_shares.get(g, 0.0) < rare_below) \
            if mol is not None and rare_shares is not None and rare_below is not None else []
        rare.append("; ".join(f"{g} ({100 * rare_shares.get(g, 0.0):.2f}% of the data)" for g in odd))
        raised.append("; ".join(found + ([f"rare group: {rare[-1]}"] if odd else [])))
        if mol is None:
            valid.append(False), n_heavy.append(0), reasons.append("invalid: does not parse/sanitise")
            continue
        n = mol.GetNumAtoms()
        n_heavy.append(n)
        elements = {a.GetSymbol() for a in mol.GetAtoms()}
        if "." in smi:
            valid.append(False), reasons.append("invalid: several fragments")
        elif n < min_heavy_atoms:
            valid.append(False), reasons.append(f"invalid: fewer than {min_heavy_atoms} heavy atoms")
        elif max_heavy_atoms is not None and n > max_heavy_atoms:
            valid.append(False), reasons.append(f"invalid: {n} heavy atoms, more than {max_heavy_atoms} (the training "
                                                "data's largest molecule + filters.heavy_atom_margin)")
        elif allowed_elements is not None and not elements <= set(allowed_elements):
            valid.append(False), reasons.append(f"invalid: elements {sorted(elements - set(allowed_elements))} "
                                                "not in the training data")
        else:
            valid.append(True), reasons.append("")
    out["valid"] = valid
    out["n_heavy"] = n_heavy
    keys = out["smiles"].where(out["valid"], None)
    out["unique"] = out["valid"] & ~keys.duplicated(keep="first")
    out["novel"] = out["valid"] & ~keys.map(novelty_key, na_action="ignore").isin(ref)
    for i in np.flatnonzero(out["valid"].to_numpy()):
        if not out["unique"].iat[i]:
            reasons[i] = "duplicate of a higher sample"
        elif not out["novel"].iat[i]:
            reasons[i] = "not novel: a known molecule (source data set or known_library)"
    out["alerts"] = raised
    out["rare_groups"] = rare
    stable = (out["valid"] & (out["alerts"] == "")).to_numpy(copy=True)
    for i in np.flatnonzero((out["valid"] & out["unique"] & out["novel"]).to_numpy()):
        if not stable[i]:
            reasons[i] = f"structural alert: {raised[i]}"
        elif not has_3d_coordinates(out["smiles"].iat[i]):  # last: the only costly check (about 10 ms a molecule)
            stable[i] = False
            reasons[i] = "no 3D coordinates: RDKit ETKDG embedding failed"
    out["stable"] = stable
    out["passes"] = out["valid"] & out["unique"] & out["novel"] & out["stable"]
    out["reject_reason"] = reasons
    return out
