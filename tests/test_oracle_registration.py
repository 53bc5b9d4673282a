"""Adding an oracle is one module and one settings class: a toy oracle defined here, and nowhere else, is in the
config schema's ``oracle.type``, validates, runs through every oracle rule into the verified table and shows its
measure and its card fields on the landing page; the property registry finds its measure."""

import json
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pytest

from invdesign.oracles import measured_by
from invdesign import oracles
from invdesign.config import config_schema, validate_config
from invdesign.config.oracles import ORACLE_SETTINGS, OracleSettings
from invdesign.config.spec import setting
from invdesign.oracles import ERROR_COLUMN, CardField, Measure, Oracle, Tier
from invdesign.pipeline.verify import run_oracle_chain
from invdesign.properties import PROPERTIES
from tests.test_landing import run_page


@pytest.fixture
def toy(monkeypatch):
    """A molecule oracle whose only tier measures the dipole as ``scale`` x the heavy-atom count, registered for
    this test alone."""
    monkeypatch.setattr(oracles, "_REGISTERED", dict(oracles.registered()))

    @dataclass(frozen=True, kw_only=True)
    class ToyOracleSettings(OracleSettings):
        __doc_line__ = "molecules: a toy oracle (the dipole as a multiple of the heavy-atom count)"
        type: Literal["toy"] = setting("toy")
        scale: float = setting(0.5, gt=0, doc="Debye per heavy atom")

    class ToyOracle(Oracle):
        settings_class = ToyOracleSettings
        domain = "molecules"
        tiers = (Tier("Toy", {"dipole_debye": Measure("toy_dipole_debye", "D")},
                      card=(CardField("heavy atoms (toy)", "toy_atoms", digits=0),)),)
        columns = {"toy_atoms": "heavy atoms", "toy_dipole_debye": "scale x heavy atoms (D)",
                   ERROR_COLUMN: "why the toy could not check the molecule"}

        def evaluate(self, batch, known, prepared):
            out = batch.reset_index(drop=True).copy()
            out["toy_atoms"] = out["smiles"].str.count("[A-Z]").astype(float)
            out["toy_dipole_debye"] = self.settings.scale * out["toy_atoms"]
            out[ERROR_COLUMN] = ""
            return out

        def finalize(self, checked, candidates, known, prepared):
            out = checked.sort_values("rank").reset_index(drop=True)
            out["toy_in_target"] = self.in_target(out[self.measures].to_numpy(float))
            out.insert(0, "final_rank", np.arange(1, len(out) + 1))
            hits = int(out["toy_in_target"].sum())
            return out, {"confirmed_by": "toy", "n_confirmed": hits, "n_checked_by_confirming_tier": len(out)}

        def confirmed(self, verified):
            return verified["toy_in_target"].eq(True)

    return ToyOracle


def test_a_toy_oracle_is_in_the_schema_and_the_registry(toy, repo):
    assert ORACLE_SETTINGS["molecules"]["toy"] is toy.settings_class and toy.name == "toy"
    assert next(iter(ORACLE_SETTINGS["molecules"])) == "xtb"  # the domain's default stays first
    schema = config_schema()
    assert "toy_oracle" in schema["$defs"] and "scale" in schema["$defs"]["toy_oracle"]["properties"]
    assert "toy" in json.dumps(schema)
    assert measured_by("dipole_debye") == {"xtb": "xtb_calibrated", "toy": "toy_dipole_debye"}
    assert oracles.check_declarations() == []
    import yaml

    cfg = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    name = next(n for n, c in cfg["campaigns"].items() if c["domain"] == "molecules")
    cfg["campaigns"][name]["oracle"] = {"type": "toy", "scale": 2.0}
    assert validate_config(cfg)["campaigns"][name]["oracle"] == {"type": "toy", "scale": 2.0, "top_k": 50,
                                                                 "batch_size": 25}
    cfg["campaigns"][name]["oracle"] = {"type": "toy", "scale": -1.0}
    with pytest.raises(Exception, match="scale"):
        validate_config(cfg)


def test_a_toy_oracles_columns_reach_the_verified_table_and_its_card(toy, tmp_path):
    cands = pd.DataFrame({"rank": [1, 2, 3], "smiles": ["CCO", "CCCCO", "C"], "predicted_property": [1.4, 2.6, 0.5],
                          "passes": [True, True, True], "generator": "vae"})
    cands.to_parquet(tmp_path / "c.parquet")
    pd.DataFrame({"id": ["a"], "smiles": ["CC"]}).to_parquet(tmp_path / "k.parquet")
    (tmp_path / "p.json").write_text("{}")
    params = {"domain": "molecules", "oracle": {"type": "toy"}, "target": {"window": [1.0, 2.0]},
              "property_column": "dipole_debye", "property_kind": None}
    m = run_oracle_chain(campaign="t", **params, candidates=str(tmp_path / "c.parquet"),
                         known=str(tmp_path / "k.parquet"), prepared=str(tmp_path / "p.json"),
                         folder=str(tmp_path / "o"))
    table = pd.read_parquet(tmp_path / "o" / "candidates_verified.parquet")
    assert {"toy_atoms", "toy_dipole_debye", "toy_in_target", "confirmed", "confirmed_by"} <= set(table)
    assert table["toy_dipole_debye"].tolist() == [1.5, 2.5, 0.5] and table["confirmed"].tolist() == [True, False,
                                                                                                    False]
    assert m["n_confirmed"] == 1 and m["confirmed_by"] == "toy"
    page = run_page(tmp_path, "molecules", table, m, {"type": "toy"}, {"window": [1.0, 2.0]}, "dipole_debye", "D")
    assert "<th>dipole moment, Toy (toy_dipole_debye, D)</th><td>1.50 D</td>" in page
    assert "confirmed: Toy dipole moment 1.50 D</p>" in page
    assert "<th>heavy atoms (toy)</th><td>3</td>" in page
    assert "checked by Toy: 3" in page and "confirmed: 1" in page
    head = page[page.index('id="ranked"'):page.index("</thead>")]
    assert "toy_dipole_debye (D)" in head and "toy_atoms" in head and "xtb" not in page
