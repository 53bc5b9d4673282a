"""What the landing page says must be true of the row it describes: verdict sentences on crystal cards read numpy
booleans and pandas NA as what they hold, labels name the campaign's property and the oracle's columns after a
target swap, the calibrated xTB value is an estimate with its interval, the funnel is in pipeline order and the
ranked table counts what was checked."""

import dataclasses
import json
import re

import numpy as np
import pandas as pd

from invdesign import oracles
from invdesign.oracles.crystal import ChgnetOracle
from tests.test_landing import run_page

CELL = "data_AlNi\n_cell_length_a 2.87\n_cell_length_b 2.87\n_cell_length_c 2.87\n_cell_angle_alpha 90\n" \
       "_cell_angle_beta 90\n_cell_angle_gamma 90\n_symmetry_space_group_name_H-M 'P 1'\nloop_\n_atom_site_label\n" \
       "_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\nNi1 Ni 0 0 0\n" \
       "Al1 Al 0.5 0.5 0.5\n"


def statuses(page: str) -> dict[str, str]:
    """card heading -> verdict sentence"""
    return dict(re.findall(r"<h3>(.*?)</h3><p class=\"status\">(.*?)</p>", page))


def cards(page: str) -> dict[str, str]:
    parts = page.split('<div class="card ')[1:]
    parts[-1] = parts[-1].split('id="ranked"')[0]
    return {re.search(r"<h3>(.*?)</h3>", p).group(1): p for p in parts}


def crystal_rows(**extra) -> pd.DataFrame:
    """Verdict columns as the oracle writes them: numpy bool columns, pandas nullable booleans with NA."""
    t = pd.DataFrame({
        "final_rank": [1, 2, 3, 4, 5], "rank": [1, 2, 3, 4, 5], "formula": ["PtRh", "ReN3", "ReN", "AlNi", "Os3W"],
        "predicted_property": [120.0, 110.0, 100.0, 105.0, 90.0], "relaxed_cif": CELL, "eos_points": "",
        "hull_entries": "", "chgnet_energy_per_atom": np.nan, "e_hull": [0.0, 0.098, -0.01, 0.0004, 0.3],
        "e_hull_dft": [np.nan, np.nan, np.nan, 0.05, np.nan], "stable": [True, True, True, True, False],
        "eos_bulk_modulus_gpa": [235.0, 29.0, 5.6, 120.0, 300.0],
        "eos_in_target": [False, False, False, True, False],
        "novel_after_relaxation": pd.array([True, True, True, pd.NA, False], "boolean"),
        "matches_known": ["", "", "", pd.NA, "mp-1"], "oracle_error": "",
        "sevennet_error": [np.nan, np.nan, np.nan, "", ""], "sevennet_e_hull": [np.nan, np.nan, np.nan, 0.02, 0.4],
        "sevennet_e_hull_dft": np.nan, "sevennet_stable": pd.array([pd.NA, pd.NA, pd.NA, True, False], "boolean"),
        "sevennet_eos_bulk_modulus_gpa": [np.nan, np.nan, np.nan, 118.0, 290.0], "sevennet_matches_known":
        [np.nan, np.nan, np.nan, "", "mp-1"], "committee_confirmed": pd.array([pd.NA, pd.NA, pd.NA, False, False],
                                                                               "boolean"), **extra})
    assert isinstance(t.iloc[0]["eos_in_target"], np.bool_)  # what the old `is False` never matched
    return t


def expected_hull(e: float, hull: str) -> str:
    if e <= 1e-3:
        return f"stable ({e:+.3f} eV/atom: on or below {hull}, tolerance 0.001)"
    return f"metastable, +{e:.3f} eV/atom above {hull}" if e <= 0.1 else f"unstable, +{e:.3f} eV/atom above {hull}"


