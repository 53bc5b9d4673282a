"""Map (domain, generator type) to model classes without importing chemistry packages."""

from __future__ import annotations

import importlib

GENERATORS = {
    ("molecules", "vae"): ("invdesign.models.mol_vae", "MolVAE"),
    ("molecules", "diffusion"): ("invdesign.models.graph_diffusion", "GraphDiffusion"),
    ("molecules", "ebm"): ("invdesign.models.graph_ebm", "GraphEBM"),
    ("crystals", "vae"): ("invdesign.models.crystal_vae", "CrystalVAE"),
    ("crystals", "diffusion"): ("invdesign.models.crystal_diffusion", "CrystalDiffusion"),
    ("crystals", "ebm"): ("invdesign.models.crystal_ebm", "CrystalEBM"),
}


def generator_class(domain: str, kind: str):
    try:
        module, name = GENERATORS[(domain, kind)]
    except KeyError:
        raise ValueError(f"no generator {kind!r} for domain {domain!r}; known: {sorted(GENERATORS)}") from None
    return getattr(importlib.import_module(module), name)


def build_generator(meta: dict, cfg: dict):
    return generator_class(meta["domain"], cfg.get("type", "vae"))(meta, cfg)


def load_checkpoint(path, map_location="cpu"):
    """Rebuild a saved model from ``{"kind", "state_dict", "meta", "cfg"}``."""
    import torch

    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    if ckpt["kind"] == "predictor":
        from .predictor import GraphPropertyPredictor

        model = GraphPropertyPredictor(ckpt["meta"], ckpt["cfg"])
    else:
        model = build_generator(ckpt["meta"], ckpt["cfg"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt
