"""Build generators from their declarations (:mod:`invdesign.generators`) without importing chemistry packages,
and save / rebuild trained models.

A checkpoint holds ``{"kind", "domain", "type", "model", "train", "meta", "state_dict", "train_info"}``:
``model`` is the typed model part (:mod:`invdesign.config.generators`) as a mapping, so a loaded model is
exactly the one that was trained. Sampling settings are never read from a checkpoint: they come from the
current config, through the sampling rule.
"""

from __future__ import annotations

from ..config.generators import PredictorModel, get_generator
from ..errors import InvdesignError

CHECKPOINT_FORMAT = 2


def build_generator(meta: dict, kind: str, model_cfg):
    """The ``kind`` generator of ``meta['domain']`` built from its typed model settings (ValueError when no such
    generator is declared)."""
    plugin = get_generator(meta["domain"], kind)
    if not plugin.trained:
        raise ValueError(f"the {meta['domain']} {kind} generator is a classical arm: it has no model to build")
    if not isinstance(model_cfg, plugin.model):
        raise TypeError(f"{meta['domain']} {kind} takes {plugin.model.__name__}, not {type(model_cfg).__name__}; "
                        "build it with invdesign.config.model_settings")
    return plugin.load_model_class()(meta, model_cfg)


def checkpoint(kind: str, model, meta: dict, *, generator_type: str | None = None, train=None,
               train_info: dict | None = None) -> dict:
    """What a training rule saves: everything :func:`load_checkpoint` needs to rebuild ``model``."""
    return {"format": CHECKPOINT_FORMAT, "kind": kind, "domain": meta["domain"], "type": generator_type,
            "model": model.settings.to_dict(), "train": train.to_dict() if train is not None else None,
            "meta": meta, "state_dict": model.state_dict(), "train_info": train_info or {}}


def load_checkpoint(path, map_location="cpu"):
    """Rebuild a saved model (generator or predictor) in eval mode; returns ``(model, checkpoint dict)``."""
    import torch

    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001  (a truncated or foreign file)
        raise InvdesignError(f"{path}: cannot read this model file ({type(exc).__name__}: {exc}); re-train it with "
                             f"snakemake --cores 2 --force {path} (with your --configfile), then run again") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise InvdesignError(f"{path} was written by another version of invdesign; re-train it with snakemake "
                             "--forcerun train_generator train_predictor")
    if ckpt["kind"] == "predictor":
        from .predictor import GraphPropertyPredictor

        model = GraphPropertyPredictor(ckpt["meta"], PredictorModel.parse(ckpt["model"], "checkpoint model"))
    else:
        settings_cls = get_generator(ckpt["domain"], ckpt["type"]).model
        model = build_generator(ckpt["meta"], ckpt["type"], settings_cls.parse(ckpt["model"], "checkpoint model"))
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt
