"""Bad input, one case per class: each gets a one-line error that names the key or file and the fix, and leaves
nothing half-written. The data-row classes are in test_data_checks.py, damaged intermediates and a deleted model in
test_pipeline_tiny.py, a GPU asked for and absent in test_workflow.py; docs/reliability.md lists them all."""

import copy
import os
import stat

import pandas as pd
import pytest
import yaml

from invdesign.config import load_config, validate_config
from invdesign.errors import InvdesignError


@pytest.fixture()
def base(repo):
    return yaml.safe_load((repo / "config" / "config.yaml").read_text())


def mol(c):
    return c["campaigns"]["qm9_gap"]


def cry(c):
    return c["campaigns"]["mp_bulk"]


def diffusion(c):
    """A molecule diffusion generator added to the default molecule campaign (which runs without one)."""
    mol(c)["generators"].append({"type": "diffusion", "hidden": 64, "sample_steps": 50})
    return mol(c)["generators"][-1]


CONFIG_CASES = {  # class: (mutation, what the error names)
    "NaN in a target": (lambda c: mol(c).update(target={"window": [float("nan"), 6.0]}), "target.window.0"),
    "infinite threshold": (lambda c: cry(c).update(target={"min": float("inf")}), "target.min"),
    "target as text": (lambda c: cry(c).update(target={"min": "high"}), "target.min"),
    "window of three numbers": (lambda c: mol(c).update(target={"window": [1, 2, 3]}), "target.window"),
    "inverted window": (lambda c: mol(c).update(target={"window": [5, 4]}), "must be below"),
    "empty results folder": (lambda c: c.update(results=""), "results"),
    "results at the filesystem root": (lambda c: c.update(results="/"), "filesystem root"),
    "a known library that does not exist": (lambda c: mol(c).update(filters={"known_library": ["nope.smi"]}),
                                            "known_library.0: nope.smi not found"),
    "more decoded points than search steps": (lambda c: mol(c)["search"].update(steps=2, checkpoints=5),
                                              "checkpoints = 5 is more than steps = 2"),
    "results under a file": (lambda c: c.update(results="/etc/passwd/x"), "is a file, not a folder"),
    "results under /proc": (lambda c: c.update(results="/proc/invdesign"), "is not writable"),
    "splits leaving no training rows": (lambda c: mol(c).update(split={"val": 0.5, "test": 0.5}), "split"),
    "negative batch size": (lambda c: cry(c)["generator"].update(batch_size=-1), "batch_size"),
    "zero epochs": (lambda c: mol(c)["predictor"].update(epochs=0), "predictor.epochs"),
    "heads not dividing hidden": (lambda c: diffusion(c).update(heads=5), "heads = 5 does not divide"),
    "more sampling than noise steps": (lambda c: diffusion(c).update(sample_steps=900), "sample_steps"),
    "a key of another generator": (lambda c: mol(c)["generators"][0].update(langevin_steps=5), "ebm"),
    "a key of the other domain": (lambda c: mol(c).update(filters={"exclude_elements": ["Tc"]}), "crystals"),
    "an unknown oracle": (lambda c: mol(c).update(oracle={"type": "dft"}), "oracle.type"),
    "a typo in a key": (lambda c: cry(c)["generator"].update(epochz=3), "epochz"),
    "a boolean as a word": (lambda c: mol(c).update(filters={"structural_alerts": "maybe"}), "structural_alerts"),
    "a list where a number goes": (lambda c: c["runtime"].update(threads=[2]), "runtime.threads"),
    "a campaign name with a space": (lambda c: c["campaigns"].update({"my campaign": mol(c)}), "campaign name"),
    "a source of the other domain": (lambda c: cry(c)["dataset"].update(source="qm9"), "dataset.source"),
    "a user table without its path": (lambda c: mol(c).update(dataset={"source": "csv", "property_column": "y"}),
                                      "dataset.path is required"),
    "an unknown property kind": (lambda c: mol(c).update(dataset={"source": "csv", "path": "x.csv",
                                                                  "property_column": "y", "property_kind": "mass"}),
                                 "property_kind"),
    "a crystal property kind on molecules": (lambda c: mol(c).update(
        dataset={"source": "csv", "path": "x.csv", "property_column": "y", "property_kind": "bulk_modulus_gpa"},
        target={"min": 1.0}), "crystals property"),
    "a wrong unit": (lambda c: cry(c)["target"].update(unit="eV"), "is in GPa"),
    "no campaigns": (lambda c: c.update(campaigns={}), "campaigns"),
}


def config_error(base, mutate) -> str:
    """The error of validating ``base`` changed by ``mutate``, checked to be one line starting with the file."""
    bad = copy.deepcopy(base)
    mutate(bad)
    with pytest.raises(InvdesignError) as err:
        validate_config(bad, source="c.yaml")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("c.yaml: "), msg
    return msg


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_a_bad_config_value_gets_one_line_naming_the_key(base, case):
    mutate, names = CONFIG_CASES[case]
    assert names in config_error(base, mutate)


@pytest.mark.parametrize("text, names", [("campaigns: [\n", "line 2"), ("campaigns:\n\t- x\n", "line 2"),
                                         ("[1, 2]\n", "not a mapping"), ("", "'campaigns' is a required")])
def test_a_broken_config_file_gets_the_file_and_the_line(tmp_path, text, names):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(InvdesignError) as err:
        load_config(p)
    assert str(p) in str(err.value) and names in str(err.value), str(err.value)


CSV_CASES = {  # class: (table written as text, what the error names)
    "empty file": ("", "cannot be read as CSV"),
    "header only": ("smiles,y\n", "no numeric values"),
    "missing property column": ("smiles,z\nCCO,1\n", "no column 'y'"),
    "property column of words": ("smiles,y\nCCO,high\nCCC,low\n", "no numeric values"),
    "too few usable rows": ("smiles,y\nCCO,1\nCCC,2\n", "only 2 usable rows"),
    "not a table": ("\x00\x01\x02binary", "not a text table"),
}


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_a_bad_user_table_gets_one_line_naming_the_file(tmp_path, case):
    from invdesign.pipeline.data import prepare_dataset

    text, names = CSV_CASES[case]
    csv = tmp_path / "mine.csv"
    csv.write_text(text)
    out = tmp_path / "dataset.parquet"
    with pytest.raises(InvdesignError) as err:
        prepare_dataset(campaign="t", domain="molecules", split={}, data={}, out=str(out),
                        dataset={"source": "csv", "path": str(csv), "property_column": "y"})
    assert "\n" not in str(err.value) and names in str(err.value), str(err.value)
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))  # nothing half-written


def test_outputs_get_the_users_umask_not_0600(tmp_path):
    """Group members on a shared filesystem can read a campaign's results (atomic writes used mkstemp's 0600)."""
    from invdesign.io import replaced_folder, write_json, write_table

    old = os.umask(0o022)
    try:
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
        write_json({"a": 1}, tmp_path / "m.json")
        with replaced_folder(tmp_path / "folder") as tmp:
            (tmp / "x.smi").write_text("C\n")
    finally:
        os.umask(old)
    for path in (tmp_path / "t.csv", tmp_path / "m.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o755
