"""Settings of where and how to compute (the config's ``runtime:``). Standard library only."""

from __future__ import annotations

from dataclasses import dataclass

from ..device import DEVICE_PATTERN
from .spec import Spec, setting


@dataclass(frozen=True, kw_only=True)
class Runtime(Spec):
    __doc_line__ = "Where and how to compute. Not part of the science; results do not depend on it beyond float noise."
    device: str = setting("auto", pattern=DEVICE_PATTERN,
                          doc="auto = CUDA when present; cuda fails clearly when no GPU is visible")
    threads: int = setting(2, ge=1, doc="torch CPU threads per job")
    loader_workers: int = setting(0, ge=0, doc="data-loader processes per training job (batch collation); 4-8 "
                                               "keeps a GPU busy")
    gpus: int = setting(1, ge=1, doc="processes per node of a training job; above 1, training runs as torchrun DDP "
                                     "(one process per GPU, or gloo on CPU)")
    nodes: int = setting(1, ge=1, doc="nodes per training job; above 1, torchrun runs on each node of a SLURM "
                                      "allocation (slurm profile) and the ranks meet at a c10d rendezvous")
    rendezvous_port: int = setting(29500, ge=1024, le=65535, doc="TCP port of the c10d rendezvous on the first "
                                                                 "node (multi-node training)")
    checkpoint_minutes: float = setting(10.0, ge=0, doc="training saves a resumable checkpoint "
                                        "(<model>.pt.resume) at an epoch end at most this often; a rerun after a "
                                        "time limit, preemption or crash continues from it. 0 = never")
