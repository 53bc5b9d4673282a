"""Crystal domain: MP elasticity or user CIFs -> periodic graphs + decoder targets -> structures -> checks, CIFs,
report page."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..chem.crystals import (build_structure, check_crystals, merge_duplicate_sites, structure_from_record,
                             structure_to_record)
from ..config import block_settings, dataset_settings
from ..errors import InvdesignError
from ..featurize.crystal import DESCRIPTORS, structure_to_graph
from ..io import atomic_path, is_missing, replaced_folder
from ..models.samples import CrystalSamples
from . import EXPORT_SUFFIX, Domain

log = logging.getLogger(__name__)

MERGE_DISTANCE = 0.5  # A; decoded same-element atoms closer than this are one atom


def load_source(ds, *, mirror: str | None, cache_dir: str) -> pd.DataFrame:
    """``ds``: :class:`~invdesign.config.data.MPSource` or :class:`~invdesign.config.data.CifFolderSource` (or
    a mapping of their keys)."""
    ds = dataset_settings("crystals", ds)
    if ds.source == "mp_elasticity":
        from ..data.materials import load_mp_elasticity

        return load_mp_elasticity(ds, mirror, cache_dir)
    if ds.source == "cif_folder":
        from ..data.user_crystals import load_cif_folder

        df = load_cif_folder(ds)
        if ds.max_rows and ds.max_rows < len(df):
            df = df.sample(n=ds.max_rows, random_state=ds.seed).sort_index().reset_index(drop=True)
        return df
    raise InvdesignError(f"dataset.source {ds.source!r} is not a crystal source; use mp_elasticity or cif_folder")


def load_known(ds, *, mirror: str | None, cache_dir: str) -> pd.DataFrame:
    """Every cell of the campaign's source (``id``, ``formula``, ``structure``), of any size: all Materials Project
    elasticity cells or every CIF of the user's folder."""
    ds = dataset_settings("crystals", ds)
    every = ds.replace(max_rows=None, max_atoms=10**9)
    if ds.source == "mp_elasticity":
        from ..data.materials import load_mp_elasticity

        df = load_mp_elasticity(every, mirror, cache_dir)
    else:
        from ..data.user_crystals import load_cif_folder

        df = load_cif_folder(every)
    return df[["id", "formula", "structure"]]


def read_library(path: str) -> pd.DataFrame:
    from ..data.known import read_structure_library

    return read_structure_library(path)


def _lattice_params(structure) -> list[float]:
    a, b, c = structure.lattice.abc
    al, be, ga = structure.lattice.angles
    return [np.log(a), np.log(b), np.log(c), np.deg2rad(al), np.deg2rad(be), np.deg2rad(ga)]


def _canonical(structure, elements):
    """Niggli-reduced cell, shifted so that one atom of the rarest element sits at the origin."""
    s = structure.get_reduced_structure()
    symbols = [site.specie.symbol for site in s]
    counts = {e: symbols.count(e) for e in set(symbols)}
    anchor = min(range(len(s)), key=lambda i: (counts[symbols[i]], elements.index(symbols[i]), i))
    frac = (s.frac_coords - s.frac_coords[anchor]) % 1.0
    return s, symbols, frac


def _attach_cell_targets(g, structure, elements, max_atoms) -> list[float]:
    """Give graph ``g`` the cell-generators' inputs: types_t [1, max_atoms] (-1 = no atom), frac_t
    [1, max_atoms, 3] of the canonical cell; returns its raw lattice parameters (standardise into lat_t)."""
    red, symbols, frac = _canonical(structure, elements)
    types = np.full(max_atoms, -1, dtype=np.int64)
    types[: len(symbols)] = [elements.index(e) for e in symbols]
    fr = np.zeros((max_atoms, 3), dtype=np.float32)
    fr[: len(symbols)] = frac
    g.types_t = torch.from_numpy(types).unsqueeze(0)
    g.frac_t = torch.from_numpy(fr).unsqueeze(0)
    return _lattice_params(red)