def test_crystal_verdicts_say_what_each_row_holds(tmp_path):
    table = crystal_rows()
    metrics = {"confirmed_by": "committee", "n_confirmed": 0, "n_checked_by_confirming_tier": 2}
    page = run_page(tmp_path, "crystals", table, metrics, {}, {"window": [80.0, 150.0]}, "bulk_modulus_gpa", "GPa")
    said = statuses(page)
    assert set(said) == set(table["formula"])
    # the false verdicts: K 235 and 29 GPa "in the target", +0.098 eV/atom "stable"
    assert "in the target and novel" not in said["PtRh"] and "metastable, +0.098 eV/atom" in said["ReN3"]
    for _, row in table.iterrows():
        s = said[row["formula"]]
        ran = {"CHGNet": ("e_hull_dft", "e_hull", "eos_bulk_modulus_gpa", "matches_known")}
        if isinstance(row["sevennet_error"], str):
            ran["SevenNet"] = ("sevennet_e_hull_dft", "sevennet_e_hull", "sevennet_eos_bulk_modulus_gpa",
                               "sevennet_matches_known")
            assert s.startswith("not confirmed: ")
        else:
            assert s.startswith("checked by CHGNet only: ")
        for who, (dft_hull, hull, k, match) in ran.items():
            part = s.split(f"{who}: ")[1].split(";")[0]
            on_dft = np.isfinite(row[dft_hull])
            e = row[dft_hull] if on_dft else row[hull]
            name = "the hull of the DFT entries" if on_dft else f"the {who} hull of the known phases"
            assert expected_hull(e, name) in part, (row["formula"], part)
            assert ("stable (" in part) == (e <= 1e-3) and ("metastable" in part) == (1e-3 < e <= 0.1)
            inside = 80 <= row[k] <= 150
            assert f"bulk modulus {row[k]:.1f} GPa, {'in' if inside else 'outside'} the target" in part, part
            m = row[match]  # these rows have no disorder-aware verdicts: never "novel" on a plain match alone
            assert ("novelty not checked" if pd.isna(m) else f"known phase {m}" if m else "matches no known phase"
                    ) in part and "novel" not in part.replace("novelty", ""), part


def test_crystal_confirmed_card_and_na_verdicts(tmp_path):
    table = crystal_rows(committee_confirmed=pd.array([pd.NA, pd.NA, pd.NA, True, False], "boolean"),
                         matches_known=["", "", "", "", "mp-1"], oracle_error=["", "EOS fit R2 0.5 < 0.95", "", "", ""])
    metrics = {"confirmed_by": "committee", "n_confirmed": 1, "n_checked_by_confirming_tier": 2}
    page = run_page(tmp_path, "crystals", table, metrics, {}, {"window": [80.0, 150.0]}, "bulk_modulus_gpa", "GPa")
    s = statuses(page)["AlNi"]
    assert s.startswith("confirmed: CHGNet: metastable, +0.050 eV/atom") and "SevenNet: metastable, +0.020" in s
    assert re.search(r"<b>1</b> confirmed hit of\s+2 checked", page)
    # a failure after the relaxation keeps the hull verdict; the table counts it as checked, not as error-free
    assert statuses(page)["ReN3"] == ("checked by CHGNet only: CHGNet: metastable, +0.098 eV/atom above the CHGNet "
                                      "hull of the known phases (within e_hull_max 0.1), failed (EOS fit R2 0.5 &lt; "
                                      "0.95)")
    assert "5 of 5 candidates checked by CHGNet (4 without an error)" in page


def novelty_rows() -> pd.DataFrame:
    """One row of each novelty verdict, the columns as the CHGNet oracle writes them: an alloy ordering of fcc (not
    a new material), one of a known phase's lattice counted as new (alloy_orderings: count), a cell known under
    substitutional disorder, a new material, a cell relaxed onto a known phase, and one without the verdicts."""
    t = crystal_rows()
    t = pd.concat([t, t.iloc[[2]].assign(formula="IrW", final_rank=6, rank=6)], ignore_index=True)
    t["matches_known"] = ["", "", "", "", "mp-1", ""]
    t["novel_after_relaxation"] = pd.array([True, True, True, True, False, True], "boolean")
    t["novel_disorder_aware"] = pd.array([True, True, False, True, pd.NA, pd.NA], "boolean")
    t["disorder_match"] = ["", "", "mp-42", "", "", ""]
    t["alloy_ordering"] = pd.array([True, True, False, False, pd.NA, pd.NA], "boolean")
    t["parent_lattice"] = ["fcc", "known:Re3N", "", "", "", ""]
    t["new_material"] = pd.array([False, True, False, True, False, pd.NA], "boolean")
    t["sevennet_matches_known"] = [np.nan, np.nan, np.nan, "", "mp-1", np.nan]
    return t


