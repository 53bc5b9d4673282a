"""results/<campaign>/provenance.json records what produced the results, and the landing page's footer shows it."""

import hashlib
import json
import subprocess


from invdesign import __version__
from invdesign.pipeline.provenance import TOOLS, write_provenance
from tests.test_landing import run_page
from tests.test_landing_truth import molecule_row
from tests.test_workflow import snakemake


def test_provenance_records_config_commit_versions_models_and_device(tmp_path, repo, monkeypatch):
    monkeypatch.chdir(repo)
    model = tmp_path / "predictor.pt"
    model.write_bytes(b"weights" * 1000)
    out = tmp_path / "provenance.json"
    write_provenance(campaign="c", config={"campaign": {"target": {"min": 1.0}}}, runtime={"device": "cpu"},
                     models=[str(model)], provenance=str(out))
    prov = json.loads(out.read_text())
    assert prov["config"]["campaign"]["target"] == {"min": 1.0} and prov["package_version"] == __version__
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert prov["git_commit"] == head and isinstance(prov["git_dirty"], bool)
    assert set(prov["tools"]) == set(TOOLS) and {"rdkit", "torch", "snakemake", "pymatgen"} <= set(TOOLS)
    assert all(v == "not installed" or v[0].isdigit() for v in prov["tools"].values())
    assert prov["models"] == {str(model): hashlib.sha256(model.read_bytes()).hexdigest()}
    assert prov["device"] == "cpu"
    page = run_page(tmp_path, "molecules", molecule_row(), {"n_confirmed": 0}, {"dft": {"top_k": 1}}, {"min": 4.0},
                    "gap_ev", "eV", provenance=str(out))
    footer = page[page.index("<footer>"):page.index("</footer>")]
    assert f"commit {head}" in footer and f"invdesign {__version__}" in footer
    assert f"rdkit {prov['tools']['rdkit']}" in footer and "predictor.pt (sha256 " + prov["models"][str(model)][:12] \
        in footer and "device cpu" in footer


def test_the_tiny_campaign_plans_provenance_before_its_landing_page(repo, tmp_path):
    res = snakemake(repo, "-n", "--quiet", "rules", "--configfile", "config/tests/tiny.yaml", "--config",
                    f"results={tmp_path}")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "provenance" in res.stdout + res.stderr and "report_landing" in res.stdout + res.stderr
