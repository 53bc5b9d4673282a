"""What a GPU training node runs imports torch and torch-geometric only: no rdkit, pymatgen, ase, snakemake."""

import subprocess
import sys

BLOCKED = ("rdkit", "pymatgen", "ase", "snakemake", "selfies", "chgnet", "matcalc", "tblite", "smact", "qm9pack")

CODE = f"""
import importlib, importlib.abc, pkgutil, sys
BLOCKED = {BLOCKED!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError("blocked on a GPU node: " + name)
sys.meta_path.insert(0, Block())
import invdesign.models, invdesign.sampling
names = [m.name for pkg in (invdesign.models, invdesign.sampling)
         for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + ".")]
names += ["invdesign.pipeline.train", "invdesign.pipeline.train_entry", "invdesign.pipeline.launch",
          "invdesign.artifacts", "invdesign.config", "invdesign.config.schema", "invdesign.device"]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_models_sampling_and_training_import_without_chemistry_packages():
    res = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert int(res.stdout.strip()) >= 20
