"""Novelty against everything known: the whole source data set whatever max_rows, plus the user's libraries."""

import numpy as np
import pandas as pd
import pytest

from invdesign.chem.molecules import novelty_key
from invdesign.data.known import known_table, read_smiles_library, read_structure_library
from invdesign.errors import InvdesignError
from invdesign.pipeline.data import known_reference


def test_novelty_key_ignores_stereo_and_spelling():
    assert novelty_key("C[C@H](O)CC") == novelty_key("CCC(C)O") == "CCC(C)O"
    assert novelty_key("not smiles") is None


def test_novelty_key_ignores_isotope_labels_and_deuterium():
    """A library's [13CH4] or deuterated methane is methane: the generators write no isotopes (issue #37)."""
    assert novelty_key("[13CH4]") == novelty_key("[2H]C") == novelty_key("[2H]C([2H])([2H])[2H]") == "C"
    assert novelty_key("[2H]OC[C@@H](C)F") == "CC(F)CO"


def test_smiles_libraries_and_the_known_table(tmp_path):
    smi = tmp_path / "lib.smi"
    smi.write_text("# my compounds\nOCC name1\nc1ccccc1\n\n")
    csv = tmp_path / "lib.csv"
    pd.DataFrame({"SMILES": ["CCO", "C1CC1"], "x": [1, 2]}).to_csv(csv, index=False)
    a, b = read_smiles_library(str(smi)), read_smiles_library(str(csv))
    assert a["smiles"].tolist() == ["OCC", "c1ccccc1"] and b["smiles"].tolist() == ["CCO", "C1CC1"]
    table = known_table([("source", pd.DataFrame({"id": ["q1"], "smiles": ["C1CC1"]})), ("smi", a), ("csv", b)],
                        "smiles")
    assert sorted(table["smiles"]) == ["C1CC1", "CCO", "c1ccccc1"]  # OCC and CCO are one molecule
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"name": ["x"]}).to_csv(bad, index=False)
    with pytest.raises(InvdesignError, match="no 'smiles' column"):
        read_smiles_library(str(bad))


def test_a_library_molecule_is_not_novel():
    from invdesign.domains import molecules as dom

    train = pd.DataFrame({"smiles": ["CCC", "CCO"]})
    known = pd.DataFrame({"smiles": ["CCC", "CCO", "C[C@@H](O)CC"]})  # a library adds (R)-2-butanol
    # no size bound: the candidates are bigger than this 3-atom training set (filters.heavy_atom_margin)
    out = dom.filter_candidates(pd.DataFrame({"smiles": ["CCC(C)O", "CCCCO"]}), train, {"heavy_atom_margin": None},
                                known)
    assert out["novel"].tolist() == [False, True]
    assert out["reject_reason"].iloc[0].startswith("not novel: a known molecule")


def test_structure_libraries_from_a_cif_folder_and_a_pymatgen_json(repo, tmp_path):
    from monty.serialization import dumpfn
    from pymatgen.core import Lattice, Structure
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    cifs = read_structure_library(str(repo / "tests" / "data" / "crystals_cifs"))
    assert {"NaCl", "MgO", "TiO2"} <= set(cifs["formula"])  # the unreadable CIF is left out, with a warning
    s = Structure(Lattice.cubic(2.88), ["Ni", "Al"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    dumpfn([ComputedStructureEntry(s, -11.0, entry_id="mp-1487"), s], tmp_path / "entries.json")
    lib = read_structure_library(str(tmp_path / "entries.json"))
    assert lib["id"].tolist()[0] == "mp-1487" and lib["formula"].tolist() == ["AlNi", "AlNi"]


def test_known_reference_holds_every_mp_cell_whatever_the_subset(mirror, tmp_path, repo):
    """The campaign trains on cells of at most 20 sites (max_atoms) or a max_rows sample; novelty and the hull are
    judged against all 3,953 cells of the file, and a library adds its own."""
    out = tmp_path / "known.parquet"
    n = known_reference(campaign="t", domain="crystals", dataset={"source": "mp_elasticity", "max_rows": 50},
                        known_library=[str(repo / "tests" / "data" / "crystals_cifs")],
                        data={"mirror": mirror, "cache": str(tmp_path)}, out=str(out))
    table = pd.read_parquet(out)
    mp = table[table["source"] == "mp_elasticity"]
    assert len(mp) == 3953 and n == len(table) > 3953
    assert mp["structure"].map(len).max() > 0 and set(table.columns) >= {"id", "formula", "structure", "source"}


def test_dft_entries_give_the_real_hull(tmp_path):
    """A user's DFT entries (e.g. an MP export) bring MP2020-corrected energies, and the oracle places a potential's
    energy on their hull; a chemical system the entries do not cover has no DFT hull value."""
    from monty.serialization import dumpfn
    from pymatgen.core import Composition, Lattice, Structure
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    from invdesign.oracles.hull import dft_hull_energies

    gga = {"run_type": "GGA", "hubbards": {}}
    cells = {"Al": Structure(Lattice.cubic(4.04), ["Al"] * 4, [[0, 0, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]]),
             "Ni": Structure(Lattice.cubic(3.52), ["Ni"] * 4, [[0, 0, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]]),
             "NiAl": Structure(Lattice.cubic(2.88), ["Ni", "Al"], [[0, 0, 0], [.5, .5, .5]]),
             "Al2O3": Structure(Lattice.hexagonal(4.76, 12.99), ["Al", "Al", "O", "O", "O"],
                                [[0, 0, .35], [0, 0, .85], [.3, 0, .25], [0, .3, .25], [.7, .7, .25]])}
    energy = {"Al": -3.75, "Ni": -5.5, "NiAl": -5.3, "Al2O3": -7.5}  # eV/atom, uncorrected
    entries = [ComputedStructureEntry(s, energy[k] * len(s), parameters=gga, entry_id=f"mp-{k}")
               for k, s in cells.items()]
    dumpfn(entries, tmp_path / "entries.json")
    lib = read_structure_library(str(tmp_path / "entries.json"))
    e = dict(zip(lib["formula"], lib["dft_energy_per_atom"]))
    assert e["AlNi"] == pytest.approx(-5.3) and e["Al"] == pytest.approx(-3.75)
    assert e["Al2O3"] < -7.5 - 0.2  # MP2020's oxide correction (-0.687 eV per O) was applied
    # the NiAl entry is 0.675 eV/atom below the elements' line: the hull is Al - NiAl - Ni
    comps = [Composition("NiAl"), Composition("Ni3Al"), Composition("NiTi"), None]
    out = dft_hull_energies(comps, [-5.2, -5.0, -6.0, -1.0], lib)
    assert out[0] == pytest.approx(0.1)
    assert out[1] == pytest.approx(-5.0 - (0.5 * -5.3 + 0.5 * -5.5))  # on the NiAl-Ni tie line
    assert np.isnan(out[2]) and np.isnan(out[3])  # no Ti entry; no structure
    # a CIF library has no energies, so no DFT hull
    plain = lib.assign(dft_energy_per_atom=np.nan)
    assert np.isnan(dft_hull_energies(comps[:1], [-5.2], plain)).all()