def test_crystal_novelty_sentence_says_what_the_novelty_columns_say(tmp_path):
    """Issue #34: an alloy ordering or a cell known under substitutional disorder is never called novel; "novel"
    only for a new material by the disorder-aware verdicts; a potential without them (SevenNet) says only that no
    known phase matched."""
    table = novelty_rows()
    page = run_page(tmp_path, "crystals", table, {"n_confirmed": 0}, {}, {"window": [80.0, 150.0]},
                    "bulk_modulus_gpa", "GPa")
    said = statuses(page)
    expected = {"PtRh": "an ordering of its elements on the fcc lattice (alloy ordering, not a new material)",
                "ReN3": "an ordering of its elements on the lattice of the known Re3N (alloy ordering, counted as a "
                        "new material (oracle.alloy_orderings: count))",
                "ReN": "known under substitutional disorder (matches mp-42)",
                "AlNi": "novel", "Os3W": "relaxed onto the known phase mp-1",
                "IrW": "matches no known phase (no disorder-aware novelty check)"}
    for _, row in table.iterrows():
        chgnet = said[row["formula"]].split("CHGNet: ")[1].split(";")[0]
        assert chgnet.endswith(", " + expected[row["formula"]]), chgnet
        new, ordering = (not pd.isna(row[c]) and bool(row[c]) for c in ("new_material", "alloy_ordering"))
        # the word "novel" stands alone only for a new material that is no ordering
        assert chgnet.endswith(", novel") == (new and not ordering), chgnet
        assert ("not a new material" in chgnet) == (ordering and not new)
        if isinstance(row["sevennet_error"], str):
            sevennet = said[row["formula"]].split("SevenNet: ")[1]
            m = row["sevennet_matches_known"]
            assert sevennet.endswith(f"relaxed onto the known phase {m}" if m else ", matches no known phase")
            assert "novel" not in sevennet.replace("novelty", ""), sevennet


def label_cells(card: str) -> list[str]:
    return re.findall(r"<th>(.*?)</th>", card)


def molecule_row(**extra) -> pd.DataFrame:
    """One checked molecule (or as many as the list-valued ``extra`` columns have), every tier's columns filled."""
    base = {"final_rank": 1, "rank": 1, "smiles": "CCO", "predicted_property": -7.1, "xtb_ok": True,
            "xtb_connectivity_ok": True, "xtb_verified": True, "xtb_calibrated": -7.35, "xtb_gap_ev": 12.45,
            "xtb_homo_ev": -10.9, "xtb_lumo_ev": 1.5, "xtb_dipole_debye": 1.61, "xtb_target_probability": 0.4,
            "dft_ok": True, "dft_gap_ev": 8.9, "dft_homo_ev": -7.2, "dft_lumo_ev": 1.7, "dft_dipole_debye": 1.74,
            "dft_error": "", "dft_target_probability": 0.3, "dft_confirmed": False, "oracle_error": "", "qed": 0.4,
            "sa_score": 1.0}
    n = max([len(v) for v in extra.values() if isinstance(v, list)] + [1])
    t = pd.DataFrame({**base, **extra}, index=range(n))
    t["dft_confirmed"] = t["dft_confirmed"].astype("boolean")
    return t


def test_homo_campaign_labels_name_the_homo_and_its_columns(tmp_path):
    page = run_page(tmp_path, "molecules", molecule_row(), {"n_confirmed": 0}, {"dft": {"top_k": 1}},
                    {"max": -7.5}, "homo_ev", "eV")
    card = cards(page)["CCO"]
    assert "HOMO energy, DFT (dft_homo_ev, eV)" in label_cells(card) and "-7.20 eV" in card
    assert "HOMO energy, xTB raw (xtb_homo_ev, eV)" in label_cells(card) and "-10.90 eV" in card
    assert "HOMO energy, xTB estimate (xtb_calibrated, eV)" in label_cells(card)
    assert "gap" not in card.lower() and "12.45" not in card
    assert statuses(page)["CCO"].startswith("not confirmed: DFT HOMO energy -7.20 eV")
    head = page[page.index('id="ranked"'):page.index("</thead>")]
    assert "dft_homo_ev (eV)" in head and "xtb_homo_ev (eV)" in head and "gap" not in head


