"""The crystal oracle: CHGNet relaxation, energy above the hull, the campaign property's measure, novelty again.

The physics lives in modules by idea; this one chains them and is the workflow's oracle:

* :mod:`~invdesign.oracles.potentials`: CHGNet (and the MP2020 energy scale); :mod:`~invdesign.oracles.committee`:
  SevenNet, the confirming tier's potential;
* :mod:`~invdesign.oracles.relax`: the relaxation of every tier (FIRE on atoms and cell; failures are error rows);
* :mod:`~invdesign.oracles.hull`: the reference phases' energies, elemental references, the potential's hull and
  the hull of the known DFT entries;
* :mod:`~invdesign.oracles.eos` and :mod:`~invdesign.oracles.elasticity`: EOS bulk modulus, elastic tensor (VRH G
  and K, Chen hardness).

:func:`verify_crystals` chains relaxation, hull and EOS into one table. :class:`ChgnetOracle` is the workflow's
oracle; for a shear-modulus or hardness campaign it adds the elastic tensor of each relaxed cell and judges the cell
by the column :data:`MEASURES` names, for CHGNet and for the SevenNet committee alike.

chgnet, matcalc and pymatgen are imported lazily, so importing this module does not need them.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from ..config.oracles import ChgnetOracleSettings
from . import ERROR_COLUMN, MEASURED, CardField, CardFigure, NoveltyColumns, Oracle, Tier
from . import Measure as TierMeasure  # this module's Measure: how the CHGNet tier computes one
from .eos import eos_fits
from .hull import ReferenceEnergies, dft_hull_energies, hull_energies, hull_entries_json
from .potentials import calculator_or_chgnet, load_chgnet
from .relax import relax

if TYPE_CHECKING:
    from pymatgen.core import Structure

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# everything together
# ---------------------------------------------------------------------------------------------

VERIFY_COLUMNS = ["relaxed_cif", "chgnet_energy_per_atom", "e_hull", "stable", "eos_bulk_modulus_gpa", "eos_r2",
                  "eos_points", "relax_converged", "oracle_error"]


def verify_crystals(
    structures: Sequence[Structure],
    references: Iterable[Structure] | ReferenceEnergies,
    *,
    fmax: float,
    steps: int,
    e_hull_max: float,
    eos_for: str,
    calculator=None,
) -> pd.DataFrame:
    """Relax candidates with CHGNet (or ``calculator``), place them on the reference hull, and fit their EOS.

    Returns one row per input (same order) with :data:`VERIFY_COLUMNS`: ``relaxed_cif`` (CIF text,
    "" on failure), ``chgnet_energy_per_atom`` (eV/atom), ``e_hull`` (eV/atom, signed, see
    :func:`~invdesign.oracles.hull.hull_energies`), ``stable`` (``e_hull <= e_hull_max``),
    ``eos_bulk_modulus_gpa``, ``relax_converged`` and ``oracle_error`` ("" when fine). ``references`` are the
    known phases, or a :class:`~invdesign.oracles.hull.ReferenceEnergies` to reuse its cached relaxations.

    ``eos_for`` picks who gets the matcalc EOS bulk modulus: ``"all"`` (every candidate that relaxed,
    stable or not), ``"stable"`` (only those within ``e_hull_max``) or ``"none"``; the others get NaN.
    """
    if eos_for not in ("all", "stable", "none"):
        raise ValueError(f"eos_for must be 'all', 'stable' or 'none', not {eos_for!r}")
    calc = calculator_or_chgnet(calculator)
    refs = references if isinstance(references, ReferenceEnergies) else \
        ReferenceEnergies(references, calculator=calc, fmax=fmax, steps=steps)
    rows = relax(structures, calc, fmax=fmax, steps=steps)
    e_hull = np.asarray(hull_energies(rows, refs), dtype=float)
    stable = np.nan_to_num(e_hull, nan=np.inf) <= e_hull_max
    bulk, r2 = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    eos_error, eos_points = [""] * len(rows), [""] * len(rows)
    relaxed = np.array([row["structure"] is not None and row["error"] is None for row in rows], dtype=bool)
    want_eos = {"all": relaxed, "stable": stable & relaxed, "none": np.zeros_like(relaxed)}[eos_for]
    idx = np.flatnonzero(want_eos)
    if idx.size:
        fits = eos_fits([rows[i]["structure"] for i in idx], calculator=calc,
                        relaxed=[rows[i]["converged"] for i in idx], fmax=fmax, max_steps=steps)
        for i, fit in zip(idx, fits):
            bulk[i], r2[i], eos_error[i] = fit["k"], fit["r2"], fit["error"]
            eos_points[i] = json.dumps(fit["points"]) if fit.get("points") else ""
    errors = []
    for row, e, k, want, why in zip(rows, e_hull, bulk, want_eos, eos_error):
        if row["error"] is not None:
            errors.append(row["error"])
        elif math.isnan(e):
            errors.append("no energy above hull (missing or failed reference phases)")
        elif want and math.isnan(k):
            errors.append(why or "EOS fit failed")
        else:
            errors.append("")
    return pd.DataFrame({
        "relaxed_cif": [row["structure"].to(fmt="cif") if row["structure"] is not None else "" for row in rows],
        "chgnet_energy_per_atom": [row["energy_per_atom"] for row in rows],
        "e_hull": e_hull,
        "stable": stable,
        "eos_bulk_modulus_gpa": bulk,
        "eos_r2": r2,
        "eos_points": eos_points,
        "relax_converged": [bool(row["converged"]) for row in rows],
        "oracle_error": errors,
    }, columns=VERIFY_COLUMNS)


# ---------------------------------------------------------------------------------------------
# the oracle of the workflow
# ---------------------------------------------------------------------------------------------

class Measure(NamedTuple):
    """How the crystal oracle measures one property: its first tier's column (the committee's is ``sevennet_`` +
    it), the calculation that fills it, the tag of its verdict columns and metrics (``<tag>_in_target``,
    ``n_stable_<tag>_in_target``, ...), the committee's SevenNet - CHGNet column, its label and short name."""

    column: str
    calc: str  # "eos" | "elastic"
    tag: str
    diff: str
    label: str
    short: str


