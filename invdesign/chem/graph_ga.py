"""A graph genetic algorithm on RDKit molecules: the classical baseline a generator has to beat (issue #24).

In the manner of Jensen's GB-GA (Chem. Sci. 2019), the strongest classical baseline of the PMO benchmark:
molecules are edited as graphs, never as strings.

* mutations: change an atom's element, append an atom, insert an atom into a bond, delete a terminal atom,
  change a bond's order, close a ring, open a ring; each result must sanitise, stay neutral and within the size
  and element limits (:class:`Limits`), or the mutation is retried;
* crossover: both parents are cut at a random acyclic single bond, and one fragment of each is joined at the cut
  (RDKit ``FragmentOnBonds`` + ``molzip``);
* :func:`run_ga`: tournament selection on a score (higher is better) that the caller supplies, e.g. minus the
  independent predictor's distance to the target; the best molecules ever scored are returned.

RDKit only; the score function carries any model.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What a molecule may be: at most ``max_heavy_atoms`` heavy atoms of ``elements``, neutral, one fragment, no
    radicals, rings of at most ``max_ring`` atoms (QM9's chemistry by default)."""

    elements: tuple[str, ...] = ("C", "N", "O", "F")
    max_heavy_atoms: int = 9
    min_heavy_atoms: int = 3
    max_ring: int = 7


VALENCE = {"C": 4, "N": 3, "O": 2, "F": 1, "S": 2, "Cl": 1}


def _free_valence(atom) -> int:
    """How many more bonds (replacing hydrogens) the atom can take."""
    from rdkit import Chem

    used = atom.GetValence(Chem.ValenceType.EXPLICIT) if hasattr(Chem, "ValenceType") else atom.GetExplicitValence()
    return VALENCE.get(atom.GetSymbol(), 0) - int(used)


def _finish(rw, limits: Limits):
    """The edited molecule as canonical SMILES if it is acceptable, else None."""
    from rdkit import Chem

    try:
        mol = rw.GetMol()
        for a in mol.GetAtoms():
            a.SetNoImplicit(False)
            a.SetNumExplicitHs(0)
        Chem.SanitizeMol(mol)
    except Exception:  # noqa: BLE001  (any edit RDKit rejects is just not a child)
        return None
    return accept(Chem.MolToSmiles(mol), limits)


def accept(smiles: str | None, limits: Limits) -> str | None:
    """Canonical SMILES of ``smiles`` if it is within ``limits`` (else None)."""
    from rdkit import Chem
    from rdkit.Chem import Descriptors

    mol = Chem.MolFromSmiles(smiles) if smiles else None
    if mol is None or "." in smiles:
        return None
    n = mol.GetNumAtoms()
    if not limits.min_heavy_atoms <= n <= limits.max_heavy_atoms:
        return None
    if any(a.GetSymbol() not in limits.elements or a.GetFormalCharge() for a in mol.GetAtoms()):
        return None
    if Descriptors.NumRadicalElectrons(mol) or any(len(r) > limits.max_ring for r in mol.GetRingInfo().AtomRings()):
        return None
    return Chem.MolToSmiles(mol)


def mutate(smiles: str, rng: random.Random, limits: Limits = Limits(), tries: int = 20) -> str | None:
    """One random graph edit of ``smiles`` that gives an acceptable molecule (None after ``tries`` failures)."""
    from rdkit import Chem

    from rdkit.rdBase import BlockLogs

    _quiet = BlockLogs()  # noqa: F841  (rejected edits are expected; RDKit's messages about them are noise)
    base = Chem.MolFromSmiles(smiles)
    if base is None:
        return None
    base = Chem.RWMol(base)
    Chem.Kekulize(base, clearAromaticFlags=True)  # edits on explicit single/double bonds
    ops = ("element", "append", "insert", "delete", "bond_order", "close_ring", "open_ring")
    for _ in range(tries):
        rw = Chem.RWMol(base)
        op = rng.choice(ops)
        atoms = list(rw.GetAtoms())
        bonds = list(rw.GetBonds())
        if op == "element":
            a = rng.choice(atoms)
            a.SetAtomicNum(Chem.GetPeriodicTable().GetAtomicNumber(rng.choice(limits.elements)))
        elif op == "append":
            open_ = [a for a in atoms if _free_valence(a) >= 1]
            if not open_:
                continue
            a = rng.choice(open_)
            new = rw.AddAtom(Chem.Atom(rng.choice(limits.elements)))
            order = rng.choice([1, 1, 1, 2]) if _free_valence(a) >= 2 else 1
            rw.AddBond(a.GetIdx(), new, Chem.BondType.DOUBLE if order == 2 else Chem.BondType.SINGLE)
        elif op == "insert":
            single = [b for b in bonds if b.GetBondType() == Chem.BondType.SINGLE]
            if not single:
                continue
            b = rng.choice(single)
            i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
            rw.RemoveBond(i, j)
            new = rw.AddAtom(Chem.Atom(rng.choice([e for e in limits.elements if VALENCE.get(e, 0) >= 2])))
            rw.AddBond(i, new, Chem.BondType.SINGLE)
            rw.AddBond(new, j, Chem.BondType.SINGLE)
        elif op == "delete":
            terminal = [a for a in atoms if a.GetDegree() == 1]
            if not terminal:
                continue
            rw.RemoveAtom(rng.choice(terminal).GetIdx())
        elif op == "bond_order":
            if not bonds:
                continue
            b = rng.choice(bonds)
            b.SetBondType(rng.choice([Chem.BondType.SINGLE, Chem.BondType.DOUBLE, Chem.BondType.TRIPLE]))
        elif op == "close_ring":
            pairs = [(a.GetIdx(), c.GetIdx()) for a in atoms for c in atoms if a.GetIdx() < c.GetIdx()
                     and _free_valence(a) >= 1 and _free_valence(c) >= 1
                     and 3 <= len(Chem.GetShortestPath(rw, a.GetIdx(), c.GetIdx())) <= limits.max_ring]
            if not pairs:
                continue
            rw.AddBond(*rng.choice(pairs), Chem.BondType.SINGLE)
        else:  # open_ring
            ring = [b for b in bonds if b.IsInRing()]
            if not ring:
                continue
            b = rng.choice(ring)
            rw.RemoveBond(b.GetBeginAtomIdx(), b.GetEndAtomIdx())
        child = _finish(rw, limits)
        if child is not None and child != smiles:
            return child
    return None


