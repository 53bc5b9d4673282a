"""The campaign's landing page: confirmed hits first as cards with pictures, then the ranked table without NaN noise."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from invdesign.pipeline.landing import fmt_cell, landing_page


def figures(tmp_path, funnel=None, **metrics):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for name in ("hist.png", "funnel.png"):
        fig, ax = plt.subplots()
        ax.plot([0, 1])
        fig.savefig(tmp_path / name)
        plt.close(fig)
        paths.append(str(tmp_path / name))
    (tmp_path / "funnel.json").write_text(json.dumps(
        {"funnel": funnel or {"sampled": 100, "passes": 40, "in_target": 12}, **metrics}, sort_keys=True))
    return paths


def run_page(tmp_path, domain, table, metrics, oracle, target, prop, unit, funnel=None, empty_run="", **files):
    hist, funnel = figures(tmp_path, funnel, empty_run=empty_run)
    table.to_parquet(tmp_path / "verified.parquet")
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    out = tmp_path / "index.html"
    landing_page(campaign="c", domain=domain, oracle=oracle, target=target, property_column=prop, property_kind=None,
                 unit=unit, verified=str(tmp_path / "verified.parquet"), oracle_metrics=str(tmp_path / "metrics.json"),
                 funnel_metrics=str(tmp_path / "funnel.json"), hist=hist, funnel_png=funnel, out_html=str(out),
                 **files)
    return out.read_text()


def test_table_cells_say_not_run_and_failed_instead_of_nan():
    assert fmt_cell(np.nan) == fmt_cell(None) == fmt_cell(pd.NA) == "not run"
    # missing values of every kind, read without identity tests (a float32 NaN, NaT)
    assert fmt_cell(np.float32("nan")) == fmt_cell(pd.NaT) == "not run" and fmt_cell(np.False_) == "no"
    assert fmt_cell("SCF not converged", "dft_error") == "failed: SCF not converged"
    assert fmt_cell("", "oracle_error") == "ok" and fmt_cell(True) == "yes" and fmt_cell(1.0) == "1"
    assert fmt_cell(4.3217) == "4.32" and fmt_cell(np.int64(3)) == "3"


def test_molecule_page_leads_with_the_confirmed_hits_and_draws_their_orbitals(tmp_path):
    rows = pd.DataFrame({
        "final_rank": [1, 2, 3], "rank": [5, 2, 9], "smiles": ["CN=C1C=C(O)C=NC1", "C#CC(N)=O", "CCO"],
        "predicted_property": [4.5, 4.6, 4.4], "xtb_calibrated": [4.4, 4.7, np.nan], "xtb_gap_ev": [2.1, 2.3, np.nan],
        "xtb_ok": [True, True, False], "xtb_connectivity_ok": [True, True, None], "xtb_verified": [True, True, False],
        "xtb_in_target": [True, True, pd.NA], "xtb_target_probability": [0.7, 0.6, np.nan],
        "xtb_homo_density": [json.dumps([0.1, 0.05, 0.2, 0.1, 0.1, 0.2, 0.05, 0.1, 0.1]),
                             json.dumps([0.3, 0.3, 0.2, 0.1, 0.1]), None],
        "xtb_lumo_density": [json.dumps([0.0, 0.1, 0.3, 0.1, 0.1, 0.2, 0.05, 0.1, 0.05]),
                             json.dumps([0.1, 0.2, 0.5, 0.1, 0.1]), None],
        "qed": [0.5, 0.4, 0.4], "sa_score": [3.1, 3.5, 1.0], "nearest_known": ["CN=C1C=CC=NC1", "C#CC(=O)N(C)C", None],
        "nearest_known_similarity": [0.6, 0.5, np.nan], "generator": "vae",
        "dft_ok": [True, True, None], "dft_gap_ev": [4.33, 3.62, np.nan], "dft_error": ["", "", None],
        "dft_target_probability": [0.95, 0.1, np.nan], "dft_confirmed": pd.array([True, False, pd.NA], "boolean"),
        "oracle_error": ["", "", "embedding failed"]})
    metrics = {"confirmed_by": "DFT b3lyp/6-31g(2df,p)", "n_confirmed": 1, "n_checked_by_confirming_tier": 2}
    page = run_page(tmp_path, "molecules", rows, metrics, {"dft": {"top_k": 2}}, {"window": [4.0, 5.0]}, "gap_ev",
                    "eV")
    lead = page.index('class="lead"')
    assert re.search(r"<b>1</b> confirmed hit of\s+2 checked", page) and page.index(
        "confirmed: DFT HOMO-LUMO gap 4.33 eV, chance in 4-5 eV 0.95") > lead
    # the confirmed hit's card comes first, then the checked-but-not-confirmed one with its reason
    assert page.index("CN=C1C=C(O)C=NC1</h3>") < page.index("C#CC(N)=O</h3>")
    assert "not confirmed: DFT HOMO-LUMO gap 3.62 eV" in page
    assert page.count("HOMO density (xTB)</figcaption>") == 2 and page.count("LUMO density (xTB)</figcaption>") == 2
    assert page.count("data:image/svg+xml;base64") >= 4  # two molecules and their nearest known ones
    table = page[page.index('id="ranked"'):page.index("</table>", page.index('id="ranked"'))]
    assert ">nan<" not in table.lower() and "&lt;NA&gt;" not in table
    assert "failed: embedding failed" in table and "not run" in table


def test_crystal_page_draws_cell_eos_and_hull(tmp_path):
    from pymatgen.core import Lattice, Structure

    nial = Structure(Lattice.cubic(2.87), ["Ni", "Al"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    v0 = nial.volume
    vols = list(np.linspace(0.9, 1.1, 11) * v0)
    energies = [-11.0 + 0.5 * 160 / 160.2 * (v - v0) ** 2 / v0 for v in vols]  # a parabola: B = 160 GPa
    row = {"final_rank": 1, "rank": 3, "formula": "AlNi", "predicted_property": 170.0,
           "relaxed_cif": nial.to(fmt="cif"), "chgnet_energy_per_atom": -5.5, "e_hull": -0.02, "stable": True,
           "eos_bulk_modulus_gpa": 158.0, "eos_r2": 0.999,
           "eos_points": json.dumps({"volumes": vols, "energies": energies}),
           "hull_entries": json.dumps([["Al", -3.7], ["Ni", -5.6], ["AlNi3", -5.55]]),
           "novel_after_relaxation": True, "matches_known": "", "eos_in_target": True, "oracle_error": "",
           "sevennet_error": "", "sevennet_stable": True, "sevennet_e_hull": -0.01,
           "sevennet_eos_bulk_modulus_gpa": 150.0, "sevennet_eos_r2": 0.998,
           "sevennet_eos_points": json.dumps({"volumes": vols, "energies": energies}),
           "committee_confirmed": True, "generator": "diffusion"}
    table = pd.DataFrame([row, {**row, "final_rank": 2, "formula": "Al", "relaxed_cif": "", "oracle_error":
                                "relaxation failed: boom", "committee_confirmed": pd.NA, "sevennet_error": None,
                                "eos_points": "", "hull_entries": "", "e_hull": np.nan, "stable": False}])
    table["committee_confirmed"] = table["committee_confirmed"].astype("boolean")
    metrics = {"confirmed_by": "committee: CHGNet and SevenNet", "n_confirmed": 1, "n_checked_by_confirming_tier": 1}
    import sevenn  # noqa: F401  (installed with the project's [committee] extra: the committee's verdicts count)
    page = run_page(tmp_path, "crystals", table, metrics, {}, {"min": 150.0}, "bulk_modulus_gpa", "GPa")
    assert re.search(r"<b>1</b> confirmed hit of\s+1 checked", page)
    card = page[page.index("AlNi</h3>"):page.index('id="ranked"')]
    assert "Pm-3m (221)" in card and "g/cm^3" in card and "-0.020 eV/atom" in card
    assert card.count("data:image/png;base64") == 4  # cell, CHGNet EOS, hull, SevenNet EOS
    assert 'download="AlNi_rank1.cif"' in card
    table_html = page[page.index('id="ranked"'):page.index("</table>", page.index('id="ranked"'))]
    assert "failed: relaxation failed: boom" in table_html and ">nan<" not in table_html.lower()
