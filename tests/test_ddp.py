"""Data-parallel training through torchrun (gloo on CPU): two processes train one predictor."""

import json
import subprocess
import sys

import torch

from invdesign.io import torch_save
from invdesign.models.graphstore import pack
from tests.test_models_core import random_graph


def test_torchrun_ddp_trains_and_rank0_writes(tmp_path, repo):
    graphs = [random_graph(n=4 + i % 4, seed=i) for i in range(120)]
    ys = torch.tensor([float(g.y) for g in graphs])
    meta = {"domain": "molecules", "node_dim": 5, "edge_dim": 3, "y_mean": float(ys.mean()), "y_std": float(ys.std())}
    split = ["train"] * 90 + ["val"] * 15 + ["test"] * 15
    torch_save(pack(graphs, meta=meta, split=split, ids=[str(i) for i in range(120)]), tmp_path / "graphs.pt")
    camp = {"predictor": {"hidden": 16, "layers": 2, "epochs": 3, "batch_size": 16, "lr": 0.003, "seed": 0,
                          "max_minutes": None, "patience": None, "weight_decay": 0.0}}
    (tmp_path / "job.json").write_text(json.dumps({"name": "ddp", "campaign": camp,
                                                   "runtime": {"device": "cpu", "gpus": 2}}))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "invdesign.pipeline.train_entry", "predictor", "--job", str(tmp_path / "job.json"),
           "--graphs", str(tmp_path / "graphs.pt"), "--model", str(tmp_path / "p.pt"),
           "--metrics", str(tmp_path / "m.json")]
    res = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["processes"] == 2 and metrics["epochs_run"] == 3 and "test_mae" in metrics
    assert "x 2 processes (DDP)" in res.stderr
    ckpt = torch.load(tmp_path / "p.pt", weights_only=False)
    assert ckpt["kind"] == "predictor"


class _TwoReplicas:
    """Stands in for torch.distributed: the other process's weight fingerprint is ours times (1 + drift)."""

    def __init__(self, drift):
        self.drift = drift

    def get_world_size(self):
        return 2

    def all_gather(self, out, mine):
        out[0].copy_(mine)
        out[1].copy_(mine * (1 + self.drift))


def test_replica_check_passes_in_step_and_stops_drifted_weights():
    import pytest

    from invdesign.models.train import _check_replicas_agree

    model = torch.nn.Linear(4, 3)
    _check_replicas_agree(model, _TwoReplicas(0.0), torch.device("cpu"), "m")
    with pytest.raises(RuntimeError, match="different weights"):
        _check_replicas_agree(model, _TwoReplicas(1e-3), torch.device("cpu"), "m")
