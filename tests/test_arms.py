"""The classical arms as generator types (issue #35): declared with a sample part only, planned without a training
job, run by the search step from the data set, known table and predictor; proposals valid, novel and seeded."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from rdkit import Chem

from invdesign.arms.base import ArmRequest
from invdesign.config import config_schema, validate_config
from invdesign.config.generators import get_generator, parse_generator, registry
from invdesign.errors import InvdesignError

TRAIN = ["CCO", "CC(=O)N", "c1ccoc1", "CC1CC1", "OCC#N", "CN(C)C=O", "FC(F)CO", "C1CCNC1", "CC(C)CC", "O=C1CCC1",
         "CCN", "CC#N", "NC=O", "OC1CC1", "CCOC", "CNC(=O)O"]
KNOWN = TRAIN + ["CCCO", "CC(N)=O", "CCC"]


def n_nitrogen(table: pd.DataFrame) -> np.ndarray:
    """A stand-in predictor: the number of nitrogens (NaN where the SMILES does not parse)."""
    mols = [Chem.MolFromSmiles(s) for s in table["smiles"]]
    return np.array([sum(a.GetSymbol() == "N" for a in m.GetAtoms()) if m else np.nan for m in mols], float)


def molecule_request(target=None) -> ArmRequest:
    from invdesign.chem.molecules import novelty_key

    data = pd.DataFrame({"id": [f"m{i}" for i in range(len(TRAIN))], "smiles": TRAIN,
                         "property": np.arange(len(TRAIN), dtype=float) % 4,
                         "split": ["train"] * 12 + ["val"] * 2 + ["test"] * 2})
    known = pd.DataFrame({"id": [f"k{i}" for i in range(len(KNOWN))], "smiles": [novelty_key(s) for s in KNOWN]})
    return ArmRequest(target=target or {"window": [2.0, 3.0]}, dataset=data, known=known, predict=n_nitrogen)


def arm(domain, kind, **settings):
    plugin = get_generator(domain, kind)
    return plugin.load_sampler_class()(plugin.sample.parse(settings, kind))


@pytest.mark.parametrize("kind,settings", [("graph_ga", {"population": 8, "generations": 3, "offspring": 12}),
                                           ("edit_library", {"parents": 8, "edits_per_parent": 4})])
def test_molecule_arms_propose_valid_novel_molecules_within_the_data_and_repeat_for_a_seed(kind, settings):
    from invdesign.chem.molecules import novelty_key

    req = molecule_request()
    out = arm("molecules", kind, **settings).propose(req)
    assert len(out) >= 5 and list(out.columns) == ["smiles", "generator_pred"]
    assert (out["generator_pred"] == 2.5).all()  # the aim: the window's centre
    assert out["smiles"].is_unique
    for smi in out["smiles"]:
        mol = Chem.MolFromSmiles(smi)
        assert mol is not None and "." not in smi and novelty_key(smi) not in set(req.known["smiles"])
        # the training data's chemistry: its elements, at most its largest molecule's heavy atoms
        assert {a.GetSymbol() for a in mol.GetAtoms()} <= {"C", "N", "O", "F"} and mol.GetNumAtoms() <= 6
    again = arm("molecules", kind, **settings).propose(molecule_request())
    pd.testing.assert_frame_equal(out, again)
    other = arm("molecules", kind, **settings, seed=1).propose(molecule_request())
    assert set(other["smiles"]) != set(out["smiles"])


def test_the_graph_ga_climbs_the_predictor_toward_the_target():
    """Target: at least 3 nitrogens (no training molecule has more than 1): the GA's best proposals reach it."""
    req = molecule_request({"min": 3.0})
    out = arm("molecules", "graph_ga", population=12, generations=8, offspring=24).propose(req)
    assert n_nitrogen(pd.DataFrame({"smiles": TRAIN})).max() == 1
    assert n_nitrogen(out.head(3)).min() >= 3  # best first
    assert req.aim == 3.0  # a one-sided target: the median training value inside it


def seeded(request: ArmRequest, *paths) -> ArmRequest:
    from invdesign.arms.molecules import read_seeds

    request.seeds = read_seeds([str(p) for p in paths])
    return request


def test_a_seeded_edit_library_edits_the_confirmed_molecules_of_earlier_campaigns_first(tmp_path):
    """One parent: unseeded a random training molecule (none has more than one nitrogen), seeded the confirmed
    molecule with three nitrogens, whose single edits keep at least two; the seed itself is a known answer."""
    table = tmp_path / "verified.parquet"
    pd.DataFrame({"smiles": ["NCC(N)N", "CCCCCN"], "confirmed": [True, False],
                  "dft_ok": [True, True]}).to_parquet(table)
    plain = arm("molecules", "edit_library", parents=1, edits_per_parent=8).propose(molecule_request())
    assert n_nitrogen(plain).max() <= 2 and "n_seeds" not in plain
    out = arm("molecules", "edit_library", parents=1, edits_per_parent=8).propose(seeded(molecule_request(), table))
    assert len(out) >= 3 and (out["n_seeds"] == 1).all()
    assert n_nitrogen(out).min() >= 2 and "NCC(N)N" not in set(out["smiles"])
    assert all(abs(Chem.MolFromSmiles(s).GetNumAtoms() - 5) <= 1 for s in out["smiles"])  # one edit of 5 atoms


def test_molecules_the_seeds_tables_checked_by_dft_are_not_proposed_again(tmp_path, caplog):
    """A CSV of an earlier campaign without a confirmed molecule: the library is today's, less the molecule its DFT
    tier checked; one only the first tier checked is still proposed ("False" as text is not true)."""
    settings = {"parents": 8, "edits_per_parent": 4}
    plain = arm("molecules", "edit_library", **settings).propose(molecule_request())
    checked, xtb_only = plain["smiles"].iloc[0], plain["smiles"].iloc[1]
    table = tmp_path / "verified.csv"
    pd.DataFrame({"smiles": [checked, xtb_only], "confirmed": ["False", "False"],
                  "dft_ok": ["True", None]}).to_csv(table, index=False)
    with caplog.at_level("INFO", logger="invdesign"):
        out = arm("molecules", "edit_library", **settings).propose(seeded(molecule_request(), table))
    assert out["smiles"].tolist() == [s for s in plain["smiles"] if s != checked]
    assert (out["n_seeds"] == 0).all()
    assert "edit_library: 1 proposals left out, the seeds_from tables checked them already" in caplog.text


def test_the_graph_gas_first_population_holds_the_seeds(tmp_path, caplog):
    """The first batch the GA scores is its first population: the confirmed molecules (dft_confirmed where a table
    has no confirmed column) within the campaign's chemistry, then random training molecules; a seed with an element
    the data set lacks is left out."""
    table = tmp_path / "verified.parquet"
    pd.DataFrame({"smiles": ["NCC(N)N", "NC(N)C#N", "ClCCCl", "CCCCO"],
                  "dft_confirmed": pd.array([True, True, True, pd.NA], dtype="boolean"),
                  "dft_ok": [True, True, True, None]}).to_parquet(table)
    req = seeded(molecule_request({"min": 3.0}), table)
    batches = []
    predict = req.predict
    req.predict = lambda t: batches.append(list(t["smiles"])) or predict(t)
    with caplog.at_level("INFO", logger="invdesign"):
        out = arm("molecules", "graph_ga", population=8, generations=2, offspring=12).propose(req)
    assert len(batches[0]) == 8 and {"NCC(N)N", "N#CC(N)N"} <= set(batches[0])
    assert len(set(batches[0]) & {Chem.CanonSmiles(s) for s in TRAIN}) == 6
    assert (out["n_seeds"] == 2).all() and not {"NCC(N)N", "N#CC(N)N"} & set(out["smiles"])
    assert "graph_ga: 2 seeds, the confirmed molecules of 1 seeds_from table(s) (2 of 3 within" in caplog.text


@pytest.mark.parametrize("name,content,says", [
    ("gone.parquet", None, "not found"),
    ("broken.parquet", b"not a parquet file", "cannot be read as a table"),
    ("crystals.csv", "formula,confirmed\nWC,True\n", "lacks a smiles column"),
    ("unchecked.csv", "smiles,xtb_ok\nCCO,True\n", "lacks a confirmed (or dft_confirmed) column"),
])
def test_a_bad_seeds_table_is_one_line_naming_the_file_and_the_fix(tmp_path, name, content, says):
    from invdesign.arms.molecules import read_seeds

    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(InvdesignError) as err:
        read_seeds([str(path)])
    msg = str(err.value)
    assert msg.startswith(f"seeds_from: {path} ") and says in msg and "\n" not in msg
    assert "candidates_verified.parquet (or .csv) of an earlier molecule campaign" in msg


