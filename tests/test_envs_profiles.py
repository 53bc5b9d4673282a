"""Conda environments list what their rules import; profiles are well-formed and plan the workflow."""

import ast
import re
import subprocess
import sys

import pytest
import yaml

# import name -> conda-forge package name ("pip:NAME" when installed from PyPI inside the env)
CONDA_NAME = {
    "torch": "pytorch-cpu", "torch_geometric": "pytorch_geometric", "numpy": "numpy", "scipy": "scipy",
    "pandas": "pandas", "pyarrow": "pyarrow", "yaml": "pyyaml", "jsonschema": "jsonschema",
    "matplotlib": "matplotlib-base", "rdkit": "rdkit", "selfies": "selfies", "pymatgen": "pip:pymatgen",
    "ase": "ase", "smact": "smact", "pooch": "pooch", "tblite": "tblite-python", "qm9pack": "pip:qm9pack",
    "chgnet": "pip:chgnet", "matcalc": "pip:matcalc", "monty": "pip:monty",
    "pyscf": "pip:pyscf", "sevenn": "pip:sevenn",
}
STDLIB = set(sys.stdlib_module_names)
# the modules each environment's rules execute (training rules must not need chemistry packages)
ENV_MODULES = {
    "train.yaml": ["invdesign/models", "invdesign/pipeline/train.py", "invdesign/pipeline/train_entry.py",
                   "invdesign/pipeline/launch.py", "invdesign/pipeline/glue.py", "invdesign/artifacts.py",
                   "invdesign/config", "invdesign/sampling", "invdesign/device.py", "invdesign/io.py",
                   "invdesign/errors.py", "invdesign/splits.py"],
    "chem.yaml": ["invdesign"],
}


def third_party_imports(paths, repo):
    found = set()
    for p in paths:
        path = repo / p
        assert path.exists(), f"{p} is listed in ENV_MODULES but does not exist: update the list"
        for f in ([path] if path.is_file() else sorted(path.rglob("*.py"))):
            for node in ast.walk(ast.parse(f.read_text())):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for n in names:
                    top = n.split(".")[0]
                    if top not in STDLIB and top != "invdesign":
                        found.add(top)
    return found


def env_packages(env_file):
    spec = yaml.safe_load(env_file.read_text())
    assert "conda-forge" in spec["channels"]
    pkgs = set()
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):
            pkgs |= {"pip:" + re.split(r"[=<>\s]", d)[0] for d in dep["pip"] if not d.startswith("-")}
        else:
            name, _, version = dep.partition("=")
            name = re.split(r"[<>]", name)[0]
            pkgs.add(name)
            if name not in ("pip", "setuptools"):
                assert version, f"{env_file.name}: {dep} is not pinned"
    return pkgs


@pytest.mark.parametrize("env", sorted(ENV_MODULES))
def test_env_lists_every_import(repo, env):
    pkgs = env_packages(repo / "envs" / env)
    missing = {m for m in third_party_imports(ENV_MODULES[env], repo) if CONDA_NAME.get(m, m) not in pkgs}
    assert not missing, f"envs/{env} lacks {sorted(missing)}"


