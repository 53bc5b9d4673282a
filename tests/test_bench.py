"""The bench is a package run as ``python -m bench.<script>``: every module imports without editing ``sys.path``, no
script imports another (what they share is in ``bench.lib``), every script's command line parses, analyses record
their provenance, and the committed baseline records are enough for their analysis."""

import ast
import importlib
import json
import logging
import shutil
import sys
from pathlib import Path

import pytest

import bench
import bench.lib
from bench.lib.common import write_analysis

BENCH = Path(bench.__file__).parent
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "__init__")
LIBRARY = sorted(p.stem for p in (BENCH / "lib").glob("*.py") if p.stem != "__init__")


@pytest.fixture(autouse=True)
def _logging_restored():
    """A script's main sets up logging for a run (the package at WARNING); the tests after these keep theirs."""
    logger = logging.getLogger("invdesign")
    level, root = logger.level, logging.getLogger().level
    yield
    logger.setLevel(level)
    logging.getLogger().setLevel(root)


def _tree(module: str) -> ast.Module:
    return ast.parse((BENCH / f"{module.replace('.', '/')}.py").read_text())


def _imported(tree: ast.Module) -> set[str]:
    """The absolute module names a module imports (relative imports as ``.name``)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            out.add("." * node.level + (node.module or ""))
    return out


def test_the_scripts_are_found():
    assert len(SCRIPTS) >= 20 and {"dft_protocol", "crystal_baselines", "molecule_baselines"} <= set(SCRIPTS)
    assert {"common", "stats", "crystals"} <= set(LIBRARY)


@pytest.mark.parametrize("module", SCRIPTS + [f"lib.{m}" for m in LIBRARY])
def test_module_imports_without_editing_sys_path(module):
    for node in ast.walk(_tree(module)):
        is_sys_path = isinstance(node, ast.Attribute) and node.attr == "path" \
            and isinstance(node.value, ast.Name) and node.value.id == "sys"
        assert not is_sys_path, f"bench/{module}.py line {node.lineno} uses sys.path"
    before = list(sys.path)
    name = f"bench.{module}"
    if name in sys.modules:  # imported by an earlier test: run its module code again
        importlib.reload(sys.modules[name])
    else:
        importlib.import_module(name)
    assert sys.path == before


@pytest.mark.parametrize("module", SCRIPTS + [f"lib.{m}" for m in LIBRARY])
def test_no_module_imports_a_script(module):
    for name in _imported(_tree(module)):
        top = name.split(".")
        assert top[0] not in SCRIPTS, f"bench/{module}.py imports the script {name} as a top-level module"
        if top[0] == "bench" and len(top) > 1:
            assert top[1] == "lib", f"bench/{module}.py imports the script {name}"
        if name.startswith("."):
            assert module.startswith("lib."), f"bench/{module}.py imports {name} relatively"
            assert name.lstrip(".").split(".")[0] in LIBRARY + [""], f"bench/{module}.py imports {name}"


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_help_parses(script, capsys):
    main = importlib.import_module(f"bench.{script}").main
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("usage:")


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_script_writing_json_records_its_provenance(script):
    """A script that writes a JSON file (an analysis or a summary) puts its provenance in it (the heuristic: its
    source calls provenance() or write_analysis(), which adds it)."""
    tree = _tree(script)
    writes_json = any(isinstance(n, ast.Attribute) and n.attr == "dumps" for n in ast.walk(tree))
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    if writes_json:
        assert calls & {"provenance", "write_analysis"}, f"bench/{script}.py writes JSON without provenance"


def test_write_analysis_records_the_commit_and_versions(tmp_path, capsys):
    res = write_analysis(tmp_path, {"n": 3}, ("numpy", "no-such-package"))
    on_disk = json.loads((tmp_path / "analysis.json").read_text())
    assert on_disk == res == json.loads(capsys.readouterr().out)
    assert on_disk["n"] == 3 and set(on_disk["provenance"]) == {"git_commit", "git_dirty", "versions"}
    assert len(on_disk["provenance"]["git_commit"]) == 40  # the tests run in a git checkout
    versions = on_disk["provenance"]["versions"]
    assert versions["no-such-package"] == "not installed" and versions["numpy"][0].isdigit()


def test_molecule_baselines_analysis_follows_from_the_committed_records(tmp_path, capsys):
    """The pruned records hold what ``analyse`` reads: on a copy, every number that needs no campaign files (the
    campaign's Snakemake benchmarks are not in the repository) comes out as committed."""
    from bench import molecule_baselines

    records = BENCH / "records" / "baselines" / "molecules"
    shutil.copytree(records, tmp_path / "molecules")
    molecule_baselines.main(["analyse", "--out", str(tmp_path / "molecules"),
                             "--campaign-benchmarks", str(tmp_path / "no_benchmarks")])
    capsys.readouterr()
    committed = json.loads((records / "analysis.json").read_text())
    again = json.loads((tmp_path / "molecules" / "analysis.json").read_text())
    assert again["oracle_rate"] == pytest.approx(committed["oracle_rate"])
    assert set(again["arms"]) == set(committed["arms"]) == {"generators", "ga", "library"}
    for arm, r in committed["arms"].items():
        mine = again["arms"][arm]
        for key in ("n_dft", "n_confirmed", "blocks", "n_xtb", "confirmed", "hits_all_novel"):
            assert mine[key] == r[key], (arm, key)
        for key in ("ci95", "dft_seconds", "oracle_wall_seconds", "hits_qed_median", "hits_sa_score_median",
                    "hits_nearest_known_similarity_median"):
            assert mine[key] == pytest.approx(r[key]), (arm, key)
        first = r["first_block"]
        assert mine["first_block"] == first | {"ci95": pytest.approx(first["ci95"])}, arm
        if arm != "generators":
            assert mine["fisher_p_vs_generators"] == pytest.approx(r["fisher_p_vs_generators"]), arm
