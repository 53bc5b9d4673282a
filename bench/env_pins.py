"""Turn the conda environment files (envs/*.yaml) into pip requirements with the same versions, so that the
versions they pin can be installed from PyPI and the test suite run against them (bench/env_versions.sh).

conda-forge is unreachable from the machines this project is built on, so no conda solver checks the env
files here; this is the next best thing: the same package versions, resolved together (with what the PyPI
packages inside the env, chgnet and matcalc among them, require) and tested. A conda pin ``name=X.Y`` means
any X.Y.* release, and becomes ``pip-name==X.Y.*``.

    python -m bench.env_pins envs/chem.yaml envs/train.yaml > requirements-conda.txt
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import yaml

# conda-forge package name -> PyPI name, where they differ; None: not a Python package to install with pip
PYPI_NAME = {
    "python": None, "pip": None,
    "pytorch-cpu": "torch", "pytorch-gpu": "torch", "pytorch": "torch",
    "pytorch_geometric": "torch-geometric",
    "matplotlib-base": "matplotlib",
    "tblite-python": "tblite",
}
# conda-forge names that are the same on PyPI (a new dependency must be added here or to PYPI_NAME)
SAME_NAME = {"numpy", "scipy", "pandas", "pyarrow", "pyyaml", "jsonschema", "rdkit", "selfies", "pymatgen", "ase",
             "smact", "pooch", "monty", "setuptools"}


def _conda_to_pip(dep: str, env_file: str) -> str | None:
    spec = dep.split("#")[0].strip()
    name, op, version = re.match(r"^([A-Za-z0-9_.\-]+)\s*(=|==|<|>|<=|>=|!=)?\s*(.*)$", spec).groups()
    if name in PYPI_NAME:
        pip_name = PYPI_NAME[name]
    elif name in SAME_NAME:
        pip_name = name
    else:
        raise ValueError(f"{env_file}: no PyPI name known for the conda package {name!r}; add it to PYPI_NAME or "
                         f"SAME_NAME in bench/env_pins.py")
    if pip_name is None:
        return None
    if op == "=":  # conda: X.Y matches X.Y.*
        return f"{pip_name}=={version}" if version.count(".") >= 2 else f"{pip_name}=={version}.*"
    return f"{pip_name}{op or ''}{version}"


def pip_requirements(env_file: str | Path, repo: str | Path = ".") -> list[str]:
    """pip requirement lines for one env file; its ``-e ..[extra]`` becomes ``-e REPO[extra]``."""
    spec = yaml.safe_load(Path(env_file).read_text())
    out = []
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):
            for line in dep.get("pip", []):
                line = line.split("#")[0].strip()
                if line.startswith("-e .."):
                    line = f"-e {Path(repo).resolve()}{line[len('-e ..'):]}"
                out.append(line)
        else:
            req = _conda_to_pip(str(dep), str(env_file))
            if req:
                out.append(req)
    return out


def merged_requirements(files, repo: str | Path = ".", extras=("workflow", "test")) -> list[str]:
    """The requirements of several env files in one list: each line once, and the env files' editable installs
    of this project merged into one ``-e REPO[extras]`` (pip refuses the same project twice). The default
    ``extras`` add what runs outside the rule environments (snakemake, as the user installed it) and pytest,
    for the tests. The executor plugins are left out: they too run outside, and the SLURM plugin needs a newer
    numpy than the env files pin."""
    lines: list[str] = []
    wanted = set(extras)
    for f in files:
        for line in pip_requirements(f, repo):
            if line.startswith("-e "):
                wanted |= set(re.findall(r"\[(.*)\]", line)[0].split(",")) if "[" in line else set()
            elif line not in lines:
                lines.append(line)
    return lines + [f"-e {Path(repo).resolve()}[{','.join(sorted(wanted))}]"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", default=["envs/chem.yaml", "envs/train.yaml"], help="conda env files")
    print("\n".join(merged_requirements(ap.parse_args(argv).files)))


if __name__ == "__main__":
    main()