def test_env_pins_translate_to_pypi_requirements(repo, tmp_path):
    """bench/env_versions.sh installs the env files' versions from PyPI: every conda package has a PyPI name,
    a conda pin X.Y means X.Y.*, and the env files' editable installs of the project become one line."""
    from bench.env_pins import merged_requirements, pip_requirements

    for env in sorted(ENV_MODULES):
        lines = pip_requirements(repo / "envs" / env, repo)
        assert lines and not any(line.startswith(("python", "pip==")) for line in lines)
    reqs = merged_requirements([repo / "envs" / e for e in sorted(ENV_MODULES)], repo)
    assert "torch==2.8.*" in reqs and "torch-geometric==2.6.*" in reqs and "matplotlib==3.10.*" in reqs
    assert [r for r in reqs if r.startswith("-e ")] == [f"-e {repo.resolve()}[chem,test,workflow]"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("channels: [conda-forge]\ndependencies:\n  - somethingnew=1.0\n")
    with pytest.raises(ValueError, match="somethingnew"):
        pip_requirements(bad)


def test_every_rule_names_an_existing_env(repo):
    for smk in (repo / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        for name, block in zip(re.findall(r"^rule (\w+):", text, re.M), re.split(r"^rule \w+:", text, flags=re.M)[1:]):
            m = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
            assert m, f"rule {name} has no conda: env"
            assert (smk.parent / m.group(1)).resolve().is_file(), f"rule {name}: {m.group(1)} missing"
            if name.startswith("train_"):
                assert m.group(1).endswith("train.yaml")


@pytest.mark.parametrize("profile", ["default", "slurm", "kubernetes"])
def test_profiles_are_valid_yaml_and_leave_gpu_counts_to_the_config(repo, profile):
    cfg = yaml.safe_load((repo / "workflow" / "profiles" / profile / "config.yaml").read_text())
    rules = set(re.findall(r"^rule (\w+):", "".join(p.read_text() for p in (repo / "workflow" / "rules").glob("*.smk")),
                           re.M))
    for section in ("set-resources", "set-threads"):
        assert set(cfg.get(section, {})) <= rules, f"{profile}: unknown rule in {section}"
    for rule, res in cfg.get("set-resources", {}).items():  # runtime.gpus / runtime.nodes decide these
        assert not {"gpu", "nodes", "gres", "tasks"} & set(res), f"{profile}: {rule} overrides the GPU request"


def test_training_rules_take_their_resources_from_the_runtime_config(repo):
    text = (repo / "workflow" / "rules" / "train.smk").read_text()
    assert text.count("**TRAIN_RESOURCES") == 2


CONFIGS = [None, "config/molecules_gap.yaml", "config/materials_bulk_modulus.yaml"]


def _plan(repo, args, configfile, results):
    cmd = [sys.executable, "-m", "snakemake", "-n", *args, "--config", f"results={results}"]
    res = subprocess.run(cmd + (["--configfile", configfile] if configfile else []), cwd=repo, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "train_generator" in res.stdout + res.stderr
    return res.stdout + res.stderr


@pytest.mark.parametrize("configfile", CONFIGS)
def test_default_profile_plans_each_config(repo, configfile, tmp_path):
    text = _plan(repo, ["--workflow-profile", "workflow/profiles/default"], configfile, tmp_path)
    if configfile is None:
        # the crystal chain goes first so its CHGNet check overlaps the molecule training (2-core budget)
        prio = {}
        for block in re.split(r"\n(?=(?:rule|checkpoint) \w+:)", text):
            camp, pr = re.search(r"campaign=(\w+)", block), re.search(r"priority: (\d+)", block)
            if camp:
                rule = re.match(r"(?:rule|checkpoint) (\w+):", block).group(1)
                prio[(camp.group(1), rule)] = int(pr.group(1)) if pr else 0
        chain = {"prepare_dataset", "check_target", "featurize", "train_generator", "train_predictor", "search", "filter_rank",
                 "oracle_prepare", "oracle_batches", "oracle_merge", "confirm_batches", "verify", "known_reference"}
        assert {r for (c, r), v in prio.items() if c == "mp_bulk" and v == 1} == chain, prio
        assert {v for (c, _), v in prio.items() if c == "qm9_gap"} == {0}, prio


@pytest.mark.parametrize("configfile", CONFIGS)
def test_slurm_profile_plans_each_config(repo, configfile, tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    _plan(repo, ["--profile", "workflow/profiles/slurm"], configfile, tmp_path)


@pytest.mark.parametrize("configfile", CONFIGS)
def test_kubernetes_profile_plans_each_config(repo, configfile, tmp_path):
    """The Kubernetes profile as written, with its S3 storage swapped for a local folder (no credentials here)."""
    pytest.importorskip("snakemake_executor_plugin_kubernetes")
    pytest.importorskip("snakemake_storage_plugin_fs")
    _plan(repo, ["--profile", "workflow/profiles/kubernetes", "--default-storage-provider", "fs",
                 "--default-storage-prefix", str(tmp_path / "store")], configfile, "results_k8s_plan")


@pytest.mark.parametrize("device,gpus", [("auto", 1), ("cpu", 0)])
def test_search_jobs_ask_for_one_gpu_unless_the_device_is_cpu(repo, tmp_path, device, gpus):
    """Sampling is the other GPU-heavy step (hours for 10,000 crystals on CPUs): it asks the executor for a GPU."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--config", f"results={tmp_path}",
           f'runtime={{"device": "{device}", "gpus": 2}}']
    res = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    text = res.stdout + res.stderr
    blocks = re.split(r"\n(?=(?:rule|checkpoint) \w+:)", text)
    search = [b for b in blocks if b.startswith("rule search:")]
    assert {re.search(r"campaign=(\w+)", b).group(1) for b in search} == {"qm9_gap", "mp_bulk"}
    # a trained generator's sampling asks for a GPU; a classical arm (no model) never does
    from invdesign.config.generators import registry

    arms = {t for (_, t), g in registry().items() if not g.trained}
    kind = {b: re.search(r"generator=(\w+)", b).group(1) for b in search}
    assert any(k in arms for k in kind.values()) and any(k not in arms for k in kind.values())
    assert all(re.search(rf"resources:.*\bgpu={0 if kind[b] in arms else gpus}\b", b) for b in search)
    train = [b for b in blocks if b.startswith("rule train_generator:")]  # training asks for runtime.gpus
    assert train and all(re.search(rf"resources:.*\bgpu={2 * bool(gpus)}\b", b) for b in train)