def test_target_words_on_a_negative_window_and_a_min_with_a_max(tmp_path):
    """The HOMO campaign's window [-7, -6] eV read "in -7--6 eV" on every card and heading; a min with a max was
    described by its min alone."""
    from invdesign.targets import describe_target

    assert describe_target({"window": [-7.0, -6.0]}, "eV") == "in -7 to -6 eV"
    assert describe_target({"min": 2.0, "max": 5.0}, "D") == "in 2-5 D"
    assert describe_target({"window": [4.0, 5.0]}, "eV") == "in 4-5 eV"  # today's default target reads as before
    assert describe_target({"max": -6.5}, "eV") == "<= -6.5 eV" and describe_target({"min": 250}, "GPa") == ">= 250 GPa"
    page = run_page(tmp_path, "molecules", molecule_row(dft_homo_ev=-6.5), {"n_confirmed": 0}, {"dft": {"top_k": 1}},
                    {"window": [-7.0, -6.0]}, "homo_ev", "eV")
    assert "--" not in page.split("<style>")[0] + page[page.index("<body>"):page.index('id="ranked"')]
    assert "HOMO energy\n in -7 to -6 eV</h1>" in page
    assert statuses(page)["CCO"] == "not confirmed: DFT HOMO energy -6.50 eV, chance in -7 to -6 eV 0.30"


def test_dipole_campaign_labels_say_debye(tmp_path):
    page = run_page(tmp_path, "molecules", molecule_row(xtb_calibrated=1.70, predicted_property=1.9),
                    {"n_confirmed": 0}, {"dft": {"top_k": 1}}, {"min": 2.0}, "dipole_debye", "D")
    card = cards(page)["CCO"]
    assert {"dipole moment, DFT (dft_dipole_debye, D)", "dipole moment, xTB estimate (xtb_calibrated, D)",
            "dipole moment, xTB raw (xtb_dipole_debye, D)", "dipole moment, predicted (D)"} <= set(label_cells(card))
    assert "1.74 D" in card and "1.61 D" in card and "1.90 D" in card
    assert " eV" not in card and "gap" not in card.lower() and "HOMO energy" not in card
    head = page[page.index('id="ranked"'):page.index("</thead>")]
    assert "dft_dipole_debye (D)" in head and "xtb_dipole_debye (D)" in head and "eV" not in head


class NoShearOracle(ChgnetOracle):
    """The CHGNet oracle with tiers that declare no measure of the shear modulus."""
    tiers = tuple(dataclasses.replace(t, measures={p: m for p, m in t.measures.items() if p != "shear_modulus_gpa"})
                  for t in ChgnetOracle.tiers)


def test_shear_campaign_reads_its_columns_from_the_declarations(tmp_path, monkeypatch):
    """The shear columns the crystal oracle's tiers declare (CHGNet's and SevenNet's) show without landing edits;
    tiers without a measure of the shear modulus make the card say 'not measured'."""
    table = crystal_rows(elastic_shear_modulus_gpa=[60.0, 20.0, 3.0, 55.0, 140.0],
                         sevennet_elastic_shear_modulus_gpa=[np.nan, np.nan, np.nan, 52.0, 150.0])
    monkeypatch.setitem(oracles._REGISTERED, "chgnet", NoShearOracle)
    page = run_page(tmp_path, "crystals", table, {"n_confirmed": 0}, {}, {"min": 50.0}, "shear_modulus_gpa", "GPa")
    for card in cards(page).values():
        labels = " ".join(label_cells(card))
        assert "bulk" not in card.lower() and "K," not in card and "eos_" not in card
        assert "Voigt-Reuss-Hill shear modulus, CHGNet (GPa)" in labels and "not measured by CHGNet" in card
    monkeypatch.setitem(oracles._REGISTERED, "chgnet", ChgnetOracle)
    page = run_page(tmp_path, "crystals", table, {"n_confirmed": 0}, {}, {"min": 50.0}, "shear_modulus_gpa", "GPa")
    card = cards(page)["AlNi"]
    assert "Voigt-Reuss-Hill shear modulus, CHGNet (elastic_shear_modulus_gpa, GPa)" in label_cells(card)
    assert "Voigt-Reuss-Hill shear modulus, SevenNet (sevennet_elastic_shear_modulus_gpa, GPa)" in label_cells(card)
    assert "55.0 GPa" in card and "52.0 GPa" in card and "bulk" not in card.lower()
    assert "CHGNet: metastable, +0.050 eV/atom above the hull of the DFT entries (within e_hull_max 0.1), " \
           "Voigt-Reuss-Hill shear modulus 55.0 GPa, in the target" in statuses(page)["AlNi"]
    head = page[page.index('id="ranked"'):page.index("</thead>")]
    assert "elastic_shear_modulus_gpa (GPa)" in head and "eos_bulk_modulus_gpa" not in head