def featurize(df: pd.DataFrame, settings=None):
    """Periodic graphs with the cell generators' targets; ``settings``:
    :class:`~invdesign.config.featurize.CrystalFeaturize` (a mapping or None: campaign defaults)."""
    settings = block_settings("featurize", "crystals", settings)
    structures = [structure_from_record(r) for r in df["structure"]]
    elements = sorted({site.specie.symbol for s in structures for site in s},
                      key=lambda e: __import__("pymatgen.core", fromlist=["Element"]).Element(e).Z)
    max_atoms = max(len(s) for s in structures)
    cutoff, k, ng = settings.cutoff, settings.max_neighbors, settings.num_gaussians
    graphs, lattices = [], []
    for n_done, (s, y) in enumerate(zip(structures, df["property"].astype(float))):
        g = structure_to_graph(s, elements, cutoff, k, y)
        lattices.append(_attach_cell_targets(g, s, elements, max_atoms))
        graphs.append(g)
        if (n_done + 1) % 1000 == 0:
            log.info("featurized %d/%d structures", n_done + 1, len(structures))
    n_el = [len(s.composition.elements) for s in structures]
    lat = np.array(lattices, dtype=np.float32)
    mean, std = lat.mean(0), lat.std(0) + 1e-6
    for g, row in zip(graphs, lat):
        g.lat_t = torch.from_numpy((row - mean) / std).unsqueeze(0)
    meta = {"domain": "crystals", "node_dim": len(elements) + len(DESCRIPTORS), "edge_dim": ng,
            "edge_rbf": {"cutoff": cutoff, "num_gaussians": ng},
            "node_feature_names": [f"element_{e}" for e in elements] + DESCRIPTORS,
            "edge_feature_names": [f"distance_rbf_{i}" for i in range(ng)],
            "elements": elements, "max_atoms": int(max_atoms), "cutoff": cutoff, "max_neighbors": k,
            "num_gaussians": ng, "lattice_mean": mean.tolist(), "lattice_std": std.tolist(),
            # what the decoder may produce: atom counts and numbers of distinct elements seen in the data
            "natoms_seen": sorted({len(s) for s in structures}),
            "natoms_hist": np.bincount([len(s) for s in structures], minlength=max_atoms + 1).tolist(),
            "n_elements_range": [min(n_el), max(n_el)]}
    return graphs, meta


def featurize_like(df: pd.DataFrame, meta: dict) -> list:
    out = []
    known = set(meta["elements"])
    for rec in df["structure"]:
        try:
            s = structure_from_record(rec)
            if not {site.specie.symbol for site in s} <= known:
                out.append(None)
                continue
            g = structure_to_graph(s, meta["elements"], meta["cutoff"], meta["max_neighbors"])
            if len(s) <= meta["max_atoms"]:  # cell targets let the crystal EBM score the structure
                lat = np.array(_attach_cell_targets(g, s, meta["elements"], meta["max_atoms"]), dtype=np.float32)
                g.lat_t = torch.from_numpy((lat - np.array(meta["lattice_mean"])) / np.array(meta["lattice_std"])
                                           ).float().unsqueeze(0)
            out.append(g)
        except Exception:  # noqa: BLE001
            out.append(None)
    return out


def decode(out: CrystalSamples, meta: dict) -> pd.DataFrame:
    """One row per latent: formula, structure (JSON of Structure.as_dict(); None for a degenerate lattice),
    num_sites and merged_sites (same-element atoms closer than meta['merge_distance'], default 0.5 A,
    that were merged into one)."""
    tol = float(meta.get("merge_distance", MERGE_DISTANCE))
    rows = []
    for types, frac, lat in zip(out.types.tolist(), out.frac.tolist(), out.lattice.tolist()):
        s = build_structure(types, frac, lat, meta["elements"])
        if s is None:
            rows.append({"formula": None, "structure": None, "num_sites": 0, "merged_sites": 0})
            continue
        s, merged = merge_duplicate_sites(s, tol)
        rows.append({"formula": s.composition.reduced_formula, "structure": structure_to_record(s),
                     "num_sites": len(s), "merged_sites": merged})
    return pd.DataFrame(rows, columns=["formula", "structure", "num_sites", "merged_sites"])


def filter_candidates(samples: pd.DataFrame, reference: pd.DataFrame, filters=None,
                      known: pd.DataFrame | None = None) -> pd.DataFrame:
    """``filters``: :class:`~invdesign.config.filters.CrystalFilters` (a mapping or None: campaign defaults);
    novelty is judged against ``known`` (:mod:`invdesign.data.known`; default ``reference``)."""
    return check_crystals(samples, known if known is not None else reference, filters)


