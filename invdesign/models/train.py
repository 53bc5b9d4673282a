"""A small, device-neutral training loop shared by every model.

A model plugs in by providing ``loss(batch) -> (scalar tensor, {name: float})``.
The loop keeps the weights with the best validation loss, logs one progress line
per epoch (with elapsed time and ETA), and can stop early on a patience or a
wall-clock budget so that small CPU configs finish in predictable time.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections import defaultdict

import torch
from torch_geometric.loader import DataLoader

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _run_epoch(model, loader, device, optimiser=None, grad_clip=1.0):
    training = optimiser is not None
    model.train(training)
    sums: dict[str, float] = defaultdict(float)
    n = 0
    with torch.set_grad_enabled(training):
        for batch in loader:
            batch = batch.to(device)
            loss, metrics = model.loss(batch)
            if training:
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                if grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                optimiser.step()
            size = int(batch.num_graphs)
            sums["loss"] += float(loss.detach()) * size
            for k, v in metrics.items():
                sums[k] += float(v) * size
            n += size
    return {k: v / max(n, 1) for k, v in sums.items()}


def fit(model, train_set, val_set, *, epochs: int, batch_size: int, lr: float, device,
        weight_decay: float = 0.0, patience: int | None = None, max_minutes: float | None = None,
        grad_clip: float = 1.0, seed: int = 0, name: str = "model") -> dict:
    """Train ``model`` in place; return its history and the epoch kept."""
    seed_everything(seed)
    model.to(device)
    gen = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=gen)
    val_loader = DataLoader(val_set, batch_size=batch_size) if len(val_set) else None
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(epochs, 1), eta_min=lr * 0.05)
    best, best_state, best_epoch, history = math.inf, None, -1, []
    start = time.monotonic()
    log.info("%s: training %d parameters on %s; %d train / %d val graphs, %d epochs",
             name, sum(p.numel() for p in model.parameters()), device, len(train_set), len(val_set), epochs)
    for epoch in range(1, epochs + 1):
        if hasattr(model, "set_epoch"):
            model.set_epoch(epoch, epochs)
        tr = _run_epoch(model, train_loader, device, optimiser, grad_clip)
        va = _run_epoch(model, val_loader, device) if val_loader else tr
        scheduler.step()
        history.append({"epoch": epoch, **{f"train_{k}": v for k, v in tr.items()},
                        **{f"val_{k}": v for k, v in va.items()}})
        score = va.get("select", va["loss"])
        if score < best:
            best, best_epoch = score, epoch
            best_state = copy.deepcopy(model.state_dict())
        elapsed = time.monotonic() - start
        eta = elapsed / epoch * (epochs - epoch)
        log.info("%s epoch %d/%d  train %s | val %s  [%.0fs elapsed, ETA %.0fs]", name, epoch, epochs,
                 _fmt(tr), _fmt(va), elapsed, eta)
        if patience and epoch - best_epoch >= patience:
            log.info("%s: no validation improvement for %d epochs; stopping", name, patience)
            break
        if max_minutes and elapsed > 60 * max_minutes:
            log.info("%s: time budget of %.1f min reached; stopping", name, max_minutes)
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return {"history": history, "best_epoch": best_epoch, "best_val": best,
            "seconds": time.monotonic() - start, "device": str(device)}


def _fmt(metrics: dict) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