#: the first tier's column -> its measure; the column :class:`ChgnetOracle`'s first tier declares for the campaign
#: property picks one
MEASURES = {m.column: m for m in (
    Measure("eos_bulk_modulus_gpa", "eos", "eos", "committee_k_diff_gpa", "EOS bulk modulus", "EOS"),
    Measure("elastic_shear_modulus_gpa", "elastic", "shear", "committee_g_diff_gpa", "VRH shear modulus", "G"),
    Measure("vickers_hardness_gpa", "elastic", "hardness", "committee_hv_diff_gpa", "Chen Vickers hardness", "H_V"),
)}

ELASTIC_DOC = {
    "elastic_shear_modulus_gpa": "Voigt-Reuss-Hill shear modulus of the elastic tensor (matcalc ElasticityCalc with "
                                 "CHGNet, GPa); none where the tensor gives no positive moduli",
    "elastic_bulk_modulus_gpa": "Voigt-Reuss-Hill bulk modulus of the same elastic tensor (GPa)",
    "vickers_hardness_gpa": "Chen's Vickers hardness from the elastic K and G (GPa)",
    "elastic_r2": "mean R^2 of the elastic tensor's stress-strain fits",
}


class ChgnetOracle(Oracle):
    """CHGNet check of crystal candidates: relaxation (from the composition's additive volume), energy above the
    hull of the data set's phases of the chemical system plus elemental references, the measure of the campaign
    property (EOS bulk modulus, or the elastic tensor's shear modulus or Chen hardness), and a second novelty check
    of the relaxed cell."""

    settings_class = ChgnetOracleSettings
    domain = "crystals"
    default = True
    tiers = (
        Tier("CHGNet", {"bulk_modulus_gpa": TierMeasure("eos_bulk_modulus_gpa", "GPa"),
                        "shear_modulus_gpa": TierMeasure("elastic_shear_modulus_gpa", "GPa"),
                        "vickers_hardness_gpa": TierMeasure("vickers_hardness_gpa", "GPa")},
             card=(CardField("E_hull, CHGNet", "e_hull", "eV/atom", 3),
                   CardField("E_hull on DFT entries (CHGNet)", "e_hull_dft", "eV/atom", 3, missing="no DFT entries",
                             explain=False),
                   CardField("matches a known phase", "matches_known", explain=False, text=True),
                   CardField("matches a known cell under substitutional disorder", "disorder_match", explain=False,
                             text=True, optional=True),
                   CardField("alloy ordering of", "parent_lattice", explain=False, text=True,
                             empty="none (a compound)", optional=True),
                   CardField("rule-of-mixtures estimate", "rule_of_mixtures", "{unit}", 0, explain=False,
                             optional=True)),
             figures=(CardFigure("phase_diagram", "CHGNet", {"entries": "hull_entries", "cif": "relaxed_cif",
                                                             "energy": "chgnet_energy_per_atom"}),
                      CardFigure("eos_scan", "CHGNet", {"points": "eos_points", "modulus": "eos_bulk_modulus_gpa",
                                                        "r2": "eos_r2"})),
             large=("relaxed_cif",),
             hulls=(("e_hull_dft", "the hull of the DFT entries"), ("e_hull", "the CHGNet hull of the known phases")),
             known_match="matches_known",
             novelty=NoveltyColumns("novel_disorder_aware", "disorder_match", "alloy_ordering", "parent_lattice",
                                    "new_material")),
        Tier("SevenNet", {"bulk_modulus_gpa": TierMeasure("sevennet_eos_bulk_modulus_gpa", "GPa"),
                          "shear_modulus_gpa": TierMeasure("sevennet_elastic_shear_modulus_gpa", "GPa"),
                          "vickers_hardness_gpa": TierMeasure("sevennet_vickers_hardness_gpa", "GPa")},
             error="sevennet_error",
             card=(CardField("E_hull, SevenNet", "sevennet_e_hull", "eV/atom", 3),),
             figures=(CardFigure("eos_scan", "SevenNet", {"points": "sevennet_eos_points",
                                                          "modulus": "sevennet_eos_bulk_modulus_gpa",
                                                          "r2": "sevennet_eos_r2"}),),
             hulls=(("sevennet_e_hull_dft", "the hull of the DFT entries"),
                    ("sevennet_e_hull", "the SevenNet hull of the known phases")),
             known_match="sevennet_matches_known"),
    )
    report_columns = ("e_hull", "stable", "novel_after_relaxation", "matches_known")
    COLUMNS = {
        "volume_scale": "factor the cell volume was scaled by before relaxing (oracle.rescale_volume)",
        "relaxed_cif": "the CHGNet-relaxed cell (CIF text; '' when the relaxation failed)",
        "chgnet_energy_per_atom": "CHGNet energy of the relaxed cell (eV/atom)",
        "e_hull": "energy above the CHGNet hull of the known phases (eV/atom, signed)",
        "e_hull_dft": "CHGNet energy above the hull of the DFT entries of filters.known_library (eV/atom, signed, "
                      "MP2020-corrected; none where those entries do not cover the chemical system)",
        "hull_reference": "the hull 'stable' is judged on: 'DFT entries' where e_hull_dft exists, else 'CHGNet known "
                          "phases'",
        "stable": "e_hull_dft (where it exists, else e_hull) <= oracle.e_hull_max",
        "eos_bulk_modulus_gpa": "Birch-Murnaghan bulk modulus from matcalc's EOS with CHGNet (GPa); none where the "
                                "fit's R^2 is below 0.95",
        "eos_r2": "R^2 of the Birch-Murnaghan fit",
        "eos_points": "the EOS scan: volumes (A^3) and CHGNet energies (eV), JSON ('' where none ran)",
        "hull_entries": "the hull the cell was placed on: [reduced formula, CHGNet energy per atom] of each known phase "
                        "and elemental reference of its chemical system, JSON",
        "relax_converged": "the relaxation met fmax within max_steps",
        "matches_known": "id of a data set phase the relaxed cell matches ('' when none)",
        "novel_after_relaxation": "the relaxed cell matches no known phase",
        "novel_disorder_aware": "the relaxed cell matches no known cell of its formula even with its substitutable "
                                "elements made one disordered site (chem.crystal_novelty)",
        "disorder_match": "id of the known cell it matches under substitutional disorder ('' when none)",
        "alloy_ordering": "the relaxed cell is an ordering of its elements on a simple or known lattice: all its "
                          "elements substitute for each other (Hume-Rothery) and with one species on every site it "
                          "is parent_lattice",
        "parent_lattice": "fcc, hcp, bcc or known:<formula> (a known phase of its chemical system); '' for a compound",
        ERROR_COLUMN: "why CHGNet could not check the cell ('' when it could)",
    }
    #: with oracle.alloy_orderings: count, the property an ordering would have if its elements only mixed
    MIXTURE_COLUMN = "rule_of_mixtures"

    def table_columns(self):
        return [("committee_confirmed", ""), ("stable", ""), ("e_hull", "eV/atom"), ("sevennet_stable", ""),
                ("sevennet_e_hull", "eV/atom"), ("e_hull_dft", "eV/atom"), (MEASURED, ""),
                ("predicted_property", "{unit}"), ("novel_after_relaxation", ""), ("matches_known", ""),
                ("alloy_ordering", ""), ("parent_lattice", ""),
                ("generator", ""), (ERROR_COLUMN, ""), ("sevennet_error", "")]

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        #: the measure of the campaign property (None: not measured); a column MEASURES lacks is an error
        self.measure = MEASURES[self.measures] if self.measures else None
        #: the measure whose column names the verdict columns (the bulk modulus's when none is measured)
        self.named = self.measure or MEASURES["eos_bulk_modulus_gpa"]

    def _elastic(self) -> bool:
        return self.measure is not None and self.measure.calc == "elastic"

    @property
    def columns(self) -> dict[str, str]:
        mix = ({self.MIXTURE_COLUMN: "the atom-fraction-weighted mean of the campaign property over the data set's "
                                     "cells of each element alone (alloy orderings only)"}
               if self.settings.alloy_orderings == "count" else {})
        return {**self.COLUMNS, **(ELASTIC_DOC if self._elastic() else {}), **mix}

    @property
    def confirm_columns(self) -> dict[str, str]:
        extra = {f"sevennet_{c}": f"SevenNet: {doc.replace('CHGNet', 'SevenNet')}" for c, doc in ELASTIC_DOC.items()}
        return {**self.CONFIRM_COLUMNS, **(extra if self._elastic() else {})}

    @property
    def eos_for(self) -> str:
        """Who gets an EOS fit: none when the campaign property is not the EOS bulk modulus."""
        return self.settings.eos_for if self.measure is not None and self.measure.calc == "eos" else "none"

    @property
    def elastic_for(self) -> str:
        """Who gets the elastic tensor: none when the campaign property is not an elastic measure."""
        return self.settings.elastic_for if self._elastic() else "none"

    def prepare(self, dataset: pd.DataFrame) -> dict:
        """Per-element volumes fitted on the data set's cells (for ``rescale_volume``); with ``alloy_orderings:
        count``, the property of each element's own cells (the rule-of-mixtures estimate of an ordering)."""
        from ..chem.crystal_novelty import elemental_values
        from ..chem.crystals import fit_atomic_volumes, structure_from_record

        out = {}
        if self.settings.rescale_volume:
            out["atomic_volumes"] = fit_atomic_volumes([structure_from_record(r) for r in dataset["structure"]])
        if self.settings.alloy_orderings == "count" and "property" in dataset:
            out["elemental_property"] = elemental_values(dataset, "property")
        return out

    def select(self, candidates: pd.DataFrame) -> pd.DataFrame:
        """The passing candidates, ranked by earlier campaigns' verdicts (``feedback_from``) when given, without
        the alloy orderings (``alloy_orderings: exclude``), one per reduced formula (``one_per_formula``), the
        ``top_k`` best."""
        s = self.settings
        top = candidates[candidates["passes"].astype(bool)]
        if s.feedback_from:
            from ..search.feedback import rank_by_feedback

            top = rank_by_feedback(top, s.feedback_from, self.target, self.measures)
        if s.alloy_orderings == "exclude" and "alloy_ordering" in top:
            ordering = top["alloy_ordering"].astype("boolean").fillna(False).to_numpy(bool)
            if ordering.any():
                log.info("%d passing candidates are alloy orderings (oracle.alloy_orderings: exclude): not checked",
                         int(ordering.sum()))
            top = top[~ordering]
        if s.one_per_formula:
            top = top.drop_duplicates("formula")  # a diversity filter: the best-ranked cell of each formula
        return (top if s.top_k is None else top.head(s.top_k)).reset_index(drop=True)

    def evaluate(self, batch: pd.DataFrame, known: pd.DataFrame, prepared: dict) -> pd.DataFrame:
        """CHGNet relaxation, E_hull against every known phase of the candidate's chemical system (the whole source
        data set, any size, and the user's library), and EOS of one batch; every relaxed cell is matched against
        the known phases again (``matches_known``, ``novel_after_relaxation``): a novel generated cell can relax
        onto a known phase."""
        from pymatgen.core import Structure

        from ..chem.crystals import known_matches, rescale_to_volume, structure_from_record

        s = self.settings
        top = batch.reset_index(drop=True).copy()
        if not len(top):
            return self.empty_result(top)
        cells, unreadable = [], {}
        for i, rec in enumerate(top["structure"]):
            try:
                cells.append(structure_from_record(rec))
            except Exception as exc:  # noqa: BLE001  (a bad record is an error row, never a crashed job)
                cells.append(None)
                unreadable[i] = f"unreadable structure record: {type(exc).__name__}"
        ok = [i for i, c in enumerate(cells) if c is not None]
        chemsys = {frozenset(el.symbol for el in cells[i].composition.elements) for i in ok}
        references = self._references(known, chemsys)
        volumes = prepared.get("atomic_volumes")
        scale = np.ones(len(top))
        if volumes:
            # generated cells are often compressed (median 0.45x the relaxed volume in the bench); relaxed from
            # the composition's additive volume, 1 of 80 bench cells failed to relax against 21 of 100 as generated
            for i in ok:
                rescaled = rescale_to_volume(cells[i], volumes)
                scale[i], cells[i] = rescaled.volume / cells[i].volume, rescaled
            log.info("cells scaled to their additive volume before relaxing (median factor %.2f)",
                     float(np.median(scale[ok])) if ok else 1.0)
        top["volume_scale"] = scale
        log.info("CHGNet check of %d crystal candidates (%d chemical systems, %d reference phases)", len(top),
                 len(chemsys), len(references.structures))
        calc = references.calculator
        if self.eos_for == "none" and s.eos_for != "none":
            log.info("no EOS fit: the campaign property %s is not the EOS bulk modulus", self.property_column)
        res = verify_crystals([cells[i] for i in ok], references, fmax=s.fmax, steps=s.max_steps,
                              e_hull_max=s.e_hull_max, calculator=calc, eos_for=self.eos_for)
        res["hull_entries"] = [hull_entries_json(references, cells[i]) if np.isfinite(e) else ""
                               for i, e in zip(ok, res["e_hull"])]
        res.index = ok
        res = res.reindex(range(len(top)))
        for i, why in unreadable.items():
            res.loc[i, ["relaxed_cif", "oracle_error", "stable", "relax_converged"]] = ["", why, False, False]
        top = pd.concat([top, res], axis=1)
        relaxed = [Structure.from_str(c, fmt="cif") if isinstance(c, str) and c else None for c in top["relaxed_cif"]]
        try:
            matches = known_matches(relaxed, known)
        except Exception as exc:  # noqa: BLE001  (the matcher failing leaves the novelty unknown, in the error)
            log.warning("matching the relaxed cells against the data set failed: %s: %s", type(exc).__name__, exc)
            matches = [None] * len(relaxed)
            top[ERROR_COLUMN] = [e or f"no novelty check: {type(exc).__name__}" for e in top[ERROR_COLUMN].fillna("")]
        top["matches_known"] = [k or "" for k in matches]
        top["novel_after_relaxation"] = [r is not None and k is None for r, k in zip(relaxed, matches)]
        self._novelty_verdicts(top, relaxed, known, prepared)
        self._on_dft_hull(top, [r.composition if r is not None else None for r in relaxed],
                          top["chgnet_energy_per_atom"], known, "e_hull_dft", "stable", "hull_reference")
        if self.elastic_for != "none":
            fine = top[ERROR_COLUMN].fillna("").eq("") & (top["stable"].eq(True) if self.elastic_for == "stable"
                                                          else True)
            self._add_elastic(top, relaxed, fine.to_numpy(bool), references.calculator, "", ERROR_COLUMN)
        log.info("%d of %d relaxed candidates relaxed onto a known phase",
                 sum(k is not None for k in matches), sum(r is not None for r in relaxed))
        return top

    def _novelty_verdicts(self, table, relaxed, known, prepared) -> None:
        """The relaxed cells' disorder-aware novelty and alloy-ordering verdicts (:mod:`~invdesign.chem.crystal_novelty`);
        with ``alloy_orderings: count`` each ordering's rule-of-mixtures estimate of the property."""
        from ..chem.crystal_novelty import novelty_verdicts, rule_of_mixtures

        v = novelty_verdicts(relaxed, known)
        for col in ("novel_disorder_aware", "alloy_ordering"):
            table[col] = pd.array(v[col], dtype="boolean")
        for col in ("disorder_match", "parent_lattice"):
            table[col] = v[col].to_numpy(object)
        if self.settings.alloy_orderings == "count":
            el = prepared.get("elemental_property", {})
            table[self.MIXTURE_COLUMN] = [rule_of_mixtures(f, el) if o else np.nan
                                          for f, o in zip(table["formula"], v["alloy_ordering"].eq(True))]
        log.info("%d relaxed cells are alloy orderings, %d match a known cell under substitutional disorder",
                 int(v["alloy_ordering"].eq(True).sum()), int(v["novel_disorder_aware"].eq(False).sum()))

    def _on_dft_hull(self, table, compositions, energies, known, column: str, stable: str, reference: str | None):
        """``column``: the energy above the DFT entries' hull (:func:`dft_hull_energies`); where it exists, it decides
        ``stable`` instead of the potential's own hull of the known phases."""
        e = dft_hull_energies(compositions, pd.to_numeric(pd.Series(list(energies)), errors="coerce").to_numpy(float),
                              known)
        table[column] = e
        on = np.isfinite(e)
        if on.any():
            table[stable] = pd.Series(np.where(on, e <= self.settings.e_hull_max, table[stable].eq(True)),
                                      index=table.index)
            log.info("%d of %d cells placed on the hull of the known DFT entries", int(on.sum()), len(table))
        if reference:
            table[reference] = np.where(on, "DFT entries", "CHGNet known phases")

    def _add_elastic(self, table, cells, want, calculator, prefix: str, error: str) -> None:
        """The elastic columns (``prefix`` + :data:`ELASTIC_DOC`'s) of ``cells`` where ``want``; a failed tensor's
        error is added to the ``error`` column."""
        from .elasticity import elastic_columns

        cols, errors = elastic_columns(cells, want, calculator, fmax=self.settings.fmax,
                                       relax_ions=self.settings.elastic_relax_ions,
                                       max_gpa=self.settings.elastic_max_gpa, prefix=prefix)
        for name, values in cols.items():
            table[name] = values
        table[error] = [e or x for e, x in zip(table[error].fillna(""), errors)]

    def _references(self, dataset: pd.DataFrame, chemsys: set) -> ReferenceEnergies:
        """The data set's phases of the chemical systems ``chemsys`` (every phase whose elements are a subset of one)
        with their CHGNet energies. Kept on the oracle while ``dataset`` is the same table, so a process that checks
        several batches (a bench lane) relaxes each reference once."""
        from ..chem.crystals import structure_from_record

        if getattr(self, "_refs_for", None) is not dataset:
            self._refs_for, self._refs_rows = dataset, set()
            self._refs = ReferenceEnergies([], calculator=load_chgnet().calculator, fmax=self.settings.fmax,
                                           steps=self.settings.max_steps)
        new = [i for i, f in enumerate(dataset["formula"]) if i not in self._refs_rows
               and any(set(_elements_of(f)) <= c for c in chemsys)]
        self._refs.add(structure_from_record(dataset["structure"].iloc[i]) for i in new)
        self._refs_rows.update(new)
        return self._refs

    def finalize(self, checked, candidates, known, prepared):
        """The checked cells re-ranked: S.U.N. hits first (stable, measured property in the target, still novel
        after relaxation), then by the measured property's distance to the target, then the candidate rank."""
        from ..targets import distance_to_target

        out = checked.reset_index(drop=True).copy()
        out["novel_after_relaxation"] = out["novel_after_relaxation"].astype("boolean")
        out["stable"] = out["stable"].astype("boolean")
        for col in ("novel_disorder_aware", "alloy_ordering"):
            if col in out:
                out[col] = out[col].astype("boolean")
        out["new_material"] = pd.array(self._new_material(out), dtype="boolean")
        m, tag = self.named, self.named.tag
        if self.measures:
            k = pd.to_numeric(out[self.measures], errors="coerce").to_numpy(float)
            out[f"{tag}_in_target"] = self.in_target(k)
            out[f"{tag}_distance_to_target"] = distance_to_target(k, self.target)
            out[f"predictor_vs_{tag}_gpa"] = out["predicted_property"].to_numpy(float) - k
            order = ["stable", f"{tag}_in_target", "new_material", f"{tag}_distance_to_target", "rank"]
        else:
            out[f"{tag}_in_target"] = pd.Series(pd.NA, index=out.index, dtype="boolean")
            out["property_check"] = self.not_measured_note
            log.warning("%s", self.not_measured_note)
            order = ["stable", "new_material", "distance_to_target", "rank"]
        out = out.sort_values(order, ascending=[False] * (len(order) - 2) + [True, True], na_position="last",
                              kind="stable").reset_index(drop=True)
        out.insert(0, "final_rank", np.arange(1, len(out) + 1))
        stable = out["stable"].eq(True)
        hit = stable & out[f"{tag}_in_target"].eq(True)
        errors = out[ERROR_COLUMN].fillna("")
        diff = out[f"predictor_vs_{tag}_gpa"].to_numpy(float) if self.measures else np.array([])
        metrics = {"confirmed_by": f"CHGNet (stable within e_hull_max, {m.label} in the target, a new material: "
                                   f"{self._new_material_words()})" if self.measures else self.not_measured_note,
                   "n_confirmed": int(self._chgnet_hits(out).sum()) if self.measures else 0,
                   "n_checked_by_confirming_tier": int(len(out)),
                   "oracle": self.name, "n_checked": int(len(out)), "n_relaxed": int((errors == "").sum()),
                   "n_oracle_errors": int((errors != "").sum()), "n_stable": int(stable.sum()),
                   "e_hull_max": self.settings.e_hull_max, "property_measured": bool(self.measures),
                   f"n_{tag}": int(np.isfinite(pd.to_numeric(out[m.column], errors="coerce")).sum()),
                   f"n_{tag}_in_target": int(out[f"{tag}_in_target"].eq(True).sum()),
                   f"n_stable_{tag}_in_target": int(hit.sum()),
                   "n_relaxed_onto_known": int((out["matches_known"].fillna("") != "").sum()),
                   "n_on_dft_hull": int(np.isfinite(pd.to_numeric(out.get("e_hull_dft"), errors="coerce")).sum())
                   if "e_hull_dft" in out else 0,
                   f"n_sun_{tag}_in_target": int((hit & out["new_material"].eq(True)).sum()),
                   "n_alloy_orderings": int(out["alloy_ordering"].eq(True).sum()) if "alloy_ordering" in out else 0,
                   "n_known_under_disorder": int(out["novel_disorder_aware"].eq(False).sum())
                   if "novel_disorder_aware" in out else 0,
                   f"n_stable_{tag}_in_target_alloy_orderings": int((hit & out["novel_after_relaxation"].eq(True)
                                                                    & out["alloy_ordering"].eq(True)).sum())
                   if "alloy_ordering" in out else 0,
                   "alloy_orderings": self.settings.alloy_orderings,
                   f"{tag}_vs_predictor_mae_gpa": float(np.mean(np.abs(diff[np.isfinite(diff)])))
                   if np.isfinite(diff).any() else None}
        log.info("%d/%d relaxed, %d stable (E_hull <= %.2f eV/atom), %d with the %s in the target (%d of them new "
                 "materials)", metrics["n_relaxed"], len(out), metrics["n_stable"],
                 self.settings.e_hull_max, metrics[f"n_stable_{tag}_in_target"], m.label,
                 metrics[f"n_sun_{tag}_in_target"])
        return out, metrics

    # ------------------------------------------------------------------ the committee (SevenNet)
    CONFIRM_COLUMNS = {
        "sevennet_energy_per_atom": "SevenNet energy of its relaxed cell, MP2020-corrected (eV/atom)",
        "sevennet_e_hull": "energy above the SevenNet hull of the same known phases (eV/atom, MP2020-corrected)",
        "sevennet_e_hull_dft": "SevenNet energy (MP2020-corrected) above the hull of the known DFT entries (eV/atom)",
        "sevennet_stable": "sevennet_e_hull_dft (where it exists, else sevennet_e_hull) <= oracle.e_hull_max",
        "sevennet_eos_bulk_modulus_gpa": "Birch-Murnaghan bulk modulus from matcalc's EOS with SevenNet (GPa)",
        "sevennet_eos_r2": "R^2 of SevenNet's EOS fit",
        "sevennet_eos_points": "SevenNet's EOS scan: volumes (A^3) and energies (eV), JSON",
        "sevennet_matches_known": "id of a known phase SevenNet's relaxed cell matches ('' when none)",
        "sevennet_error": "why SevenNet could not check the cell ('' when it could)",
    }

    @property
    def confirm_batch_size(self) -> int:
        return self.settings.committee.batch_size

    def confirm_select(self, checked, earlier=None, round_no=1, tier_metrics=None):
        """CHGNet's hits (or its stable / relaxed cells, ``committee.select``) for SevenNet, best first; none when
        sevenn is not installed (the committee is an optional extra) or ``committee.top_k`` is 0."""
        from .committee import sevennet_available

        c = self.settings.committee
        if c.top_k == 0 or not sevennet_available() or not len(checked):
            return checked.head(0)
        relaxed = checked["oracle_error"].fillna("").eq("") & checked["relaxed_cif"].fillna("").ne("")
        pick = {"all": relaxed, "stable": relaxed & checked["stable"].eq(True),
                "hits": relaxed & self._chgnet_hits(checked)}[c.select]
        top = checked[pick].sort_values("final_rank")
        return (top if c.top_k is None else top.head(c.top_k)).reset_index(drop=True)

    def _new_material(self, table) -> pd.Series:
        """Novel after relaxation, also under substitutional disorder, and (``alloy_orderings: exclude``) not an
        alloy ordering: what a confirmed hit must be besides stable and in the target."""
        new = table["novel_after_relaxation"].eq(True)
        if "novel_disorder_aware" in table:
            new &= table["novel_disorder_aware"].eq(True)
        if self.settings.alloy_orderings == "exclude" and "alloy_ordering" in table:
            new &= table["alloy_ordering"].eq(False)
        return new

    def _new_material_words(self) -> str:
        return ("novel after relaxation and under substitutional disorder"
                + (", not an alloy ordering" if self.settings.alloy_orderings == "exclude" else ", alloy orderings "
                   "counted"))

    def _chgnet_hits(self, table) -> pd.Series:
        hit = table["stable"].eq(True) & self._new_material(table)
        return hit & table[f"{self.named.tag}_in_target"].eq(True) if self.measures else hit

    def confirm(self, batch, known, prepared):
        """SevenNet re-relaxes each CHGNet-relaxed cell, places it on a hull of SevenNet energies of every known phase
        of its chemical system (MP2020-corrected), fits its EOS and matches it against the known phases again."""
        from pymatgen.core import Structure

        from ..chem.crystals import known_matches, structure_from_record
        from .committee import CorrectedReferences, load_sevennet, relax_ase

        s, c = self.settings, self.settings.committee
        out = batch.reset_index(drop=True).copy()
        calc = load_sevennet(c.model)
        cells = [Structure.from_str(cif, fmt="cif") for cif in out["relaxed_cif"]]
        chemsys = {frozenset(el.symbol for el in x.composition.elements) for x in cells}
        refs = CorrectedReferences([], calculator=calc, fmax=s.fmax, steps=s.max_steps)
        refs.add(structure_from_record(r) for r, f in zip(known["structure"], known["formula"])
                 if any(set(_elements_of(f)) <= cs for cs in chemsys))
        rows = relax_ase(cells, calc, fmax=s.fmax, steps=s.max_steps)
        e_hull = np.asarray(hull_energies(rows, refs), float)
        ok = [i for i, r in enumerate(rows) if r["error"] is None]
        fits = dict(zip(ok, eos_fits([rows[i]["structure"] for i in ok], calculator=calc, relaxed=True,
                                     fmax=s.fmax, max_steps=s.max_steps))) if self.eos_for != "none" else {}
        matches = known_matches([r["structure"] for r in rows], known)
        out["sevennet_energy_per_atom"] = [r["energy_per_atom"] for r in rows]
        out["sevennet_e_hull"] = e_hull
        out["sevennet_stable"] = np.nan_to_num(e_hull, nan=np.inf) <= s.e_hull_max
        out["sevennet_eos_bulk_modulus_gpa"] = [fits.get(i, {}).get("k", np.nan) for i in range(len(rows))]
        out["sevennet_eos_r2"] = [fits.get(i, {}).get("r2", np.nan) for i in range(len(rows))]
        out["sevennet_eos_points"] = [json.dumps(fits[i]["points"]) if fits.get(i, {}).get("points") else ""
                                      for i in range(len(rows))]
        out["sevennet_matches_known"] = [m or "" for m in matches]
        out["sevennet_error"] = [r["error"] or ("no energy above hull" if not np.isfinite(e) else "")
                                 or fits.get(i, {}).get("error", "")
                                 for i, (r, e) in enumerate(zip(rows, e_hull))]
        self._on_dft_hull(out, [r["structure"].composition if r.get("structure") is not None else None for r in rows],
                          out["sevennet_energy_per_atom"], known, "sevennet_e_hull_dft", "sevennet_stable", None)
        if self._elastic():
            self._add_elastic(out, [r["structure"] for r in rows], [r["error"] is None for r in rows], calc,
                              "sevennet_", "sevennet_error")
        out["sevennet_model"] = c.model
        return out

    def merge_confirmed(self, checked, confirmed, metrics):
        """``committee_confirmed`` where CHGNet and SevenNet both find the cell stable, in the target and novel; the
        two potentials' disagreement on every cell SevenNet checked; committee-confirmed cells rank first. Without
        the committee (sevenn absent or top_k 0) CHGNet's verdicts stand alone and the metrics say so."""
        c = self.settings.committee
        out = self.with_confirmations(checked, confirmed, extra=["sevennet_model"])
        ran = out["sevennet_error"].notna()
        m = self.named
        k7 = pd.to_numeric(out[f"sevennet_{m.column}"], errors="coerce").to_numpy(float)
        seven = out["sevennet_stable"].eq(True) & out["sevennet_matches_known"].fillna("x").eq("")
        if self.measures:
            seven &= pd.Series(self.in_target(k7), index=out.index)
        both = self._chgnet_hits(out) & seven
        out["committee_confirmed"] = pd.array(np.where(ran, both, pd.NA), dtype="boolean")
        out["committee_e_hull_diff"] = (pd.to_numeric(out["sevennet_e_hull"], errors="coerce")
                                        - pd.to_numeric(out["e_hull"], errors="coerce"))
        out[m.diff] = k7 - pd.to_numeric(out[m.column], errors="coerce").to_numpy(float)
        out = self.rerank(out, ["committee_confirmed"], "chgnet_rank")
        n_ran = int(ran.sum())
        stab = out.loc[ran, ["stable", "sevennet_stable"]].astype(bool)
        committee = {"committee_model": c.model, "n_committee_run": n_ran,
                     "n_committee_errors": int(out.loc[ran, "sevennet_error"].fillna("").ne("").sum()),
                     "n_sevennet_stable": int(out["sevennet_stable"].eq(True).sum()),
                     "n_committee_confirmed": int(out["committee_confirmed"].eq(True).sum()),
                     "committee_stability_agreement": float((stab["stable"] == stab["sevennet_stable"]).mean())
                     if n_ran else None,
                     "committee_e_hull_mad": float(np.nanmean(np.abs(out["committee_e_hull_diff"])))
                     if n_ran else None,
                     m.diff.replace("_diff_", "_mad_"): float(np.nanmean(np.abs(out[m.diff])))
                     if n_ran and np.isfinite(out[m.diff]).any() else None}
        if not self.measures:
            lead = {"confirmed_by": self.not_measured_note, "n_confirmed": 0, "n_checked_by_confirming_tier": n_ran}
        elif self._committee_ran():
            lead = {"confirmed_by": f"committee: CHGNet and SevenNet ({c.model}) both stable, {m.short} in the "
                                    f"target, {self._new_material_words()}",
                    "n_confirmed": committee["n_committee_confirmed"], "n_checked_by_confirming_tier": n_ran}
        else:
            why = "committee.top_k is 0" if c.top_k == 0 else "sevenn not installed: pip install 'invdesign[committee]'"
            lead = {"confirmed_by": f"CHGNet alone ({why})", "n_confirmed": metrics["n_confirmed"],
                    "n_checked_by_confirming_tier": metrics["n_checked_by_confirming_tier"]}
        metrics = {k: v for k, v in metrics.items() if k not in lead}
        log.info("committee (SevenNet %s): %d checked, %d confirmed", c.model, n_ran,
                 committee["n_committee_confirmed"])
        return out, {**lead, **metrics, **committee}

    def _committee_ran(self) -> bool:
        from .committee import sevennet_available

        return self.settings.committee.top_k != 0 and sevennet_available()

    def confirmed(self, verified):
        """Committee-confirmed cells (CHGNet's hits where the committee is off), as ``n_confirmed`` counts."""
        if not self.measures:
            return pd.Series(False, index=verified.index)
        if self._committee_ran() and "committee_confirmed" in verified:
            return verified["committee_confirmed"].eq(True)
        return self._chgnet_hits(verified)

    def confirm_ran(self, verified):
        if self._committee_ran() and "sevennet_error" in verified:
            return verified["sevennet_error"].notna()
        return verified[ERROR_COLUMN].notna()

    def first_tier_checked(self, verified):
        """Cells CHGNet relaxed (an EOS that failed afterwards is on the card, as its error)."""
        return verified.get("relaxed_cif", pd.Series("", index=verified.index)).fillna("").ne("")

    def report_extras(self, verified):
        m = self.named
        hist = {f"CHGNet {m.short} (checked candidates)": pd.to_numeric(verified[m.column],
                                                                        errors="coerce").to_numpy(float)}
        hit = verified["stable"].eq(True) & verified[f"{m.tag}_in_target"].eq(True)
        funnel = {"CHGNet stable": int(verified["stable"].eq(True).sum()), f"stable, {m.short} on target": int(hit.sum()),
                  "... and a new material": int((hit & verified.get("new_material", verified["novel_after_relaxation"])
                                                 .eq(True)).sum())}
        return hist, funnel


def _elements_of(formula: str) -> list[str]:
    from pymatgen.core import Composition

    return [el.symbol for el in Composition(formula).elements]
