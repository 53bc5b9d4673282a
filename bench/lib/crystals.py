"""The bench's crystal campaign (MP elasticity, K_VRH toward a minimum): its generators, predictor and CHGNet
oracle as a config file would hold them, its data, the predictor's ranking of samples, the quality of a sample
batch, and the novelty of relaxed hits. ``python -m bench.crystals_generators`` trains and samples it; the other
crystal studies rank, check and analyse what it wrote."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .common import ROOT

#: the generators as a user writes them in a campaign's ``generators:`` list; the validator (Config.parse) routes
#: each key to the model, train or sample part and fills in the campaign defaults for the rest. ``property_heads``
#: is written out because the bench's VAE was trained with one property head, the model code's default before the
#: settings moved into invdesign/config (the campaign default is now 5)
GEN_CFG = {
    "diffusion": {"type": "diffusion", "hidden": 96, "layers": 3, "epochs": 400, "batch_size": 64, "lr": 0.001,
                  "diffusion_steps": 1000, "sample_steps": 100},
    "ebm": {"type": "ebm", "hidden": 64, "layers": 2, "epochs": 100, "batch_size": 64, "lr": 0.0005,
            "langevin_train_steps": 10},
    "vae": {"type": "vae", "latent_dim": 64, "hidden": 128, "epochs": 200, "batch_size": 64, "lr": 0.002,
            "property_heads": 1},
}
#: the campaign's independent GNN predictor (``predictor:``)
PREDICTOR_CFG = {"hidden": 128, "layers": 3, "epochs": 300, "batch_size": 64, "lr": 0.002}
#: wall-clock training budgets (minutes); ``--minutes`` overrides some or all of them
MINUTES = {"diffusion": 15, "ebm": 8, "vae": 4, "predictor": 3}
#: the product's CHGNet oracle (the campaign's ``oracle:`` block) with the bench's settings; each check adds who
#: gets an EOS fit (``eos_for``) and whether cells are scaled to their additive volume first (``rescale_volume``)
ORACLE_CFG = {"type": "chgnet", "fmax": 0.1, "max_steps": 300, "e_hull_max": 0.1}
#: where the MP elasticity download is mirrored and cached
DATA = {"mirror": str(ROOT.parent / "shared" / "data"), "cache": str(ROOT / "data" / "cache")}


def campaign(max_atoms: int = 20, target_min: float = 300.0, minutes: dict | None = None,
             guidance: float | None = None, epochs: dict | None = None):
    """The bench's crystal campaign, written as the mapping a config file holds and typed by the validator;
    ``minutes`` / ``epochs``: training budgets and epoch counts replacing the bench's for the models named."""
    from invdesign.config import Config

    minutes, epochs = MINUTES | (minutes or {}), epochs or {}
    gens = [GEN_CFG[k] | {"max_minutes": minutes[k]} | ({"epochs": epochs[k]} if k in epochs else {})
            | ({"guidance_scale": guidance} if guidance is not None and k == "diffusion" else {}) for k in GEN_CFG]
    raw = {"data": DATA, "campaigns": {"bench": {
        "domain": "crystals",
        "dataset": {"source": "mp_elasticity", "property_column": "bulk_modulus_gpa", "max_atoms": max_atoms,
                    "seed": 0},
        "target": {"min": target_min}, "split": {"val": 0.1, "test": 0.0, "seed": 0}, "featurize": {},
        "generators": gens, "predictor": PREDICTOR_CFG | {"max_minutes": minutes["predictor"]}
        | ({"epochs": epochs["predictor"]} if "predictor" in epochs else {}),
        "oracle": ORACLE_CFG}}}
    return Config.parse(raw, source="bench.lib.crystals").campaigns["bench"]