def crystal_request():
    from pymatgen.core import Lattice, Structure

    from invdesign.chem.crystals import structure_to_record

    cells = [Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
             Structure(Lattice.cubic(4.1), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
             Structure(Lattice.cubic(3.2), ["W"], [[0, 0, 0]]),
             Structure(Lattice.cubic(3.9), ["Ir"], [[0, 0, 0]])]
    data = pd.DataFrame({"id": ["p1", "p2", "w", "ir"], "structure": [structure_to_record(c) for c in cells],
                         "property": [25.0, 18.0, 300.0, 350.0], "split": ["train"] * 4})
    return ArmRequest(target={"min": 250.0}, dataset=data, known=data[["id", "structure"]],
                      predict=lambda t: np.zeros(len(t)))


def test_substitution_swaps_in_the_given_elements_at_the_fitted_volumes_and_repeats_for_a_seed():
    from pymatgen.core import Composition

    from invdesign.chem.crystals import fit_atomic_volumes, structure_from_record

    req = crystal_request()
    out = arm("crystals", "substitution", n_substitutions=30, elements=["W", "Ir", "Cs"]).propose(req)
    assert len(out) == 30 and {"formula", "structure", "num_sites", "prototype", "generator_pred"} <= set(out)
    assert (out["generator_pred"] == 325.0).all()  # one-sided target: the median training value inside it
    volumes = fit_atomic_volumes([structure_from_record(r) for r in req.dataset["structure"]])
    for rec, proto in zip(out["structure"], out["prototype"]):
        s = structure_from_record(rec)
        els = {el.symbol for el in s.composition.elements}
        assert len(els) == 2 and els <= {"W", "Ir", "Cs"} and proto in ("p1", "p2")  # binary cells only
        assert s.volume == pytest.approx(sum(n * volumes[el.symbol] for el, n in s.composition.items()))
    again = arm("crystals", "substitution", n_substitutions=30, elements=["W", "Ir", "Cs"]).propose(req)
    pd.testing.assert_frame_equal(out, again)
    everything = arm("crystals", "substitution", n_substitutions=60).propose(req)  # every element of the data
    assert set().union(*(Composition(f).as_dict() for f in everything["formula"])) == {"Na", "Cl", "Cs", "W", "Ir"}


def test_an_arm_declares_a_sample_part_only_and_the_schema_offers_its_keys():
    arms = {k for k, p in registry().items() if not p.trained}
    assert arms == {("molecules", "graph_ga"), ("molecules", "edit_library"), ("crystals", "substitution")}
    defs = config_schema()["$defs"]
    assert set(defs["molecules_graph_ga_generator"]["properties"]) == {"type", "population", "generations",
                                                                      "offspring", "mutation_rate", "seed",
                                                                      "seeds_from"}
    assert set(defs["molecules_edit_library_generator"]["properties"]) == {"type", "parents", "edits_per_parent",
                                                                          "seed", "seeds_from"}
    assert set(defs["crystals_substitution_generator"]["properties"]) == {"type", "n_substitutions", "elements",
                                                                         "seed"}
    gen = parse_generator({"type": "graph_ga", "population": 50}, "molecules", "g", "test")
    assert (gen.trained, gen.model, gen.train, gen.sample.population) == (False, None, None, 50)
    assert gen.to_dict() == {"type": "graph_ga", "population": 50, "generations": 20, "offspring": 200,
                             "mutation_rate": 0.5, "seed": 0, "seeds_from": []}
    with pytest.raises(InvdesignError, match="'g.epochs'.*not of the molecules graph_ga generator"):
        parse_generator({"type": "graph_ga", "epochs": 3}, "molecules", "g", "test")
    with pytest.raises(InvdesignError, match="elements names one element"):
        parse_generator({"type": "substitution", "elements": ["W"]}, "crystals", "g", "test")
    with pytest.raises(ValueError, match="never trained"):
        gen.training_params()
    from types import SimpleNamespace

    from invdesign.models.registry import build_generator
    from invdesign.sampling import make_sampler

    with pytest.raises(ValueError, match="classical arm"):
        build_generator({"domain": "molecules"}, "graph_ga", gen.sample)
    with pytest.raises(ValueError, match="classical arm"):
        make_sampler("graph_ga", SimpleNamespace(meta={"domain": "molecules"}), gen.sample)


def test_the_shipped_configs_run_the_arms():
    from invdesign.config import load_config

    default = load_config("config/config.yaml")["campaigns"]
    assert {"graph_ga", "edit_library"} <= {g["type"] for g in default["qm9_gap"]["generators"]}
    assert "substitution" not in {g["type"] for g in default["mp_bulk"]["generators"]}  # tiny crystal oracle budget
    full = load_config("config/materials_bulk_modulus.yaml")["campaigns"]["mp_bulk_full"]
    assert "substitution" in {g["type"] for g in full["generators"]}
    full = load_config("config/molecules_gap.yaml")["campaigns"]["qm9_gap_full"]
    assert {"graph_ga", "edit_library"} <= {g["type"] for g in full["generators"]}


@pytest.fixture()
def arm_config(repo, tmp_path):
    cfg = yaml.safe_load((repo / "config" / "tests" / "tiny.yaml").read_text())
    mol = cfg["campaigns"]["tiny_mol"]
    mol["generators"] = [mol["generators"][0], {"type": "graph_ga", "population": 10, "generations": 2},
                         {"type": "edit_library", "parents": 20, "edits_per_parent": 2}]
    cry = cfg["campaigns"]["tiny_cry"]
    cry["generators"] = [{"type": "substitution", "n_substitutions": 20}]
    cfg["results"] = str(tmp_path / "results")
    path = tmp_path / "arms.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_an_arm_is_planned_without_a_training_job_or_model(repo, arm_config, tmp_path):
    res = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(arm_config)],
                         cwd=repo, capture_output=True, text=True, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "generator_vae.pt" in out  # the trained generator still is
    for kind in ("graph_ga", "edit_library", "substitution"):
        assert f"samples_{kind}.parquet" in out and f"generator_{kind}.pt" not in out
    # asked for by name, an arm's model file has no rule that makes it (train_generator does not take the arms)
    res = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(arm_config),
                          str(tmp_path / "results" / "tiny_mol" / "models" / "generator_graph_ga.pt")],
                         cwd=repo, capture_output=True, text=True, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "No such file" in out and "generator_graph_ga.pt" in out
    assert "train_generator" not in out


