"""Launching training: single-node torchrun, multi-node torchrun under SLURM, and the resources a rule asks for."""

import json
import os
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from invdesign.config.runtime import Runtime
from invdesign.errors import InvdesignError
from invdesign.io import torch_save
from invdesign.models.graphstore import pack
from invdesign.pipeline.launch import torchrun_command, train_resources, uses_torchrun
from tests.test_models_core import random_graph

SLURM_ENV = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NUM_NODES": "2", "SLURMD_NODENAME": "127.0.0.1"}


def test_single_node_is_standalone_torchrun():
    cmd = torchrun_command("generator", "j.json", "g.pt", "m.pt", "m.json", Runtime(gpus=4, nodes=1), env={})
    assert cmd[:4] == [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    assert "--nproc_per_node=4" in cmd and cmd[cmd.index("--job") + 1] == "j.json"
    assert uses_torchrun(Runtime(gpus=2)) and uses_torchrun(Runtime(gpus=1, nodes=2)) and not uses_torchrun(Runtime())


def test_multi_node_needs_a_slurm_allocation():
    with pytest.raises(InvdesignError, match="not inside a SLURM allocation.*workflow/profiles/slurm"):
        torchrun_command("generator", "j", "g", "m", "x", Runtime(gpus=4, nodes=2), env={})
    with pytest.raises(InvdesignError, match="holds 1 node"):
        torchrun_command("generator", "j", "g", "m", "x", Runtime(gpus=4, nodes=2),
                         env={"SLURM_JOB_ID": "1", "SLURM_JOB_NUM_NODES": "1"})


def test_multi_node_command_is_one_torchrun_per_node_with_a_rendezvous():
    cmd = torchrun_command("predictor", "j", "g", "m", "x", Runtime(gpus=4, nodes=2, rendezvous_port=29123),
                           env=SLURM_ENV)
    assert cmd[0] == "srun" and "--nodes=2" in cmd and "--ntasks-per-node=1" in cmd
    tr = cmd[cmd.index(sys.executable):]
    assert tr[1:3] == ["-m", "torch.distributed.run"] and "--standalone" not in tr
    assert {"--nnodes=2", "--nproc_per_node=4", "--rdzv-backend=c10d", "--rdzv-endpoint=127.0.0.1:29123",
            "--rdzv-id=invdesign-4242"} <= set(tr)


def test_train_resources():
    assert train_resources(1, 1) == {"gpu": 1}
    assert train_resources(0, 1) == {"gpu": 0}
    multi = train_resources(4, 3)
    assert multi["nodes"] == 3 and multi["tasks"] == 3 and multi["gres"] == "gpu:4" and "gpu" not in multi
    assert "gres" not in train_resources(0, 2)


class _Resources(dict):
    __getattr__ = dict.get


def test_slurm_plugin_turns_resources_into_sbatch_options():
    sub = pytest.importorskip("snakemake_executor_plugin_slurm.submit_string")
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    params = {"run_uuid": "u", "slurm_logfile": "l", "comment_str": "c", "account": "", "partition": "",
              "workdir": "/w"}

    def sbatch(res):
        job = SimpleNamespace(resources=_Resources(res, runtime=60, mem_mb=1000), threads=8, is_group=lambda: False)
        return sub.get_submit_command(job, params) + set_gres_string(job)

    multi = sbatch(train_resources(4, 2)).split()
    assert {"--nodes=2", "--ntasks=2", "--gres=gpu:4", "--cpus-per-task=8"} <= set(multi)
    assert not any(a.startswith("--ntasks-per-gpu") for a in multi)
    assert "--gpus=1" in sbatch(train_resources(1, 1)).split()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_node_rendezvous_trains_one_model(tmp_path, repo):
    """Two torchrun agents (two 'nodes' on this machine) from the multi-node command meet and train together."""
    graphs = [random_graph(n=4 + i % 4, seed=i) for i in range(80)]
    ys = torch.tensor([float(g.y) for g in graphs])
    meta = {"domain": "molecules", "node_dim": 5, "edge_dim": 3, "y_mean": float(ys.mean()), "y_std": float(ys.std())}
    torch_save(pack(graphs, meta=meta, split=["train"] * 60 + ["val"] * 10 + ["test"] * 10,
                    ids=[str(i) for i in range(80)]), tmp_path / "graphs.pt")
    runtime = Runtime(device="cpu", gpus=1, nodes=2, rendezvous_port=_free_port())
    from tests.test_ddp import toy_predictor_settings

    settings = toy_predictor_settings(epochs=2)
    job = {"name": "nodes", "settings": settings, "runtime": runtime.to_dict()}
    (tmp_path / "job.json").write_text(json.dumps(job))
    cmd = torchrun_command("predictor", str(tmp_path / "job.json"), str(tmp_path / "graphs.pt"),
                           str(tmp_path / "p.pt"), str(tmp_path / "m.json"), runtime, env=SLURM_ENV)
    per_node = cmd[cmd.index(sys.executable):]  # what srun starts on each node
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(per_node, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["processes"] == 2 and metrics["epochs_run"] == 2
    assert torch.load(tmp_path / "p.pt", weights_only=False)["kind"] == "predictor"
