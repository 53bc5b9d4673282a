"""Settings of the oracles (the independent checks of the best candidates), one class per oracle.

A campaign's ``oracle:`` block names its oracle with ``type`` (default: the domain's oracle) and holds that
oracle's keys. The oracle implementations live in :mod:`invdesign.oracles`, each naming its settings class there
(``ORACLE_SETTINGS`` is read from those registrations); these classes only describe the settings, so config
validation needs no chemistry package. Standard library only (the registrations import numpy and pandas).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from .spec import Spec, setting


@dataclass(frozen=True, kw_only=True)
class OracleSettings(Spec):
    top_k: int | None = setting(50, ge=0, doc="best-ranked passing candidates verified (0 = none, null = every "
                                              "passing candidate)")
    batch_size: int = setting(25, ge=1, doc="candidates per oracle job (one Snakemake job per batch; a cluster "
                                            "runs them in parallel)")

    #: the keys ``Oracle.prepare`` reads (rule oracle_prepare depends on these alone)
    PREPARE_KEYS: ClassVar[tuple[str, ...]] = ()
    #: the sub-block of the confirming tier (the first tier's rules do not depend on it)
    CONFIRM_KEY: ClassVar[str] = ""

    def prepare_part(self) -> dict:
        """The settings rule oracle_prepare depends on: a change elsewhere does not redo the preparation."""
        d = self.to_dict()
        return {k: d[k] for k in ("type", *self.PREPARE_KEYS)}

    def check_part(self) -> dict:
        """The settings of the first tier's rules: a change of the confirming tier re-runs only that tier."""
        return {k: v for k, v in self.to_dict().items() if k != self.CONFIRM_KEY}


@dataclass(frozen=True, kw_only=True)
class DftTier(Spec):
    __doc_line__ = ("molecules: the confirming tier, a Kohn-Sham DFT single point (PySCF; gpu4pyscf on a GPU) at the "
                    "xTB geometry of the best xTB-ranked candidates; defaults are QM9's level of theory")
    top_k: int = setting(3, ge=0, doc="best xTB-ranked candidates (inside the xTB calibration's range) that get a DFT "
                                      "single point (0 = no DFT tier); about 40-100 s each on one CPU core for QM9-sized "
                                      "molecules")
    functional: str = setting("b3lyp", doc="exchange-correlation functional (PySCF/libxc name; b3lyp is the VWN-RPA "
                                           "form Gaussian and QM9 use)")
    basis: str = setting("6-31g(2df,p)", doc="basis set (QM9: 6-31G(2df,p))")
    density_fit: bool = setting(True, doc="density fitting (resolution of the identity) for the Coulomb and "
                                          "exchange terms")
    device: Literal["auto", "cpu", "gpu"] = setting("auto", doc="gpu: gpu4pyscf (an error row where it is missing); "
                                                    "auto: the GPU where gpu4pyscf finds one")
    error_model: str | None = setting(None, doc="JSON file of the protocol's signed errors against the data's own "
                                                "values ({quantity: [DFT - reference, ...]}, as bench/dft_protocol.py "
                                                "writes it); null: the QM9 measurement shipped with the package "
                                                "(DFT at the xTB geometry against QM9, docs/benchmarks.md)")
    confirm_probability: float = setting(0.8, gt=0, le=1, doc="dft_confirmed needs at least this share of the "
                                                              "protocol's errors to keep the DFT value in the target")
    batch_size: int = setting(1, ge=1, doc="molecules per DFT job (jobs run side by side)")
    max_memory_mb: int = setting(4000, ge=500, doc="PySCF memory limit per job")
    rounds: int = setting(1, ge=1, doc="top_k is spent over this many rounds, each its own workflow step: after each "
                                       "round the chance of confirmation is refitted on the DFT values so far, and "
                                       "the next round's picks are split across generators by Thompson sampling on "
                                       "their confirmed rates")


@dataclass(frozen=True, kw_only=True)
class XtbOracleSettings(OracleSettings):
    __doc_line__ = ("molecules: GFN2-xTB (tblite) geometry optimisation, connectivity check and frontier orbitals; "
                    "the xTB value is mapped to the data's DFT scale by a monotone calibration on training molecules, "
                    "then the best candidates get a DFT single point (dft:)")
    type: Literal["xtb"] = setting("xtb")
    calibration_size: int = setting(100, ge=3, doc="training molecules the xTB -> data calibration is fitted on")
    fmax: float = setting(0.05, gt=0, doc="geometry optimisation force threshold (eV/A)")
    max_steps: int = setting(300, ge=1, doc="geometry optimisation steps")
    seed: int = setting(0, doc="seeds the conformer embedding and the calibration sample")
    conformers: int = setting(5, ge=1, doc="ETKDG embeddings (seeds seed, seed+1, ...) optimised with xTB per "
                                           "molecule; the lowest xTB energy that keeps the connectivity is kept (5 "
                                           "against 1 cut the DFT tier's error against QM9 from 0.249 to 0.160 eV "
                                           "MAE, docs/benchmarks.md)")
    dft: DftTier = setting(DftTier(), doc=DftTier.__doc_line__)

    PREPARE_KEYS: ClassVar[tuple[str, ...]] = ("calibration_size", "fmax", "max_steps", "seed", "conformers")
    CONFIRM_KEY: ClassVar[str] = "dft"


