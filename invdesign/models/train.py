"""A small, device-neutral training loop shared by every model.

A model plugs in by providing ``loss(batch) -> (scalar tensor, {name: float})``.
The loop keeps the weights with the best validation loss, logs one progress line
per epoch (with elapsed time and ETA), and can stop early on a patience or a
wall-clock budget so that small CPU configs finish in predictable time.

With ``checkpoint=`` it saves its whole state (weights, optimiser, schedule, best weights, history and
every process's random-number state) at epoch ends, at most every ``checkpoint_minutes``, and a later
call with the same run resumes from there: a job killed by a cluster's time limit or preemption loses at
most that much training, and the resumed run ends with the same weights as an uninterrupted one (bit for bit
on the CPU; on a GPU up to the run-to-run noise of CUDA's atomic scatter-adds).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import random
import time
from collections import defaultdict

import torch
from torch.utils.data import RandomSampler
from torch_geometric.loader import DataLoader

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def world() -> tuple[int, int, int]:
    """(rank, local rank, world size) under torchrun; (0, 0, 1) otherwise."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
            int(os.environ.get("WORLD_SIZE", 1)))


def is_main_process() -> bool:
    return world()[0] == 0


class _Loss(torch.nn.Module):
    """Routes ``model.loss`` through ``forward`` so DistributedDataParallel can synchronise gradients."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, batch):
        return self.model.loss(batch)


def _setup_distributed(device):
    rank, local, size = world()
    if size == 1:
        return device, None
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device, dist


def _run_epoch(model, loader, device, optimiser=None, grad_clip=1.0, loss_fn=None):
    training = optimiser is not None
    model.train(training)
    sums: dict[str, float] = defaultdict(float)
    n = 0
    with torch.set_grad_enabled(training):
        for batch in loader:
            batch = batch.to(device)
            loss, metrics = (loss_fn or model.loss)(batch)
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


def fit(model, train_set, val_set, train, *, device, workers: int, name: str = "model",
        checkpoint: str | None = None, checkpoint_minutes: float = 0.0, grad_clip: float = 1.0) -> dict:
    """Train ``model`` in place with the ``train`` settings (:class:`~invdesign.config.generators.TrainSettings`:
    epochs, batch size, learning rate, weight decay, patience, time budget, seed); return its history and the
    epoch kept. ``workers``: data-loader processes (``runtime.loader_workers``).

    Under ``torchrun`` (WORLD_SIZE > 1) this is data-parallel training with DistributedDataParallel:
    each process takes ``batch_size`` graphs per step from its shard, gradients are averaged, and
    every process ends with the same weights. Only rank 0 logs.

    ``checkpoint``: a file (shared by all processes) to resume from and to save to at an epoch end at most every
    ``checkpoint_minutes`` (0: at every epoch end), see the module's doc; ``max_minutes`` then counts the training
    time of every attempt together. The caller deletes the file once it has kept the trained model.
    """
    epochs, batch_size, lr, seed = train.epochs, train.batch_size, train.lr, train.seed
    weight_decay, patience, max_minutes = train.weight_decay, train.patience, train.max_minutes
    seed_everything(seed)
    device, dist = _setup_distributed(device)
    rank, local, size = world()
    gen = torch.Generator().manual_seed(seed)
    run_key = _run_key(model, name, epochs, batch_size, lr, weight_decay, grad_clip, seed, size,
                       len(train_set), len(val_set))
    resumed = _load_checkpoint(checkpoint, run_key, dist, device) if checkpoint else None
    if resumed:
        model.load_state_dict(resumed["model"])
    model.to(device)
    sampler, loss_fn = None, None
    if dist is not None:
        from torch.nn.parallel import DistributedDataParallel
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(train_set, num_replicas=size, rank=rank, shuffle=True, seed=seed)
        # searching for parameters without a gradient costs a pass over the autograd graph every step: only models
        # that have such parameters ask for it (DDP stops with an error if one that does not ask has them)
        loss_fn = DistributedDataParallel(_Loss(model), device_ids=[local] if device.type == "cuda" else None,
                                          find_unused_parameters=getattr(model, "ddp_find_unused_parameters", False))
    # worker processes collate batches in parallel: on a GPU the collation, not the model, is the bottleneck
    loader_kw = {"num_workers": workers, "persistent_workers": workers > 0,
                 "pin_memory": device.type == "cuda" and workers > 0}
    # ``gen`` shuffles; each loader draws its workers' base seed from its own generator, so that creating a loader's
    # iterator (every epoch, or once with persistent workers) never advances the random streams a checkpoint keeps
    train_loader = DataLoader(train_set, batch_size=batch_size,
                              sampler=sampler or RandomSampler(train_set, generator=gen),
                              generator=torch.Generator().manual_seed(seed + 1), **loader_kw)
    val_loader = DataLoader(val_set, batch_size=batch_size, generator=torch.Generator().manual_seed(seed + 2),
                            **loader_kw) if len(val_set) else None
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(epochs, 1), eta_min=lr * 0.05)
    best, best_state, best_epoch, history = math.inf, None, -1, []
    first, before = 1, 0.0  # first epoch of this attempt; training seconds of earlier attempts
    start = last_save = time.monotonic()
    say = log.info if rank == 0 else log.debug
    say("%s: training %d parameters on %s%s; %d train / %d val graphs, %d epochs", name,
        sum(p.numel() for p in model.parameters()), device, f" x {size} processes (DDP)" if size > 1 else "",
        len(train_set), len(val_set), epochs)
    if resumed:
        optimiser.load_state_dict(resumed["optimiser"])
        scheduler.load_state_dict(resumed["scheduler"])
        best, best_state, best_epoch = resumed["best"], resumed["best_state"], resumed["best_epoch"]
        history, before, first = resumed["history"], resumed["seconds"], resumed["epoch"] + 1
        _set_rng(resumed["rng"][rank], gen, device)
        say("%s: resumed from %s after epoch %d (%.0fs of training so far)", name, checkpoint, resumed["epoch"],
            before)
    for epoch in range(first, epochs + 1):
        if hasattr(model, "set_epoch"):
            model.set_epoch(epoch, epochs)
        if sampler is not None:
            sampler.set_epoch(epoch)
        tr = _run_epoch(model, train_loader, device, optimiser, grad_clip, loss_fn)
        va = _run_epoch(model, val_loader, device) if val_loader else tr
        scheduler.step()
        history.append({"epoch": epoch, **{f"train_{k}": v for k, v in tr.items()},
                        **{f"val_{k}": v for k, v in va.items()}})
        score = va.get("select", va["loss"])
        if score < best:
            best, best_epoch = score, epoch
            best_state = copy.deepcopy(model.state_dict())
        now = time.monotonic()
        elapsed = before + now - start
        eta = (now - start) / (epoch - first + 1) * (epochs - epoch)
        say("%s epoch %d/%d  train %s | val %s  [%.0fs elapsed, ETA %.0fs]", name, epoch, epochs,
            _fmt(tr), _fmt(va), elapsed, eta)
        stop = ""
        if patience and epoch - best_epoch >= patience:
            stop = f"no validation improvement for {patience} epochs"
        elif max_minutes and elapsed > 60 * max_minutes:
            stop = f"time budget of {max_minutes:.1f} min reached"
        save = bool(checkpoint) and not stop and epoch < epochs and now - last_save >= 60 * checkpoint_minutes
        if dist is not None:  # every process must stop (and save) at the same epoch: rank 0 decides
            rank0_stops, save = _rank0_decides(dist, device, stop, save)
            stop = stop or ("rank 0 stopped" if rank0_stops else "")
        if save:
            state = {"key": run_key, "epoch": epoch, "model": model.state_dict(), "optimiser": optimiser.state_dict(),
                     "scheduler": scheduler.state_dict(), "best": best, "best_state": best_state,
                     "best_epoch": best_epoch, "history": history, "seconds": elapsed}
            _save_checkpoint(checkpoint, state, gen, device, dist)
            last_save = time.monotonic()
        if stop:
            say("%s: %s; stopping", name, stop)
            break
    if dist is not None:
        _check_replicas_agree(model, dist, device, name)
    if best_state is not None:
        model.load_state_dict(best_state)
    return {"history": history, "best_epoch": best_epoch, "best_val": best,
            "seconds": before + time.monotonic() - start, "device": str(device), "resumed_from": first - 1}


def _rank0_decides(dist, device, *flags) -> list[bool]:
    """Rank 0's truth values of ``flags`` on every process (each process passes its own; rank 0's are kept)."""
    t = torch.tensor([1.0 if f else 0.0 for f in flags], device=device)
    dist.broadcast(t, src=0)
    return [bool(v) for v in t.tolist()]


def _run_key(model, *parts) -> str:
    """What must match for a checkpoint to continue this run: the settings that shape the trajectory, the
    data sizes, the number of processes and the model's parameter names and shapes."""
    shapes = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    return hashlib.sha256(json.dumps([list(map(str, parts)), shapes]).encode()).hexdigest()[:16]


