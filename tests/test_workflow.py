"""The Snakemake workflow plans every shipped config and rejects bad ones with one line."""

import subprocess
import sys

import pytest


def snakemake(repo, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", *args], cwd=repo,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("configfile", [None, "config/molecules_gap.yaml", "config/materials_bulk_modulus.yaml",
                                        "config/mp_shear.yaml", "config/mp_hardness.yaml", "config/tests/tiny.yaml"])
def test_dry_run_plans_every_config(repo, configfile, tmp_path):
    args = ["-n", "--quiet", "rules", "--config", f"results={tmp_path}"]
    args += ["--configfile", configfile] if configfile else []
    res = snakemake(repo, *args)
    assert res.returncode == 0, res.stderr[-2000:]
    for rule in ("prepare_dataset", "featurize", "train_generator", "train_predictor", "search", "filter_rank"):
        assert rule in res.stdout + res.stderr


def test_configfile_replaces_default_campaigns(repo):
    res = snakemake(repo, "-n", "--configfile", "config/molecules_gap.yaml")
    out = res.stdout + res.stderr
    assert res.returncode == 0
    assert "qm9_gap_full" in out and "mp_bulk" not in out


def test_bad_config_fails_with_one_line(repo, tmp_path):
    bad = tmp_path / "bad.yaml"
    text = (repo / "config" / "config.yaml").read_text().replace("max_rows: 20000", "max_rowz: 20000")
    bad.write_text(text)
    res = snakemake(repo, "-n", "--configfile", str(bad))
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if "invdesign error" in ln]
    assert len(lines) == 1 and "campaigns.qm9_gap.dataset.max_rowz" in lines[0] and str(bad) in lines[0]


def test_every_rule_has_a_log(repo):
    import re

    for smk in (repo / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        rules = re.findall(r"^rule (\w+):", text, flags=re.M)
        blocks = re.split(r"^rule \w+:", text, flags=re.M)[1:]
        for name, block in zip(rules, blocks):
            assert "log:" in block, f"rule {name} in {smk.name} has no log:"


def test_feedback_from_another_campaign_is_planned_first(repo, tmp_path):
    """A crystal campaign ranked by another campaign's CHGNet verdicts (oracle.feedback_from) makes Snakemake
    verify that campaign first."""
    import yaml

    cfg = yaml.safe_load((repo / "config" / "tests" / "tiny.yaml").read_text())
    second = dict(cfg["campaigns"]["tiny_cry"])
    second["oracle"] = dict(second.get("oracle") or {},
                            feedback_from=[f"{tmp_path}/tiny_cry/candidates_verified.parquet"])
    cfg["campaigns"] = {"tiny_cry": cfg["campaigns"]["tiny_cry"], "tiny_cry_round2": second}
    cfg["results"] = str(tmp_path)
    path = tmp_path / "two_rounds.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = snakemake(repo, "-n", "--configfile", str(path), "--", f"{tmp_path}/tiny_cry_round2/oracle/batches")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-2000:]
    # round 2's checkpoint waits for round 1's verified table, so round 1's whole chain is planned
    assert "oracle_batches" in out and f"{tmp_path}/tiny_cry/oracle/batches" in out


def test_structure_prediction_from_feedback_waits_for_the_verdicts_and_keeps_the_model(repo, tmp_path):
    """A diffusion generator predicting structures for the formulas an earlier campaign's verdicts suggest
    (compositions.from_feedback) is sampled after that campaign is verified."""
    import yaml

    cfg = yaml.safe_load((repo / "config" / "tests" / "tiny.yaml").read_text())
    second = dict(cfg["campaigns"]["tiny_cry"])
    second["oracle"] = dict(second.get("oracle") or {},
                            feedback_from=[f"{tmp_path}/tiny_cry/candidates_verified.parquet"])
    second["generators"] = [dict(g, compositions={"from_feedback": True, "formulas": ["Ir3Re"]})
                            for g in second["generators"] if g.get("type") == "diffusion"]
    cfg["campaigns"] = {"tiny_cry": cfg["campaigns"]["tiny_cry"], "tiny_cry_round2": second}
    cfg["results"] = str(tmp_path)
    path = tmp_path / "two_rounds.yaml"
    path.write_text(yaml.safe_dump(cfg))
    target = f"{tmp_path}/tiny_cry_round2/samples/samples_diffusion.parquet"
    res = snakemake(repo, "-n", "--configfile", str(path), "--", target)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-2000:]
    # round 2's sampling waits for round 1's verified table, so round 1's CHGNet check is planned
    assert "rule verify:" in out and f"{tmp_path}/tiny_cry/candidates_verified.parquet" in out


def test_an_arm_seeded_from_another_campaign_waits_for_its_verdicts(repo, tmp_path):
    """A molecule arm started from an earlier campaign's confirmed molecules (seeds_from) searches after that
    campaign is verified: its verified table is an input of the search job."""
    import yaml

    cfg = yaml.safe_load((repo / "config" / "tests" / "tiny.yaml").read_text())
    verified = f"{tmp_path}/tiny_mol/candidates_verified.parquet"
    second = dict(cfg["campaigns"]["tiny_mol"], generators=[
        {"type": "edit_library", "parents": 20, "edits_per_parent": 2, "seeds_from": [verified]}])
    cfg["campaigns"] = {"tiny_mol": cfg["campaigns"]["tiny_mol"], "tiny_mol_round2": second}
    cfg["results"] = str(tmp_path)
    path = tmp_path / "seeded.yaml"
    path.write_text(yaml.safe_dump(cfg))
    target = f"{tmp_path}/tiny_mol_round2/samples/samples_edit_library.parquet"
    res = snakemake(repo, "-n", "--configfile", str(path), "--", target)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-2000:]
    # round 2's arm waits for round 1's verified table, so round 1's oracle is planned
    assert "rule verify:" in out and verified in out and "samples_edit_library.parquet" in out
    # unseeded, the same arm needs nothing of round 1's oracle
    second["generators"][0].pop("seeds_from")
    path.write_text(yaml.safe_dump(cfg))
    res = snakemake(repo, "-n", "--configfile", str(path), "--", target)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-2000:]
    assert "rule verify:" not in out and verified not in out


def test_a_gpu_asked_for_and_absent_stops_the_run_before_any_job(repo, tmp_path):
    """runtime.device: cuda on a machine without a GPU (here: none made visible) fails while planning, with one
    line, and writes nothing."""
    import os

    res = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--config", f"results={tmp_path}",
                          'runtime={"device": "cuda"}'], cwd=repo, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("invdesign error")]
    assert res.returncode != 0 and len(lines) == 1 and "no CUDA GPU is visible" in lines[0], res.stderr[-2000:]
    assert not any(tmp_path.iterdir())  # no job ran