def test_calibrated_xtb_is_an_estimate_with_its_interval_and_flatness(tmp_path):
    resid = list(np.linspace(-0.6, 0.4, 21))
    prepared = {"knots_x": [1.0, 1.80, 2.14, 3.0], "knots_y": [3.0, 4.55, 4.55, 6.0], "residuals": resid,
                "xtb_quantity": "xtb_gap_ev", "x_min": 1.0, "x_max": 3.0}
    (tmp_path / "prepared.json").write_text(json.dumps(prepared))
    rows = molecule_row(smiles=["CCO", "CCN"], final_rank=[1, 2], rank=[1, 2], xtb_calibrated=[4.55, 5.3],
                        xtb_gap_ev=[2.0, 2.6], dft_ok=[None, None], dft_gap_ev=[np.nan, np.nan],
                        dft_error=[None, None], dft_confirmed=[pd.NA, pd.NA])
    page = run_page(tmp_path, "molecules", rows, {"n_confirmed": 0}, {"dft": {"top_k": 0}}, {"window": [4.0, 5.0]},
                    "gap_ev", "eV", prepared=str(tmp_path / "prepared.json"))
    lo, hi = np.quantile(resid, [0.1, 0.9])
    flat, sloped = cards(page)["CCO"], cards(page)["CCN"]
    assert f"estimate 4.55 eV (10-90%: {4.55 + lo:.2f} to {4.55 + hi:.2f} eV)" in flat
    assert "flat calibration: every raw xtb_gap_ev from 1.80 to 2.14 gives this estimate" in flat
    assert f"estimate 5.30 eV (10-90%: {5.3 + lo:.2f} to {5.3 + hi:.2f} eV)" in sloped and "flat" not in sloped
    assert statuses(page)["CCO"].startswith("checked by xTB only: HOMO-LUMO gap estimate 4.55 eV (10-90%")
    head = page[page.index('id="ranked"'):page.index("</thead>")]
    assert "xtb_calibrated (estimate, eV)" in head and "xtb_calibrated 10-90% (eV)" in head
    assert f"<td>{4.55 + lo:.2f} to {4.55 + hi:.2f}</td>" in page


def test_funnel_in_pipeline_order_and_the_table_counts_what_was_checked(tmp_path):
    rows = molecule_row(smiles=["CCO", "CCN", "CCC", "CCCl", "CCF"], final_rank=[1, 2, 3, 4, 5],
                        rank=[1, 2, 3, 4, 5], xtb_ok=[True, True, False, None, None],
                        xtb_verified=[True, True, False, False, False], oracle_error=["", "", "boom", None, None],
                        dft_ok=[True, None, None, None, None], dft_error=["", None, None, None, None],
                        dft_confirmed=[True, pd.NA, pd.NA, pd.NA, pd.NA],
                        xtb_calibrated=[4.5, 4.4, np.nan, np.nan, np.nan], dft_gap_ev=[4.4] + [np.nan] * 4)
    page = run_page(tmp_path, "molecules", rows, {"n_confirmed": 1, "n_checked_by_confirming_tier": 1},
                    {"dft": {"top_k": 1}}, {"window": [4.0, 5.0]}, "gap_ev", "eV",
                    funnel={"in_target": 12, "novel": 70, "passes": 40, "sampled": 100, "unique": 80, "valid": 90})
    assert ("Funnel, in pipeline order: sampled: 100, valid: 90, unique: 80, novel: 70, passes the filters: 40, "
            "in target (predicted): 12, "
            "checked by xTB: 3, checked by DFT: 1, confirmed: 1.") in page
    body = page[page.index("<tbody>"):page.index("</tbody>")]
    assert body.count("<tr>") == 3 and "CCCl" not in body  # the rows xTB ran on, a failure included
    assert "3 of 5 candidates checked by xTB (2 without an error)" in page
    assert '<div class="scroll"><table id="ranked"' in page and "overflow-x:auto" in page


