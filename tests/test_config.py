import copy

import pytest
import yaml

from invdesign.config import load_config, target_bounds, validate_config
from invdesign.errors import InvdesignError


@pytest.fixture()
def base(repo):
    return yaml.safe_load((repo / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("name", ["config.yaml", "molecules_gap.yaml", "materials_bulk_modulus.yaml",
                                  "tests/tiny.yaml"])
def test_shipped_configs_validate(repo, name):
    cfg = load_config(repo / "config" / name)
    for camp in cfg["campaigns"].values():
        assert "generator" not in camp  # normalised to a list
        types = [g["type"] for g in camp["generators"]]
        assert types[0] == "vae" and len(set(types)) == len(types) and set(types) <= {"vae", "diffusion", "ebm"}
        assert {"val", "test", "seed"} <= set(camp["split"])
        assert camp["dataset"]["property_column"]


def test_defaults_filled(base):
    cfg = validate_config(base)
    assert cfg["runtime"]["device"] == "auto"
    assert cfg["campaigns"]["qm9_gap"]["search"]["method"] == "gradient"
    assert cfg["campaigns"]["qm9_gap"]["filters"]["min_heavy_atoms"] == 3
    assert cfg["campaigns"]["mp_bulk"]["dataset"]["property_column"] == "bulk_modulus_gpa"
    # the caller's dict is not modified
    assert "search" in base["campaigns"]["qm9_gap"] and "filters" not in base["campaigns"]["qm9_gap"]


def test_unknown_key_is_one_line_naming_the_key(base):
    bad = copy.deepcopy(base)
    bad["campaigns"]["mp_bulk"]["generator"]["epochz"] = 3
    with pytest.raises(InvdesignError) as exc:
        validate_config(bad, source="my.yaml")
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith("my.yaml: unknown key 'campaigns.mp_bulk.generator.epochz'")
    assert "epochs" in msg  # lists what is allowed


def test_generator_lists(base):
    cfg = validate_config(base)
    gens = cfg["campaigns"]["qm9_gap"]["generators"]
    assert [g["type"] for g in gens] == ["vae", "diffusion", "ebm"]
    assert gens[1]["diffusion_steps"] == 500 and gens[2]["langevin_steps"] == 60  # defaults inside list items
    assert cfg["campaigns"]["mp_bulk"]["generators"][0]["type"] == "vae"  # single generator: -> one-item list


@pytest.mark.parametrize("mutate, match", [
    (lambda c: c["campaigns"]["qm9_gap"]["generators"].append({"type": "ebm"}), "lists type 'ebm' twice"),
    (lambda c: c["campaigns"]["mp_bulk"]["generator"].update(type="gan"), "campaigns.mp_bulk.generator"),
    (lambda c: c["campaigns"]["qm9_gap"].update(generator={"type": "vae"}), "both generator: and generators:"),
    (lambda c: c["campaigns"]["qm9_gap"]["generators"][1].update(type="gan"), "campaigns.qm9_gap.generators.1.type"),
])
def test_bad_generator_lists(base, mutate, match):
    bad = copy.deepcopy(base)
    mutate(bad)
    with pytest.raises(InvdesignError, match=match):
        validate_config(bad)


def test_unknown_top_level_key(base):
    bad = copy.deepcopy(base)
    bad["campaign"] = {}
    with pytest.raises(InvdesignError, match="unknown key 'campaign'"):
        validate_config(bad)


@pytest.mark.parametrize("mutate, match", [
    (lambda c: c["campaigns"]["mp_bulk"]["dataset"].update(source="qm9"), "does not fit domain 'crystals'"),
    (lambda c: c["campaigns"]["qm9_gap"].update(target={"window": [5, 4]}), "must be below"),
    (lambda c: c["campaigns"]["qm9_gap"].update(target={"unit": "eV"}), "needs a window"),
    (lambda c: c["campaigns"]["qm9_gap"].update(target={"window": [4, 5], "min": 3}), "not both"),
    (lambda c: c["campaigns"]["qm9_gap"]["target"].update(unit="GPa"), "is in eV"),
    (lambda c: c["campaigns"]["qm9_gap"]["dataset"].update(property_column="bulk_modulus_gpa"), "not provided by qm9"),
    (lambda c: c["campaigns"]["qm9_gap"]["dataset"].update(source="csv"), "dataset.path is required"),
    (lambda c: c["campaigns"]["qm9_gap"].update(domain="proteins"), "is not allowed"),
    (lambda c: c["runtime"].update(device="gpu"), "runtime.device"),
    (lambda c: c["campaigns"]["qm9_gap"].setdefault("oracle", {}).update(feedback_from=["old.parquet"]),
     "crystal campaigns only"),
    (lambda c: c["campaigns"]["mp_bulk"].setdefault("oracle", {}).update(
        feedback_from=["results/mp_bulk/candidates_verified.parquet"]), "own output, a cycle"),
])
def test_semantic_errors(base, mutate, match):
    bad = copy.deepcopy(base)
    mutate(bad)
    with pytest.raises(InvdesignError, match=match):
        validate_config(bad)


def test_bad_yaml_and_missing_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("campaigns: [\n")
    with pytest.raises(InvdesignError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(InvdesignError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_target_bounds():
    assert target_bounds({"window": [1, 2]}) == (1.0, 2.0)
    assert target_bounds({"min": 3}) == (3.0, float("inf"))
    assert target_bounds({"max": 3}) == (float("-inf"), 3.0)


def test_strings_from_snakemake_config_flag_become_numbers(base):
    """``--config 'runtime={"gpus": 4}'`` reaches the workflow as strings (YAML BaseLoader)."""
    cfg = copy.deepcopy(base)
    cfg["runtime"] = {"gpus": "4", "nodes": "2", "device": "cpu"}
    name = next(iter(cfg["campaigns"]))
    cfg["campaigns"][name]["target"] = {"min": "1.5e1"}
    out = validate_config(cfg)
    assert out["runtime"]["gpus"] == 4 and out["runtime"]["nodes"] == 2 and out["runtime"]["device"] == "cpu"
    assert out["campaigns"][name]["target"]["min"] == 15.0
    cfg["runtime"] = {"gpus": "four"}
    with pytest.raises(InvdesignError, match="runtime.gpus: 'four' is not of type 'integer'"):
        validate_config(cfg)
