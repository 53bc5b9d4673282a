"""End-to-end: tiny campaigns on properties beyond the default ones (config/tests/tiny_properties.yaml), each judged
by the oracle tier that measures it, in its own unit."""

import json

import numpy as np
import pandas as pd
import pytest

from invdesign.oracles import measured_by
from invdesign import properties as props

from .conftest import run_campaigns


@pytest.fixture(scope="module")
def properties_run(repo, mirror, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_properties")
    run_campaigns(repo, mirror, "config/tests/tiny_properties.yaml", out, timeout=1500)
    return out


@pytest.mark.parametrize("camp, prop", [("tiny_dipole", "dipole_debye"), ("tiny_polar", "polarizability_bohr3")])
def test_molecule_campaign_is_judged_by_the_tiers_that_measure_its_property(properties_run, camp, prop):
    out = properties_run
    data = pd.read_parquet(out / camp / "data" / "dataset.parquet")
    assert np.allclose(data["property"], data[prop])  # the label is the registered property, in its unit
    table = pd.read_parquet(out / camp / "candidates_verified.parquet")
    from invdesign.oracles.xtb import XtbOracle

    xtb, dft = f"xtb_{prop}", XtbOracle.tiers[1].measures[prop].column
    checked = table[table["xtb_verified"].eq(True)]
    assert len(checked) and pd.to_numeric(checked[xtb]).ge(0).all()  # a norm, a polarizability: never negative
    prepared = json.loads((out / camp / "oracle" / "prepared.json").read_text())
    assert prepared["applicable"] and prepared["xtb_quantity"] == xtb
    # the DFT tier is set up for the campaign's own measure (whether a 2-epoch generator's molecules reach it is
    # chance; tests/test_dft.py runs the DFT measure of both properties on a known molecule)
    metrics = json.loads((out / camp / "oracle" / "metrics.json").read_text())
    assert metrics["confirmed_by"].startswith("DFT b3lyp") and metrics["dft_error_model"]
    assert table["confirmed"].sum() == metrics["n_confirmed"] and table["confirmed_by"].eq(metrics["confirmed_by"]).all()
    assert dft in table  # the declared DFT column of the campaign's property is in the table, filled where DFT ran
    assert camp in pd.read_csv(out / "summary.csv")["campaign"].tolist()


@pytest.mark.parametrize("camp, prop, column", [("tiny_shear", "shear_modulus_gpa", "elastic_shear_modulus_gpa"),
                                                ("tiny_hard", "vickers_hardness_gpa", "vickers_hardness_gpa")])
def test_crystal_campaign_is_judged_by_the_elastic_tensor(properties_run, camp, prop, column):
    """A shear or hardness campaign on MP: the label is the registered property (the hardness derived from MP's K and
    G by Chen's model), and the oracle's table holds the elastic measure, not the EOS bulk modulus; the chain on a
    known cell is tested in tests/test_crystal_oracle.py (a barely trained generator's cells may not pass)."""
    from invdesign.properties import chen_vickers_hardness

    out = properties_run
    data = pd.read_parquet(out / camp / "data" / "dataset.parquet")
    assert np.allclose(data["property"], data[prop])
    hard = [chen_vickers_hardness(k, g) for k, g in zip(data["bulk_modulus_gpa"], data["shear_modulus_gpa"])]
    assert np.allclose(data["vickers_hardness_gpa"], hard, equal_nan=True)
    assert measured_by(prop)["chgnet"] == column
    table = pd.read_parquet(out / camp / "candidates_verified.parquet")
    assert column in table and "eos_bulk_modulus_gpa" in table  # declared columns, filled where a cell was checked
    ran = table["oracle_error"].eq("")
    assert pd.to_numeric(table.loc[ran, "eos_bulk_modulus_gpa"], errors="coerce").isna().all()  # no EOS: not needed
    metrics = json.loads((out / camp / "oracle" / "metrics.json").read_text())
    assert table["confirmed"].sum() == metrics["n_confirmed"]
