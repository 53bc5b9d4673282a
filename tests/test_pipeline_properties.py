"""End-to-end: tiny campaigns on properties beyond the default ones (config/tests/tiny_properties.yaml), each judged
by the oracle tier that measures it, in its own unit."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from invdesign import properties as props


@pytest.fixture(scope="module")
def properties_run(repo, mirror, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_properties")
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "config/tests/tiny_properties.yaml",
           "--config", f"results={out}", f"data={{mirror: {mirror}, cache: data/cache}}"]
    res = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=1500)
    assert res.returncode == 0, res.stderr[-4000:]
    return out


@pytest.mark.parametrize("camp, prop", [("tiny_dipole", "dipole_debye"), ("tiny_polar", "polarizability_bohr3")])
def test_molecule_campaign_is_judged_by_the_tiers_that_measure_its_property(properties_run, camp, prop):
    out = properties_run
    data = pd.read_parquet(out / camp / "data" / "dataset.parquet")
    assert np.allclose(data["property"], data[prop])  # the label is the registered property, in its unit
    table = pd.read_parquet(out / camp / "candidates_verified.parquet")
    xtb, dft = f"xtb_{prop}", props.DFT_QUANTITY[prop]
    checked = table[table["xtb_verified"].eq(True)]
    assert len(checked) and pd.to_numeric(checked[xtb]).gt(0).all()  # a norm / a polarizability: positive
    prepared = json.loads((out / camp / "oracle" / "prepared.json").read_text())
    assert prepared["applicable"] and prepared["xtb_quantity"] == xtb
    ran = table[table["dft_ok"].eq(True)]
    assert len(ran) == 1 and pd.to_numeric(ran[dft]).gt(0).all()
    assert ran["dft_in_target"].notna().all() and ran["dft_confirmed"].notna().all()
    metrics = json.loads((out / camp / "oracle" / "metrics.json").read_text())
    assert metrics["confirmed_by"].startswith("DFT b3lyp") and metrics["n_dft_run"] == 1
    assert metrics["dft_error_model"]  # where the verdict's error bar comes from, or that it is a point value
    assert camp in pd.read_csv(out / "summary.csv")["campaign"].tolist()