def test_the_search_step_runs_an_arm_from_the_data_set_known_table_and_predictor(tmp_path):
    """The rule's function, as the workflow calls it for an arm (no checkpoint, no graphs), with an untrained
    predictor of the campaign's kind."""
    import torch

    from invdesign.config.generators import PredictorModel
    from invdesign.domains import get_domain
    from invdesign.models.predictor import GraphPropertyPredictor
    from invdesign.models.registry import checkpoint
    from invdesign.pipeline.search import search

    req = molecule_request()
    req.dataset.to_parquet(tmp_path / "dataset.parquet")
    req.known.to_parquet(tmp_path / "known.parquet")
    _, meta = get_domain("molecules").featurize(req.dataset, None)
    torch.manual_seed(0)
    model = GraphPropertyPredictor(meta, PredictorModel(hidden=16, layers=1))
    torch.save(checkpoint("predictor", model, meta), tmp_path / "predictor.pt")
    out = tmp_path / "samples_edit_library.parquet"
    search(campaign="c", domain="molecules", kind="edit_library", sample={"parents": 10, "edits_per_parent": 3},
           latent_search=None, target={"window": [1.0, 2.0]}, unit="", runtime={"device": "cpu"}, feedback=[],
           feedback_measure=None, samples=str(out), dataset=str(tmp_path / "dataset.parquet"),
           known=str(tmp_path / "known.parquet"), predictor=str(tmp_path / "predictor.pt"))
    samples = pd.read_parquet(out)
    assert len(samples) > 5 and (samples["generator"] == "edit_library").all()
    assert samples["sample_id"].tolist() == [f"c-edit_library-{i:06d}" for i in range(len(samples))]
    assert not set(samples["smiles"]) & set(req.known["smiles"])
    assert "n_seeds" not in samples  # today's columns when the arm is not seeded
    # seeded: the rule's seeds input (the paths of seeds_from) is read, and the rows say how many seeds there were
    table = tmp_path / "verified.parquet"
    pd.DataFrame({"smiles": ["NCC(N)N"], "confirmed": [True]}).to_parquet(table)
    search(campaign="c", domain="molecules", kind="edit_library",
           sample={"parents": 10, "edits_per_parent": 3, "seeds_from": [str(table)]}, latent_search=None,
           target={"window": [1.0, 2.0]}, unit="", runtime={"device": "cpu"}, feedback=[], feedback_measure=None,
           samples=str(out), dataset=str(tmp_path / "dataset.parquet"), known=str(tmp_path / "known.parquet"),
           predictor=str(tmp_path / "predictor.pt"), seeds=[str(table)])
    samples = pd.read_parquet(out)
    assert (samples["n_seeds"] == 1).all() and (n_nitrogen(samples) >= 2).any()
    with pytest.raises(InvdesignError, match="seeds_from: .*gone.parquet not found"):
        search(campaign="c", domain="molecules", kind="edit_library", sample={"seeds_from": ["gone.parquet"]},
               latent_search=None, target={"window": [1.0, 2.0]}, unit="", runtime={"device": "cpu"}, feedback=[],
               feedback_measure=None, samples=str(out), dataset=str(tmp_path / "dataset.parquet"),
               known=str(tmp_path / "known.parquet"), predictor=str(tmp_path / "predictor.pt"),
               seeds=[str(tmp_path / "gone.parquet")])
    with pytest.raises(InvdesignError, match="outside the data's range"):
        search(campaign="c", domain="molecules", kind="edit_library", sample={}, latent_search=None,
               target={"min": 50.0}, unit="", runtime={"device": "cpu"}, feedback=[], feedback_measure=None,
               samples=str(out), dataset=str(tmp_path / "dataset.parquet"), known=str(tmp_path / "known.parquet"),
               predictor=str(tmp_path / "predictor.pt"))


