"""What a GPU training node runs imports and runs with torch and torch-geometric only: no rdkit, pymatgen, ase,
snakemake (a model is trained and sampled with those packages blocked)."""

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
# and they run: train the crystal diffusion model a little, then sample it through its sampler
import math, torch
from torch_geometric.data import Data
from invdesign.config import model_settings
from invdesign.config.generators import CrystalDiffusionSample, TrainSettings
from invdesign.models.registry import build_generator
from invdesign.models.train import fit
from invdesign.sampling import SampleRequest, make_sampler
meta = {{"domain": "crystals", "max_atoms": 2, "elements": ["Na", "Cl"], "lattice_mean": [1.0] * 6,
        "lattice_std": [0.1] * 6, "natoms_hist": [0, 0, 1], "y_mean": 0.0, "y_std": 1.0}}
cells = [Data(types_t=torch.tensor([[0, 1]]), frac_t=torch.tensor([[[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]]),
              lat_t=torch.zeros(1, 6), y=torch.tensor([float(i % 3)]), num_nodes=2) for i in range(32)]
model = build_generator(meta, "diffusion", model_settings("crystals", "diffusion", {{"hidden": 16, "layers": 1,
                                                                                      "diffusion_steps": 20}}))
fit(model, cells[:24], cells[24:], TrainSettings(epochs=1, batch_size=8, lr=1e-3),
    device=torch.device("cpu"), workers=0)
out = make_sampler("diffusion", model.eval(), CrystalDiffusionSample.parse({{"n_samples": 4, "sample_steps": 3}}))
samples = out.sample(SampleRequest(target={{"min": 1.0}}, train=cells))
assert len(samples) == 4 and samples.structures.types.shape == (4, 2)
print(len(names))
"""


def test_models_sampling_and_training_import_without_chemistry_packages():
    res = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert int(res.stdout.strip()) >= 20