UNRELAXED_README = """candidates_cifs.zip: the generated cells of every candidate that passed the filters (valid, unique,
novel), UNRELAXED: the cells as the generators made them, P1, ranked by the predictor before any check. Named
<rank>_<formula>.cif, rank being candidates.csv's (the order before the oracle). The relaxed, symmetrised cells the
oracle checked are in checked.zip and the confirmed hits in confirmed.zip.
"""


def write_cif_zip(cands: pd.DataFrame, out_zip: str) -> int:
    """Zip the CIF of every passing crystal candidate as generated (unrelaxed), named by rank and formula, with a
    README saying what they are; returns the count."""
    import zipfile

    cands = cands[cands["passes"].astype(bool)]
    with atomic_path(out_zip) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("README.txt", UNRELAXED_README + f"\n{len(cands)} cells.\n")
            for rank, formula, rec in zip(cands["rank"], cands["formula"], cands["structure"]):
                zf.writestr(f"{int(rank):04d}_{formula}.cif", structure_from_record(rec).to(fmt="cif"))
    return len(cands)


#: the verified table's verdicts on each line of a relaxed zip's README (those the table has), then the measures
VERDICT_COLUMNS = (("confirmed", ""), ("stable", ""), ("e_hull", "eV/atom"), ("e_hull_dft", "eV/atom"),
                   ("committee_confirmed", ""), ("sevennet_stable", ""), ("sevennet_e_hull", "eV/atom"),
                   ("alloy_ordering", ""), ("parent_lattice", ""))


def _verdict(value, unit: str) -> str:
    if is_missing(value):
        return "not run"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, float, np.number)):
        return f"{float(value):+.3f} {unit}" if unit == "eV/atom" else f"{float(value):.1f} {unit}".rstrip()
    return str(value) or "none"


def relaxed_readme(what: str, empty: str, rows: pd.DataFrame, lines: list[str], measured) -> str:
    """The README of a zip of relaxed cells: what they are, how they were made and named, a line per file (or
    ``empty`` where there is none)."""
    from ..chem.symmetry import TOLERANCE_TEXT

    by = str(rows["confirmed_by"].iloc[0]) if "confirmed_by" in rows and len(rows) else ""
    measures = ", ".join(f"{label} ({column}, {unit})" for label, column, unit in measured) or "none"
    head = [what,
            "Each cell is the oracle's CHGNet-relaxed cell (the verified table's relaxed_cif), symmetrised with",
            f"spglib through pymatgen at {TOLERANCE_TEXT}: the refined conventional cell; the CIF",
            "carries its space group and symmetry operations (a cell with no space group at that tolerance is",
            "written as relaxed, in P1, and named so). SevenNet's re-relaxed cells (the committee) are not stored;",
            "its verdicts are on the lines below.",
            "Named <final_rank>_<formula>_<space group, / as _>.cif; final_rank is the verified table's rank after",
            "every tier.",
            "Verdicts on each file's line, those the verified table has ('not run' where a check did not run; "
            "candidates_verified.csv has every column):",
            f"  {', '.join(c for c, _ in VERDICT_COLUMNS)}",
            f"  and the measured property: {measures}.",
            *([f"Confirmed by: {by}."] if by else []), ""]
    return "\n".join([*head, *(lines or [empty])]) + "\n"


def write_relaxed_zip(rows: pd.DataFrame, out_zip: str, what: str, empty: str, measured=()) -> int:
    """Zip the relaxed cell of each row of the verified table (``relaxed_cif``), symmetrised at the stated tolerance
    (:mod:`invdesign.chem.symmetry`), named ``<final_rank>_<formula>_<space group>.cif``, with a README: ``what``
    the cells are and a line per file of its verdicts and ``measured`` ((label, column, unit) of each tier that
    measured the campaign property). Returns the count; an empty ``rows`` gives a zip with its README alone,
    saying ``empty``."""
    import zipfile

    from pymatgen.core import Structure

    from ..chem.symmetry import symmetrized_cif

    lines, files = [], []
    for _, row in rows.iterrows():
        rank, formula = int(row["final_rank"]), str(row["formula"])
        cif, sg = symmetrized_cif(Structure.from_str(row["relaxed_cif"], fmt="cif"), f"{rank}_{formula}",
                                  f"invdesign: {formula}, final rank {rank}, relaxed by CHGNet")
        name = f"{rank}_{formula}_{sg.file_symbol if sg else 'P1'}.cif"
        verdicts = [f"{c} {_verdict(row[c], u)}" for c, u in VERDICT_COLUMNS if c in row.index]
        verdicts += [f"{label} {_verdict(row.get(column), unit)}" for label, column, unit in measured]
        lines.append(f"{name}: rank {rank}, {formula}, {sg or 'no space group (P1)'}; " + ", ".join(verdicts))
        files.append((name, cif))
    with atomic_path(out_zip) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("README.txt", relaxed_readme(what, empty, rows, lines, measured))
            for name, cif in files:
                zf.writestr(name, cif)
    return len(files)


