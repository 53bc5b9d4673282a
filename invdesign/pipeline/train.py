"""Rules ``train_generator`` and ``train_predictor``: torch and torch-geometric only, so they run on GPU nodes
without chemistry packages. Each job trains in this process, or data-parallel under torchrun when
``runtime.gpus`` / ``runtime.nodes`` ask for several processes (:mod:`invdesign.pipeline.launch`).

A job's params are the model and train parts of its settings (:mod:`invdesign.config.generators`): changing
how to sample never re-runs training."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..artifacts import load_graphs
from ..config.generators import PredictorModel, PredictorTrain, generator_from_training_params
from ..config.runtime import Runtime
from ..io import torch_save, write_json
from . import launch

log = logging.getLogger("invdesign")


def train_generator(*, campaign: str, generator: dict, runtime: dict, graphs: str, model: str,
                    metrics: str) -> dict:
    """Rule entry: ``generator`` is :meth:`Generator.training_params`."""
    return launch.train("generator", fit_generator, campaign, generator, Runtime.parse(runtime, "runtime"), graphs,
                        model, metrics)


def train_predictor(*, campaign: str, predictor: dict, runtime: dict, graphs: str, model: str,
                    metrics: str) -> dict:
    """Rule entry: ``predictor`` is :meth:`Predictor.training_params`."""
    return launch.train("predictor", fit_predictor, campaign, predictor, Runtime.parse(runtime, "runtime"), graphs,
                        model, metrics)


def _fit_and_save(kind: str, model, data, train, runtime: Runtime, out_path: str, metrics_path: str, name: str,
                  generator_type: str | None = None) -> dict:
    from ..device import resolve_device
    from ..models.registry import checkpoint
    from ..models.train import fit, is_main_process, world

    device = resolve_device(runtime.device)
    resume, every = f"{out_path}.resume", runtime.checkpoint_minutes  # 0: never
    info = fit(model, data.part("train"), data.part("val"), train, device=device, name=name,
               workers=runtime.loader_workers, checkpoint=resume if every else None, checkpoint_minutes=every)
    model.cpu()
    metrics = {"kind": kind, "best_epoch": info["best_epoch"], "best_val": info["best_val"],
               "epochs_run": len(info["history"]), "seconds": info["seconds"], "device": info["device"],
               "processes": world()[2], "resumed_after_epoch": info["resumed_from"],
               "final": info["history"][-1] if info["history"] else {}}
    if is_main_process():  # under torchrun every process holds the same weights; one writes them
        torch_save(checkpoint(kind, model, data.meta, generator_type=generator_type, train=train,
                              train_info={k: v for k, v in info.items() if k != "history"}), out_path)
        write_json(metrics, metrics_path)
        Path(resume).unlink(missing_ok=True)  # the model is kept: its checkpoint has served
    return metrics


def fit_generator(name: str, settings: dict, runtime: Runtime, graphs: str, model: str, metrics: str) -> dict:
    """Train the generator of ``settings`` (:meth:`Generator.training_params`) in this process (one DDP rank
    under torchrun) and save it."""
    from ..models.registry import build_generator
    from ..models.train import seed_everything

    gen = generator_from_training_params(settings)
    data = load_graphs(graphs)
    seed_everything(gen.train.seed)  # the initial weights too come from the config's seed
    net = build_generator(data.meta, gen.type, gen.model)
    return _fit_and_save("generator", net, data, gen.train, runtime, model, metrics, f"{name}/{gen.type}",
                         generator_type=gen.type)


def fit_predictor(name: str, settings: dict, runtime: Runtime, graphs: str, model: str, metrics: str) -> dict:
    """Train the independent property predictor of ``settings`` (:meth:`Predictor.training_params`), save it
    and add its held-out test error to the metrics."""
    from ..device import resolve_device
    from ..models.predictor import GraphPropertyPredictor, predict_graphs
    from ..models.train import is_main_process, seed_everything

    m, t = PredictorModel.parse(settings["model"], "predictor"), PredictorTrain.parse(settings["train"], "predictor")
    data = load_graphs(graphs)
    seed_everything(t.seed)
    net = GraphPropertyPredictor(data.meta, m)
    out = _fit_and_save("predictor", net, data, t, runtime, model, metrics, f"{name}/predictor")
    test = data.part("test")
    if test and is_main_process():
        pred = predict_graphs(net, test, resolve_device(runtime.device)).numpy()
        y = np.array([float(g.y.view(-1)[0]) for g in test])
        out.update(test_mae=float(np.mean(np.abs(pred - y))), test_n=len(test),
                   test_r2=float(1 - np.sum((pred - y) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-12)))
        log.info("predictor test MAE %.4g (R2 %.3f) on %d held-out examples", out["test_mae"], out["test_r2"],
                 len(test))
        write_json(out, metrics)
    return out
