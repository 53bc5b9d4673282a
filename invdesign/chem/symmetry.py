"""Space groups and symmetrised CIFs of crystal cells, at one stated tolerance (spglib through pymatgen).

Every space group the project reports (the exported CIFs, their file names and READMEs, the landing page's cards)
is found at :data:`SYMPREC` and :data:`ANGLE_TOLERANCE`, so a cell named ``Fm-3m`` in a zip is ``Fm-3m`` on the
page too.
"""

from __future__ import annotations

from dataclasses import dataclass

#: distance tolerance of the symmetry search (A): pymatgen's default, and what cells relaxed to the oracle's fmax
#: (0.05-0.1 eV/A) need; at 0.01 A every cell of the default campaign of 2026-12-07 was P1 (IrOs3: P1 at 0.01,
#: Pm at 0.05, Pm-3m at 0.1)
SYMPREC = 0.1
#: angle tolerance of the symmetry search (degrees)
ANGLE_TOLERANCE = 5.0
#: the tolerance in words, for file headers and READMEs
TOLERANCE_TEXT = f"symprec {SYMPREC:g} A, angle_tolerance {ANGLE_TOLERANCE:g} deg"


@dataclass(frozen=True)
class SpaceGroup:
    symbol: str  # Hermann-Mauguin, e.g. "P4/mmm"
    number: int

    @property
    def file_symbol(self) -> str:
        """The symbol as a file name takes it (``/`` as ``_``)."""
        return self.symbol.replace("/", "_")

    def __str__(self) -> str:
        return f"{self.symbol} ({self.number})"


def _analyzer(structure):
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    return SpacegroupAnalyzer(structure, symprec=SYMPREC, angle_tolerance=ANGLE_TOLERANCE)


def space_group(structure) -> SpaceGroup | None:
    """The cell's space group at the stated tolerance; None where spglib finds none."""
    try:
        sga = _analyzer(structure)
        return SpaceGroup(sga.get_space_group_symbol(), int(sga.get_space_group_number()))
    except Exception:  # noqa: BLE001 - spglib gives up on degenerate cells (overlapping atoms, a flat lattice)
        return None


def symmetrized_cif(structure, name: str, comment: str = "") -> tuple[str, SpaceGroup | None]:
    """(CIF text, space group) of the cell refined to its space group at the stated tolerance, the CIF carrying
    the space group's symmetry operations, its data block named ``name`` and a header comment stating the
    tolerance (and ``comment``). Where spglib finds no space group the cell is written as it is, in P1, and the
    header says so; the space group is then None."""
    from pymatgen.io.cif import CifWriter

    sg = space_group(structure)
    if sg is not None:
        refined = _analyzer(structure).get_refined_structure()
        text = str(CifWriter(refined, symprec=SYMPREC, angle_tolerance=ANGLE_TOLERANCE))
        how = f"symmetrised to {sg} with spglib at {TOLERANCE_TEXT}"
    else:
        text = str(CifWriter(structure))
        how = f"no space group found by spglib at {TOLERANCE_TEXT}: written as it is, P1"
    body = text[text.index("data_"):].split("\n", 1)[1]  # pymatgen's own comment and data block name go
    header = "".join(f"# {line}\n" for line in (*filter(None, [comment]), how))
    return f"{header}data_{name.replace(' ', '_')}\n{body}", sg
