import copy

import pytest
import yaml

from invdesign.config import campaign_settings, load_config, target_bounds, validate_config
from invdesign.errors import InvdesignError


@pytest.fixture()
def base(repo):
    return yaml.safe_load((repo / "config" / "config.yaml").read_text())


#: the molecule diffusion generator as config/molecules_gap.yaml writes it (the default campaign runs without one)
DIFFUSION = {"type": "diffusion", "hidden": 64, "edge_hidden": 32, "global_hidden": 32, "layers": 4, "epochs": 40,
             "batch_size": 256, "lr": 0.002, "max_minutes": 3, "n_samples": 1000, "sample_steps": 50}


def gen(c, kind):
    """The default molecule campaign's generator entry of type ``kind`` (a diffusion entry is added for it)."""
    gens = c["campaigns"]["qm9_gap"]["generators"]
    if kind == "diffusion" and not any(g.get("type") == kind for g in gens):
        gens.append(copy.deepcopy(DIFFUSION))
    return next(g for g in gens if g.get("type", "vae") == kind)


@pytest.mark.parametrize("name", ["config.yaml", "molecules_gap.yaml", "materials_bulk_modulus.yaml",
                                  "tests/tiny.yaml"])
def test_shipped_configs_validate(repo, name):
    cfg = load_config(repo / "config" / name)
    for camp in cfg["campaigns"].values():
        assert "generator" not in camp  # normalised to a list
        types = [g["type"] for g in camp["generators"]]
        assert types[0] == "vae" and len(set(types)) == len(types)
        assert set(types) <= {"vae", "diffusion", "ebm", "graph_ga", "edit_library", "substitution"}
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
    assert [g["type"] for g in gens] == ["vae", "ebm", "graph_ga", "edit_library"]
    assert gens[1]["langevin_steps"] == 60  # defaults inside list items
    assert gens[2]["mutation_rate"] == 0.5 and "epochs" not in gens[2]  # a classical arm: no train part
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
    (lambda c: gen(c, "graph_ga").update(
        seeds_from=["results/qm9_gap/candidates_verified.parquet"]), "generator graph_ga: seeds_from: .*own output"),
    (lambda c: c["campaigns"]["qm9_gap"]["generators"][0].update(seeds_from=["old.parquet"]),
     "'campaigns.qm9_gap.generators.0.seeds_from'; it is a setting of the molecules edit_library / molecules "
     "graph_ga generator"),
])
def test_semantic_errors(base, mutate, match):
    bad = copy.deepcopy(base)
    mutate(bad)
    with pytest.raises(InvdesignError, match=match):
        validate_config(bad)


def test_feedback_ranks_by_the_oracles_declared_measure_of_the_property(base, monkeypatch):
    """oracle.feedback_from models the oracle's measure of the campaign property, the column its declarations name:
    a shear-modulus campaign reads the elastic shear modulus of earlier verdicts; where no tier measures the property
    the ranker would judge it by another one, and the config says so."""
    import dataclasses

    from invdesign import oracles
    from invdesign.oracles.crystal import ChgnetOracle

    cfg = copy.deepcopy(base)
    camp = cfg["campaigns"]["mp_bulk"]
    camp["dataset"].update(property_column="shear_modulus_gpa")
    camp.update(target={"min": 100, "unit": "GPa"})
    camp.setdefault("oracle", {}).update(feedback_from=["old.parquet"])
    assert campaign_settings(copy.deepcopy(cfg), "mp_bulk").feedback_measure == "elastic_shear_modulus_gpa"

    class NoShear(ChgnetOracle):
        tiers = tuple(dataclasses.replace(t, measures={p: m for p, m in t.measures.items() if p != "shear_modulus_gpa"})
                      for t in ChgnetOracle.tiers)

    monkeypatch.setitem(oracles._REGISTERED, "chgnet", NoShear)
    with pytest.raises(InvdesignError, match="does not measure shear_modulus_gpa"):
        validate_config(cfg)


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


# ------------------------------------------------------------------------ typed settings and the generated schema
def test_schema_file_is_generated_from_the_settings_classes(repo):
    """workflow/schemas/config.schema.yaml is what the classes generate (regenerate with the command in its header)."""
    from invdesign.config.schema import render

    assert (repo / "workflow" / "schemas" / "config.schema.yaml").read_text() == render()


@pytest.mark.parametrize("name", ["config.yaml", "molecules_gap.yaml", "materials_bulk_modulus.yaml",
                                  "tests/tiny.yaml"])
def test_generated_schema_accepts_the_shipped_configs_as_written_and_filled(repo, name):
    import jsonschema

    from invdesign.config import config_schema

    validator = jsonschema.Draft202012Validator(config_schema())
    raw = yaml.safe_load((repo / "config" / name).read_text())
    assert not list(validator.iter_errors(raw))
    assert not list(validator.iter_errors(load_config(repo / "config" / name)))


BAD = [  # (mutation, what the one-line error names)
    (lambda c: gen(c, "ebm").update(sample_steps=3), "setting of the molecules diffusion"),
    (lambda c: c["campaigns"]["mp_bulk"]["generator"].update(word_dropout=0.2), "setting of the molecules vae"),
    (lambda c: gen(c, "diffusion").update(heads=3), "heads = 3 does not divide hidden = 64"),
    (lambda c: gen(c, "diffusion").update(diffusion_steps=20), "sample_steps = 50 is more"),
    (lambda c: c["campaigns"]["qm9_gap"].update(target={"window": [float("nan"), 6.0]}), "not a finite number"),
    (lambda c: c["campaigns"]["mp_bulk"].update(target={"min": "inf"}), "not a finite number"),
    (lambda c: c.update(results=""), "filesystem root"),
    (lambda c: c["campaigns"]["qm9_gap"].update(split={"val": 0.5, "test": 0.45}), "leaves less than 10%"),
    (lambda c: c["campaigns"]["mp_bulk"].update(filters={"min_elements": 3, "max_elements": 2}), "no cell could pass"),
    (lambda c: c["campaigns"]["qm9_gap"].update(filters={"min_distance": 1.0}), "crystals setting"),
    (lambda c: c["campaigns"]["qm9_gap"].update(oracle={"e_hull_max": 0.2}), "setting of chgnet oracle"),
    (lambda c: c["campaigns"]["mp_bulk"]["generator"].update(coord_weight=-1), "less than the minimum of 0"),
    (lambda c: c["campaigns"]["qm9_gap"]["dataset"].update(property_kind="gap_ev"), "unknown key"),
]