def _rng_state(gen, device) -> dict:
    import numpy as np

    state = {"torch": torch.get_rng_state(), "loader": gen.get_state(), "numpy": np.random.get_state(),
             "python": random.getstate()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng(state: dict, gen, device) -> None:
    import numpy as np

    torch.set_rng_state(state["torch"])
    gen.set_state(state["loader"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _save_checkpoint(path: str, state: dict, gen, device, dist) -> None:
    """Every process's random state goes to rank 0, which writes the file atomically."""
    mine = _rng_state(gen, device)
    if dist is not None:
        every = [None] * dist.get_world_size()
        dist.all_gather_object(every, mine)
    else:
        every = [mine]
    if world()[0] == 0:
        from ..io import torch_save  # torch and the standard library only

        torch_save(dict(state, rng=every), path)
        log.info("checkpoint after epoch %d -> %s", state["epoch"], path)


def _load_checkpoint(path: str, run_key: str, dist, device) -> dict | None:
    """The saved state when ``path`` holds a checkpoint of this very run, else None (a checkpoint of other
    settings is ignored, and overwritten at the next save). Rank 0 decides for every process."""
    state, why = None, ""
    if os.path.exists(path):
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
            if state.get("key") != run_key:
                state, why = None, "it is from other settings or data"
        except Exception as exc:  # a truncated file cannot come from the atomic writer, but be safe
            state, why = None, f"it cannot be read ({exc})"
    if dist is not None:
        if not _rank0_decides(dist, device, state is not None)[0]:
            state = None
        elif state is None:
            raise RuntimeError(f"rank {world()[0]} cannot read the checkpoint {path} that rank 0 resumes from")
    if why and world()[0] == 0:
        log.warning("not resuming from %s: %s; training from the start", path, why)
    return state


def _check_replicas_agree(model, dist, device, name: str) -> None:
    """Data-parallel replicas must end with the same weights: a model whose gradients DDP failed to average
    (a parameter used outside the wrapped forward, say) would drift apart silently. Compare a fingerprint of
    the weights across processes and stop with a clear error if they differ."""
    flat = torch.cat([p.detach().reshape(-1).double() for p in model.parameters()])
    probe = torch.arange(1, flat.numel() + 1, dtype=torch.float64, device=flat.device).sin()
    mine = torch.stack([flat.sum(), flat.abs().sum(), (flat * probe).sum()]).to(device)
    every = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(every, mine)
    spread = (torch.stack(every) - mine).abs().max().item()
    scale = max(mine.abs().max().item(), 1.0)
    if spread > 1e-6 * scale:
        raise RuntimeError(f"{name}: the {len(every)} data-parallel processes ended with different weights "
                           f"(fingerprint spread {spread:.3g}); DDP did not synchronise this model's gradients")
    log.debug("%s: the %d data-parallel replicas agree", name, len(every))


def _fmt(metrics: dict) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
