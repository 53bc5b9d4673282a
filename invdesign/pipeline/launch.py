"""How a training job is launched: in-process, torchrun on one node, or torchrun across SLURM nodes.

* ``runtime.gpus`` processes per node (one per GPU; gloo processes on a CPU-only node),
* ``runtime.nodes`` nodes. Above one node the job must run inside a SLURM allocation of that
  many nodes (the slurm profile asks for it through the rule's resources, see
  :func:`train_resources`); ``srun`` then starts one ``torchrun`` per node and the ranks meet
  at a c10d rendezvous on the job's first node.

Only the standard library here: the Snakefile imports it on machines without torch.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

from ..config.runtime import Runtime
from ..errors import InvdesignError

log = logging.getLogger(__name__)


def train_resources(gpus: int, nodes: int) -> dict:
    """Snakemake resources of a training rule for ``gpus`` GPUs per node on ``nodes`` nodes.

    One node: ``gpu`` (SLURM ``--gpus``, Kubernetes ``nvidia.com/gpu``). Several nodes, for
    snakemake-executor-plugin-slurm: ``nodes``, one task per node, ``gres=gpu:G`` per node, and
    ``mpi`` so that the plugin runs the job's script once on the first node instead of wrapping it
    in ``srun -n1`` (the script calls ``srun`` itself). ``tasks_per_gpu=0`` keeps the plugin from
    turning the task count into ``--ntasks-per-gpu``.
    """
    if nodes <= 1:
        return {"gpu": gpus}
    res = {"nodes": nodes, "tasks": nodes, "mpi": "srun", "tasks_per_gpu": 0}
    if gpus:
        res["gres"] = f"gpu:{gpus}"
    return res


def uses_torchrun(runtime: Runtime) -> bool:
    return runtime.gpus > 1 or runtime.nodes > 1


def torchrun_command(kind: str, job_file: str, graphs: str, model: str, metrics: str, runtime: Runtime,
                     env: dict | None = None) -> list[str]:
    """The command that trains ``kind`` ("generator" or "predictor") data-parallel under torchrun.

    Raises :class:`InvdesignError` when ``runtime.nodes`` > 1 outside a SLURM allocation.
    """
    env = os.environ if env is None else env
    nproc, nodes = runtime.gpus, runtime.nodes
    entry = ["-m", "invdesign.pipeline.train_entry", kind, "--job", job_file, "--graphs", graphs,
             "--model", model, "--metrics", metrics]
    if nodes <= 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *entry]
    job_id = env.get("SLURM_JOB_ID")
    if not job_id:
        raise InvdesignError(
            f"runtime.nodes is {nodes} but this job is not inside a SLURM allocation: run the workflow with "
            "--profile workflow/profiles/slurm (the training rules then ask for the nodes), or set runtime.nodes: 1")
    allocated = int(env.get("SLURM_JOB_NUM_NODES") or env.get("SLURM_NNODES") or nodes)
    if allocated < nodes:
        raise InvdesignError(f"runtime.nodes is {nodes} but the SLURM job {job_id} holds {allocated} node(s); "
                             f"ask for --nodes={nodes} or lower runtime.nodes")
    host = env.get("SLURMD_NODENAME") or socket.gethostname()  # the batch script runs on the first node
    return ["srun", f"--nodes={nodes}", f"--ntasks={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
            sys.executable, "-m", "torch.distributed.run", f"--nnodes={nodes}", f"--nproc_per_node={nproc}",
            "--rdzv-backend=c10d", f"--rdzv-endpoint={host}:{runtime.rendezvous_port}", f"--rdzv-id=invdesign-{job_id}", *entry]


def run_torchrun(kind: str, name: str, settings: dict, runtime: Runtime, graphs: str, model: str,
                 metrics: str) -> None:
    """Write the job description next to the model (a shared folder that every node sees) and run torchrun."""
    job_file = Path(f"{model}.job.json")
    job_file.parent.mkdir(parents=True, exist_ok=True)
    job_file.write_text(json.dumps({"name": name, "settings": settings, "runtime": runtime.to_dict()}))
    cmd = torchrun_command(kind, str(job_file), graphs, model, metrics, runtime)
    log.info("launching DDP training: %s", " ".join(cmd))
    try:
        code = _run_into_log(cmd)
    except FileNotFoundError as exc:
        raise InvdesignError(f"cannot launch {cmd[0]} for the training of {name}: {exc}") from None
    finally:
        job_file.unlink(missing_ok=True)
    if code:
        raise InvdesignError(f"torchrun training of {name} failed (exit {code}); see the log above")


def _run_into_log(cmd: list[str]) -> int:
    """Run ``cmd``, copying what it prints, line by line, to stderr and to the log files of the root logger.

    The ranks' progress (epochs, losses, errors) then lands in the rule's ``log:`` as it does for in-process
    training; otherwise it would reach only the job's stdout, which a cluster executor may delete.
    """
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        for line in proc.stdout:
            sys.stderr.write(line)
            for h in files:
                h.acquire()
                try:
                    if h.stream is not None:
                        h.stream.write(line)
                        h.stream.flush()
                finally:
                    h.release()
    finally:
        proc.stdout.close()
        if proc.poll() is None:  # we were interrupted: do not leave the ranks running
            proc.terminate()
    return proc.wait()


def train(kind: str, fit, name: str, settings: dict, runtime: Runtime, graphs: str, model: str, metrics: str) -> dict:
    """Train ``kind`` ("generator" or "predictor") with its training ``settings`` (model and train parts) as the
    training rules do: ``fit(name, settings, runtime, graphs, model, metrics)`` in this process, or the same under
    torchrun (``invdesign.pipeline.train_entry``) when ``runtime`` asks for several processes or nodes. Returns the
    metrics written to ``metrics``."""
    if uses_torchrun(runtime):
        run_torchrun(kind, name, settings, runtime, graphs, model, metrics)
        return json.loads(Path(metrics).read_text())
    return fit(name, settings, runtime, graphs, model, metrics)