@pytest.mark.parametrize("mutate, match", BAD)
def test_bad_values_get_one_line_errors_naming_the_key(base, mutate, match):
    bad = copy.deepcopy(base)
    mutate(bad)
    with pytest.raises(InvdesignError, match=match) as err:
        validate_config(bad, source="my.yaml")
    assert "\n" not in str(err.value) and str(err.value).startswith("my.yaml: ")


@pytest.mark.parametrize("mutate, match", [m for m in BAD if "finite" not in m[1] and "root" not in m[1]
                                           and "divide" not in m[1] and "more" not in m[1]
                                           and "10%" not in m[1] and "no cell" not in m[1]])
def test_generated_schema_rejects_what_the_validator_rejects_key_by_key(base, mutate, match):
    """Every key-level error (unknown key, key of another generator / domain / oracle, bound) is in the schema too;
    cross-field checks (divisibility, split sums, ...) are the validator's alone."""
    import jsonschema

    from invdesign.config import config_schema

    bad = copy.deepcopy(base)
    mutate(bad)
    assert list(jsonschema.Draft202012Validator(config_schema()).iter_errors(bad)), match


def test_each_generator_splits_into_model_train_and_sample_parts_without_overlap():
    """Every key of a generator belongs to one part; sampling keys never reach the training job's params."""
    import dataclasses

    from invdesign.config.generators import generator_schema, parse_generator
    from invdesign.config.generators import get_generator, registry

    for (domain, kind), plugin in registry().items():
        names = [{f.name for f in dataclasses.fields(p)} for p in plugin.parts.values()]
        assert set(generator_schema(domain, kind)["properties"]) == {"type"} | set().union(*names)
        if not plugin.trained:  # a classical arm: its sample part only (tests/test_arms.py)
            assert list(plugin.parts) == ["sample"], (domain, kind)
            continue
        assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2]), (domain, kind)
        gen = parse_generator({"type": kind}, domain, "g", "test")
        assert set(gen.training_params()) == {"domain", "type", "model", "train"}
        assert set(gen.training_params()["model"]) == names[0] and not names[2] & set(gen.training_params()["train"])
    assert {"n_samples", "guidance_scale", "sample_steps", "sample_seed"} <= {
        f.name for f in dataclasses.fields(get_generator("molecules", "diffusion").sample)}
    assert "langevin_steps" in {f.name for f in dataclasses.fields(get_generator("crystals", "ebm").sample)}


def test_model_code_holds_no_defaults(repo):
    """The models read their typed settings by attribute; a default written beside a model is a second source."""
    import re

    for path in (repo / "invdesign" / "models").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"cfg\.get\(|cfg\[\"", text), path.name


def test_a_non_editable_install_validates_the_default_config(repo, tmp_path):
    """The package carries everything validation needs: installed as a plain copy (no source tree beside it), it
    validates config/config.yaml and generates the same schema as the repository holds."""
    import subprocess
    import sys

    import shutil

    src, site = tmp_path / "src", tmp_path / "site"  # a copy: building in the checkout would leave build/ there
    shutil.copytree(repo / "invdesign", src / "invdesign", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo / name, src / name)
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--quiet",
                          "--target", str(site), str(src)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    code = ("import invdesign, sys; from invdesign.config import load_config; from invdesign.config.schema import "
            "render; assert invdesign.__file__.startswith(sys.argv[1]), invdesign.__file__; "
            "c = load_config(sys.argv[2]); print(sorted(c['campaigns'])); sys.stdout.write(render())")
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-c", code, str(site), str(repo / "config" / "config.yaml")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    first, rest = res.stdout.split("\n", 1)
    assert first == "['mp_bulk', 'qm9_gap']"
    assert rest == (repo / "workflow" / "schemas" / "config.schema.yaml").read_text()


def test_the_config_checker_names_the_file_and_line_snakemake_would_not(tmp_path, capsys, repo):
    """Snakemake reads --configfile itself (its own message for a YAML error or a missing file);
    python -m invdesign.config gives the project's one line, and validates the keys."""
    from invdesign.config.__main__ import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("campaigns:\n  a: [1,\n")
    assert main([str(bad)]) == 1
    assert capsys.readouterr().err.strip() == (f"invdesign error: {bad}: not valid YAML at line 3, column 1 (while "
                                               "parsing a flow node); fix the syntax")
    assert main([str(tmp_path / "missing.yaml")]) == 1
    assert "not found; pass an existing file" in capsys.readouterr().err
    typo = tmp_path / "typo.yaml"
    typo.write_text("campaigns:\n  a:\n    domain: molecules\n    dataset: {source: qm9}\n    targte: {min: 4}\n")
    assert main([str(typo)]) == 1
    assert "targte" in capsys.readouterr().err
    assert main([str(repo / "config" / "config.yaml")]) == 0
    assert "valid (campaigns: qm9_gap, mp_bulk)" in capsys.readouterr().out
