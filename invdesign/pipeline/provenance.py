"""Rule ``provenance``: what produced a campaign's results, in ``results/<campaign>/provenance.json``: the resolved
configuration, the git commit of the working directory (where it is a git checkout), the package version, the
versions of the tools that generated and judged the candidates ('not installed' where absent), the sha256 of each
trained model file and the compute device. Cheap: no model is loaded, versions come from package metadata."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from ..io import write_json

#: the tools whose versions are recorded (distribution names)
TOOLS = ("rdkit", "tblite", "pyscf", "gpu4pyscf", "chgnet", "sevenn", "matcalc", "pymatgen", "torch", "snakemake")


def tool_versions(names=TOOLS) -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_state(folder: str = ".") -> dict:
    """The commit checked out in ``folder`` and whether tracked files differ from it; None where no git repo."""
    def git(*args):
        return subprocess.run(["git", "-C", folder, *args], capture_output=True, text=True, timeout=20)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"git_commit": None, "git_dirty": None}
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": head.stdout.strip(), "git_dirty": dirty}


def device_in_use(requested: str | None) -> str:
    """The device the campaign's torch steps run on (runtime.device resolved as they resolve it), with the GPU name."""
    from ..device import resolve_device

    dev = resolve_device(requested)
    if dev.type == "cuda":
        import torch

        return f"{dev} ({torch.cuda.get_device_name(dev)})"
    return str(dev)


def write_provenance(*, campaign: str, config: dict, runtime: dict, models: list[str], provenance: str) -> dict:
    from .. import __version__

    out = {"campaign": campaign, "config": config, "runtime": runtime, "package_version": __version__,
           **git_state(), "tools": tool_versions(), "models": {str(p): sha256(p) for p in models},
           "device": device_in_use(runtime.get("device"))}
    write_json(out, provenance)
    return out