def write_relaxed_exports(verified: pd.DataFrame, confirmed_zip: str, checked_zip: str,
                          measured=()) -> tuple[int, int]:
    """``checked.zip`` (every cell the oracle relaxed) and ``confirmed.zip`` (the confirmed hits: the verified
    table's ``confirmed`` column), relaxed and symmetrised (:func:`write_relaxed_zip`); returns their counts."""
    verified = verified.sort_values("final_rank")
    relaxed = verified.get("relaxed_cif", pd.Series("", index=verified.index, dtype=object)).fillna("").ne("")
    confirmed = verified["confirmed"].astype("boolean").fillna(False)
    if (confirmed & ~relaxed).any():
        ranks = verified.loc[confirmed & ~relaxed, "final_rank"].tolist()
        raise InvdesignError(f"confirmed rows without a relaxed cell (final_rank {ranks}): the verified table is "
                             "inconsistent; run verify again")
    n_checked = write_relaxed_zip(verified[relaxed], checked_zip,
                                  "checked.zip: every cell the oracle relaxed (the verified table's rows with a "
                                  "relaxed_cif), confirmed or not.", "No cell was relaxed: this zip holds only "
                                  "this README.", measured)
    n_confirmed = write_relaxed_zip(verified[confirmed], confirmed_zip,
                                    "confirmed.zip: the confirmed hits (the verified table's confirmed column).",
                                    "No confirmed hit: this zip holds only this README.", measured)
    return n_confirmed, n_checked


class CrystalDomain(Domain):
    name = "crystals"
    identifier = "formula"
    export_suffix = EXPORT_SUFFIX["crystals"]
    report_columns = ("final_rank", "rank", "formula", "predicted_property", "unit", "num_sites", "min_distance",
                      "charge_neutral", "cif_path")

    def export_candidates(self, cands, folder: Path):
        """One CIF per passing candidate, ``<rank>_<formula>.cif``; their paths in ``cif_path``."""
        paths = [""] * len(cands)
        with replaced_folder(folder) as tmp:
            for i, (rank, formula, rec, ok) in enumerate(zip(cands["rank"], cands["formula"], cands["structure"],
                                                             cands["passes"])):
                if ok:
                    name = f"{int(rank):04d}_{formula}.cif"
                    structure_from_record(rec).to(filename=str(tmp / name))
                    paths[i] = str(Path(folder) / name)
        return cands.assign(cif_path=paths)

    def write_export(self, verified, candidates, out_path):
        return write_cif_zip(candidates, out_path)

    def write_relaxed_exports(self, verified, confirmed_zip, checked_zip, measured=()):
        return write_relaxed_exports(verified, confirmed_zip, checked_zip, measured)

    def top_candidates_html(self, candidates, verified, unit, out_html, columns=None):
        from ..pipeline.plots import crystal_table

        crystal_table(candidates, out_html, columns or self.report_columns, verified=verified)


def row_problems(df: pd.DataFrame, ds) -> list:
    """Per row: why the cell cannot train a model (:func:`invdesign.data.checks.structure_problem`), or None."""
    from ..data.checks import structure_problem

    return [structure_problem(r) for r in df["structure"]]


def duplicate_groups(df: pd.DataFrame) -> list[list[int]]:
    """Rows of one structure: the same reduced formula, matched by pymatgen's StructureMatcher with its default
    tolerances (stricter than the novelty check's, which is meant to catch near-misses of generated cells)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher, groups = StructureMatcher(), []
    for idx in df.groupby("formula").indices.values():
        if len(idx) < 2:
            continue
        clusters: list[tuple] = []  # (first cell, positions of the rows that match it)
        for pos in idx:
            cell = structure_from_record(df["structure"].iloc[pos])
            for first, members in clusters:
                if matcher.fit(first, cell):
                    members.append(int(pos))
                    break
            else:
                clusters.append((cell, [int(pos)]))
        groups += [members for _, members in clusters if len(members) > 1]
    return groups