@functools.lru_cache(maxsize=1)
def known_cells():
    """Every MP elasticity cell (any size, every split): novelty in the bench is judged against all of them."""
    from invdesign.domains import get_domain

    return get_domain("crystals").load_known({"source": "mp_elasticity"}, mirror=DATA["mirror"],
                                             cache_dir=DATA["cache"])


def load(out: Path, camp):
    """(dataset table, GraphSet) of the campaign, prepared and featurized into ``out`` once (then reused)."""
    from invdesign.pipeline.data import campaign_data

    return campaign_data(camp, out, DATA)


def make_chgnet(camp, eos_for: str, rescale_volume: bool):
    """The workflow's CHGNet oracle (ChgnetOracle) with the bench's settings, for the campaign's target."""
    from invdesign.pipeline.verify import make_oracle

    return make_oracle("crystals", ORACLE_CFG | {"eos_for": eos_for, "rescale_volume": rescale_volume},
                       camp.target.to_dict(), camp.dataset.property_column)


def predicted(checked: pd.DataFrame, predictor, meta) -> np.ndarray:
    """The independent predictor's K (GPa) for each checked sample; NaN where no graph could be built."""
    from invdesign.domains import get_domain
    from invdesign.models.predictor import predict_graphs

    graphs = get_domain("crystals").featurize_like(checked, meta)
    ok = [i for i, g in enumerate(graphs) if g is not None]
    pred = np.full(len(graphs), np.nan)
    if ok:
        pred[ok] = predict_graphs(predictor, [graphs[i] for i in ok], torch.device("cpu")).numpy()
    return pred


def targeted_order(checked: pd.DataFrame, pred: np.ndarray, one_per_formula: bool = False) -> np.ndarray:
    """Row indices of the valid, unique, novel samples, the predictor's highest K first (the CHGNet check order);
    with ``one_per_formula`` only the best-ranked cell of each reduced formula (a diversity filter)."""
    vun = np.flatnonzero((checked["valid"] & checked["unique"] & checked["novel"]).to_numpy())
    order = vun[np.argsort(-pred[vun], kind="stable")]
    if one_per_formula:
        first = ~pd.Series(checked["formula"].to_numpy()[order]).duplicated().to_numpy()
        order = order[first]
    return order


def quality(df: pd.DataFrame, checked: pd.DataFrame) -> dict:
    n = len(df)
    built = checked["structure"].notna() if "structure" in checked else pd.Series(False, index=checked.index)
    return {"samples": n, "built": float(built.mean()),
            "structural_validity": float(checked.get("min_distance_ok", pd.Series(False)).fillna(False).mean()),
            "compositional_validity": float(checked.get("charge_neutral", pd.Series(False)).fillna(False).mean()),
            "validity": float(checked["valid"].mean()),
            "uniqueness": float(checked["unique"].sum() / max(checked["valid"].sum(), 1)),
            "novelty": float(checked["novel"].sum() / max(checked["unique"].sum(), 1))}


def label_hits(hits: list[dict], train: pd.DataFrame) -> None:
    """Adds ``novel`` (no training cell matches the relaxed structure), ``known_as`` (the matching cell's id) and
    ``duplicate_of`` (index of an earlier hit it matches, or None) to each hit, in place."""
    from invdesign.chem.crystals import known_matches, structure_to_record

    known = known_matches([h["structure"] for h in hits], train)
    # the earlier hits as a reference table of the campaign's matcher (same formula, StructureMatcher fit)
    earlier = pd.DataFrame({"id": [str(i) for i in range(len(hits))], "formula": [h["formula"] for h in hits],
                            "structure": [structure_to_record(h["structure"]) if h["structure"] is not None
                                          else None for h in hits]})
    for i, (h, k) in enumerate(zip(hits, known)):
        h["novel"], h["known_as"] = h["structure"] is not None and k is None, k
        prior = earlier.iloc[:i]
        dup = known_matches([h["structure"]], prior[prior["structure"].notna()])[0] if i else None
        h["duplicate_of"] = None if dup is None else int(dup)