def test_report_figures_draw_the_funnel_in_pipeline_order_and_name_the_property(tmp_path, monkeypatch):
    from invdesign.pipeline import report

    drawn = {}
    monkeypatch.setattr(report, "funnel", lambda stages, title, png: drawn.update(stages=list(stages)))
    monkeypatch.setattr(report, "property_histogram", lambda *a: drawn.update(label=a[4]))
    pd.DataFrame({"property": [-7.0, -6.5], "split": "train"}).to_parquet(tmp_path / "data.parquet")
    rows = molecule_row(smiles=["CCO", "CCN"], final_rank=[1, 2], rank=[1, 2])
    rows.assign(passes=True).to_parquet(tmp_path / "cands.parquet")
    rows.to_parquet(tmp_path / "verified.parquet")
    (tmp_path / "metrics.json").write_text(json.dumps({"campaign": "c", "funnel": {
        "in_target": 2, "novel": 5, "passes": 4, "sampled": 9, "unique": 6, "valid": 8}}, sort_keys=True))
    report.report_figures(domain="molecules", oracle={"dft": {"top_k": 1}}, target={"max": -6.0},
                          property_column="homo_ev", property_kind=None, unit="eV",
                          dataset=str(tmp_path / "data.parquet"), candidates=str(tmp_path / "cands.parquet"),
                          metrics=str(tmp_path / "metrics.json"), verified=str(tmp_path / "verified.parquet"),
                          hist=str(tmp_path / "h.png"), funnel_png=str(tmp_path / "f.png"),
                          top=str(tmp_path / "top.html"))
    assert drawn["stages"] == ["sampled", "valid", "unique", "novel", "passes the filters", "in target (predicted)",
                               "checked by xTB",
                               "checked by DFT", "confirmed"]
    assert drawn["label"] == "HOMO energy (eV)"
    head = (tmp_path / "top.html").read_text().split("</thead>")[0]  # the report's table of top candidates
    assert all(f"<th>{c}</th>" in head for c in ("xtb_calibrated", "xtb_homo_ev", "dft_homo_ev"))
    assert "gap" not in head


def test_the_page_sets_the_proposal_methods_side_by_side():
    """Issue #35: each method's proposals, oracle checks and confirmed rate on the landing page, arms included."""
    from invdesign.pipeline.landing import methods_table

    funnel = {"vae": {"n_samples": 1500, "n_candidates": 400, "n_candidates_in_target": 120},
              "graph_ga": {"n_samples": 800, "n_candidates": 300, "n_candidates_in_target": 250}}
    verdicts = {"vae": {"n_checked_by_first_tier": 20, "n_checked_by_confirming_tier": 4, "n_confirmed": 3,
                        "confirmed_per_check": 0.75},
                "graph_ga": {"n_checked_by_first_tier": 30, "n_checked_by_confirming_tier": 0, "n_confirmed": 0,
                             "confirmed_per_check": None}}
    page = methods_table(funnel, verdicts)
    rows = re.findall(r"<tr>(.*?)</tr>", page)[1:]
    cells = [re.findall(r"<td>(.*?)</td>", r) for r in rows]
    assert cells == [["graph_ga", "800", "300", "250", "30", "0", "0", "-"],
                     ["vae", "1500", "400", "120", "20", "4", "3", "75%"]]
    assert methods_table({}, {}) == ""