def crossover(a: str, b: str, rng: random.Random, limits: Limits = Limits(), tries: int = 10) -> str | None:
    """Join a fragment of ``a`` and a fragment of ``b``, each cut at a random acyclic single bond."""
    from rdkit import Chem

    from rdkit.rdBase import BlockLogs

    _quiet = BlockLogs()  # noqa: F841
    ma, mb = Chem.MolFromSmiles(a), Chem.MolFromSmiles(b)
    if ma is None or mb is None:
        return None

    def cuts(m):
        return [bd.GetIdx() for bd in m.GetBonds() if bd.GetBondType() == Chem.BondType.SINGLE and not bd.IsInRing()]

    ca, cb = cuts(ma), cuts(mb)
    if not ca or not cb:
        return None
    for _ in range(tries):
        fa = Chem.GetMolFrags(Chem.FragmentOnBonds(ma, [rng.choice(ca)], dummyLabels=[(1, 1)]), asMols=True)
        fb = Chem.GetMolFrags(Chem.FragmentOnBonds(mb, [rng.choice(cb)], dummyLabels=[(1, 1)]), asMols=True)
        left, right = Chem.RWMol(rng.choice(fa)), Chem.RWMol(rng.choice(fb))
        for frag, label in ((left, 1), (right, 1)):
            for atom in frag.GetAtoms():
                if atom.GetAtomicNum() == 0:
                    atom.SetAtomMapNum(label)
        try:
            joined = Chem.molzip(Chem.CombineMols(left, right))
        except Exception:  # noqa: BLE001
            continue
        child = accept(Chem.MolToSmiles(joined), limits)
        if child is not None and child not in (a, b):
            return child
    return None


def run_ga(score: Callable[[list[str]], Sequence[float]], seeds: Sequence[str], *, generations: int = 20,
           population: int = 200, offspring: int = 200, mutation_rate: float = 0.5, seed: int = 0,
           limits: Limits = Limits(), keep: Callable[[str], bool] | None = None,
           progress: Callable[[int, float], None] | None = None) -> dict[str, float]:
    """Evolve molecules toward a higher ``score`` (a batch function: SMILES -> values; NaN counts as worst).

    Starts from ``population`` of ``seeds``; each generation makes ``offspring`` children by crossover of two
    tournament-selected parents, each child mutated with probability ``mutation_rate`` (a failed crossover falls
    back to a mutation of the first parent); children that ``keep`` rejects (e.g. known molecules) are dropped;
    the best ``population`` of parents and children survive. Returns every molecule scored, SMILES -> score."""
    import math

    rng = random.Random(seed)
    start = [s for s in (accept(x, limits) for x in seeds) if s]
    pop = list(dict.fromkeys(rng.sample(start, min(population, len(start)))))
    scored: dict[str, float] = {}

    def evaluate(batch: list[str]) -> None:
        new = [s for s in dict.fromkeys(batch) if s not in scored]
        if new:
            for s, v in zip(new, score(new)):
                scored[s] = float(v) if v is not None and math.isfinite(float(v)) else -math.inf

    evaluate(pop)

    def pick() -> str:
        a, b = rng.choice(pop), rng.choice(pop)
        return a if scored[a] >= scored[b] else b

    for gen in range(generations):
        children = []
        for _ in range(offspring):
            p1, p2 = pick(), pick()
            child = crossover(p1, p2, rng, limits) or mutate(p1, rng, limits)
            if child and rng.random() < mutation_rate:
                child = mutate(child, rng, limits) or child
            if child and (keep is None or keep(child)):
                children.append(child)
        evaluate(children)
        pop = sorted(set(pop) | set(children), key=lambda s: scored[s], reverse=True)[:population]
        if progress:
            progress(gen + 1, scored[pop[0]])
    return scored