@dataclass(frozen=True, kw_only=True)
class CommitteeTier(Spec):
    __doc_line__ = ("crystals: the confirming tier, a second universal potential (SevenNet, optional extra "
                    "invdesign[committee]) re-relaxing the CHGNet hits, on its own MP2020-corrected hull of the same "
                    "known phases, with its own EOS; committee_confirmed where both potentials agree")
    model: Literal["7net-0", "7net-l3i5"] = setting("7net-0", doc="SevenNet model shipped in the sevenn wheel "
                                                    "(7net-l3i5: more accurate, slower)")
    select: Literal["hits", "stable", "all"] = setting("hits", doc="which CHGNet-checked cells SevenNet checks: "
                                                       "CHGNet hits (stable, in the target, novel), the stable ones, "
                                                       "or every relaxed cell (for measuring the two potentials' "
                                                       "agreement)")
    top_k: int | None = setting(None, ge=0, doc="at most this many of them (null: all; 0: no committee)")
    batch_size: int = setting(4, ge=1, doc="cells per SevenNet job")


@dataclass(frozen=True, kw_only=True)
class ChgnetOracleSettings(OracleSettings):
    __doc_line__ = ("crystals: CHGNet relaxation, energy above the hull of the data set's phases, matcalc EOS bulk "
                    "modulus or elastic tensor (shear modulus, Chen hardness)")
    type: Literal["chgnet"] = setting("chgnet")
    fmax: float = setting(0.05, gt=0, doc="relaxation force threshold (eV/A)")
    max_steps: int = setting(300, ge=1, doc="relaxation steps")
    e_hull_max: float = setting(0.1, ge=0, doc="candidates at most this far above the CHGNet hull (eV/atom) count "
                                               "as stable")
    eos_for: Literal["all", "stable", "none"] = setting("all", doc="who gets the CHGNet EOS bulk modulus (all "
                                                        "relaxed candidates, only the stable ones, or none)")
    elastic_for: Literal["all", "stable", "none"] = setting("all", doc="who gets the elastic tensor (matcalc "
                                                            "ElasticityCalc: VRH shear and bulk moduli, Chen hardness) "
                                                            "when the campaign targets the shear modulus or the "
                                                            "hardness (all relaxed candidates, the stable ones, none)")
    elastic_relax_ions: bool = setting(True, doc="relax the atoms of each strained cell (relaxed-ion elastic "
                                                 "constants, what MP reports); false: clamped-ion constants, faster")
    elastic_max_gpa: float = setting(1000.0, gt=0, doc="an elastic tensor whose VRH G or K exceeds this is an "
                                                       "error, not a modulus (diamond's G is about 535 GPa; SevenNet "
                                                       "gave UBi a G of 27,000 GPa in bench/committee_shear.py)")
    rescale_volume: bool = setting(True, doc="scale each candidate cell to its composition's additive volume "
                                             "(per-element volumes fitted on the dataset's cells) before relaxing "
                                             "it; shape and fractional coordinates are kept")
    one_per_formula: bool = setting(False, doc="verify only the best-ranked candidate of each reduced formula (a "
                                               "diversity filter on the oracle's budget)")
    feedback_from: list[str] = setting([], doc="candidates_verified tables (Parquet/CSV) of earlier crystal "
                                               "campaigns; the candidates to verify are then ranked by a model of "
                                               "those CHGNet verdicts (P(stable) x P(CHGNet's measure of the "
                                               "campaign property in the target)) instead of the predictor alone; "
                                               "formulas those tables verified already are skipped")
    alloy_orderings: Literal["exclude", "count"] = setting(
        "exclude", doc="cells whose elements all substitute for each other and that order on a simple or known "
        "lattice (alloy_ordering, parent_lattice): exclude (not checked when flagged before relaxation, never a "
        "confirmed hit) or count (a metallurgy campaign: they are checked and can be hits, each with the "
        "rule-of-mixtures estimate of the property from its elements' cells in the data)")
    committee: CommitteeTier = setting(CommitteeTier(), doc=CommitteeTier.__doc_line__)

    PREPARE_KEYS: ClassVar[tuple[str, ...]] = ("rescale_volume",)
    CONFIRM_KEY: ClassVar[str] = "committee"


class _OracleSettings(Mapping):
    """``ORACLE_SETTINGS``: domain -> {oracle type: settings class}, the domain's default first; a view of the oracles'
    registrations (:func:`invdesign.oracles.registered`: each oracle names its settings class)."""

    @staticmethod
    def _table() -> dict[str, dict[str, type]]:
        from ..oracles import registered

        out: dict[str, dict[str, type]] = {}
        for name, cls in registered().items():
            out.setdefault(cls.domain, {})[name] = cls.settings_class
        return out

    def __getitem__(self, domain: str) -> dict[str, type]:
        return self._table()[domain]

    def __iter__(self):
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


ORACLE_SETTINGS: Mapping[str, dict[str, type]] = _OracleSettings()