def test_the_oracle_and_the_summary_count_checks_and_confirmations_per_generator(tmp_path):
    from invdesign.pipeline.filter import summary
    from invdesign.pipeline.verify import generator_verdicts, make_oracle

    o = make_oracle("molecules", {"dft": {"top_k": 2}}, {"window": [4.0, 5.0]}, "gap_ev")
    verified = pd.DataFrame({"generator": ["vae", "graph_ga", "graph_ga", "vae", "edit_library"],
                             "oracle_error": ["", "", "", "", np.nan], "xtb_ok": [True, True, True, False, np.nan],
                             "dft_ok": [True, True, np.nan, np.nan, np.nan],
                             "dft_confirmed": [True, False, np.nan, np.nan, np.nan],
                             "confirmed": [True, False, False, False, False]})
    by = generator_verdicts(o, verified)
    assert by == {"edit_library": {"n_checked_by_first_tier": 0, "n_checked_by_confirming_tier": 0, "n_confirmed": 0,
                                   "confirmed_per_check": None},
                  "graph_ga": {"n_checked_by_first_tier": 2, "n_checked_by_confirming_tier": 1, "n_confirmed": 0,
                               "confirmed_per_check": 0.0},
                  "vae": {"n_checked_by_first_tier": 2, "n_checked_by_confirming_tier": 1, "n_confirmed": 1,
                          "confirmed_per_check": 1.0}}
    m, q = tmp_path / "metrics.json", tmp_path / "oracle.json"
    funnel = {g: {"n_samples": 10, "validity": 1.0, "n_candidates": 4, "n_candidates_in_target": 2}
              for g in ("vae", "graph_ga", "edit_library", "ebm")}
    m.write_text(json.dumps({"campaign": "c", "target": {"min": 1}, "by_generator": funnel}))
    q.write_text(json.dumps({"confirmed_by": "DFT", "n_confirmed": 1, "by_generator": by}))
    summary(metrics=[str(m)], oracle=[str(q)], csv=str(tmp_path / "s.csv"), by_generator=str(tmp_path / "g.csv"))
    rows = pd.read_csv(tmp_path / "g.csv").set_index("generator")
    assert sorted(rows.index) == ["ebm", "edit_library", "graph_ga", "vae"]  # ebm: no passing row, nothing checked
    vae = rows.loc["vae", ["n_checked_by_confirming_tier", "n_confirmed", "confirmed_per_check"]]
    assert vae.tolist() == [1, 1, 1.0]
    assert rows.loc["ebm", "n_checked_by_first_tier"] == 0 and np.isnan(rows.loc["ebm", "confirmed_per_check"])
    assert (rows["campaign"] == "c").all() and (rows["n_samples"] == 10).all()
