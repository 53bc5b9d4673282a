"""Data-parallel training through torchrun (gloo on CPU): two processes train one predictor."""

import json

import torch

from invdesign.config.runtime import Runtime
from invdesign.io import torch_save
from invdesign.models.graphstore import pack
from tests.test_models_core import random_graph


def write_toy_graphs(path) -> None:
    """120 small random graphs (train 90 / val 15 / test 15) packed as the featurize step writes them."""
    graphs = [random_graph(n=4 + i % 4, seed=i) for i in range(120)]
    ys = torch.tensor([float(g.y) for g in graphs])
    meta = {"domain": "molecules", "node_dim": 5, "edge_dim": 3, "y_mean": float(ys.mean()), "y_std": float(ys.std())}
    split = ["train"] * 90 + ["val"] * 15 + ["test"] * 15
    torch_save(pack(graphs, meta=meta, split=split, ids=[str(i) for i in range(120)]), path)


def toy_predictor_settings(epochs: int) -> dict:
    """What the train_predictor rule gets as params: the predictor's model and train parts."""
    from invdesign.config import parse_predictor

    return parse_predictor({"hidden": 16, "layers": 2, "epochs": epochs, "batch_size": 16, "lr": 0.003},
                           "predictor", "test").training_params()


def test_torchrun_ddp_trains_rank0_writes_and_the_ranks_log_reaches_the_rule_log(tmp_path, monkeypatch):
    """runtime.gpus = 2 goes through the training rules' launcher (torchrun, gloo); what the ranks print lands in
    the rule's log file, not only on the job's stdout (which a SLURM executor deletes once the job succeeds)."""
    from invdesign.pipeline import launch
    from invdesign.pipeline.train import fit_predictor
    from invdesign.pipeline.glue import setup_logging

    write_toy_graphs(tmp_path / "graphs.pt")
    camp = toy_predictor_settings(epochs=3)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    rule_log = tmp_path / "train_predictor.log"
    setup_logging(str(rule_log))
    try:
        metrics = launch.train("predictor", fit_predictor, "ddp", camp, Runtime(device="cpu", gpus=2),
                               str(tmp_path / "graphs.pt"), str(tmp_path / "p.pt"), str(tmp_path / "m.json"))
    finally:
        setup_logging(None)
    assert metrics["processes"] == 2 and metrics["epochs_run"] == 3 and "test_mae" in metrics
    assert metrics == json.loads((tmp_path / "m.json").read_text())
    text = rule_log.read_text()
    assert "launching DDP training" in text and "x 2 processes (DDP)" in text, text[-2000:]
    ckpt = torch.load(tmp_path / "p.pt", weights_only=False)
    assert ckpt["kind"] == "predictor"
    assert not (tmp_path / "p.pt.job.json").exists()


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
