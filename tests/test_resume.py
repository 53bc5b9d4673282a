"""Training resumes from its checkpoint after an interruption (a cluster's time limit, preemption, a crash) and
ends with the same weights as a run that was never interrupted: in one process and data-parallel."""

import json
import logging
import subprocess

import pytest
import torch

import invdesign.models.train as train
from invdesign.config.generators import TrainSettings, VAEModel
from invdesign.config.runtime import Runtime
from tests.test_ddp import toy_predictor_settings, write_toy_graphs
from tests.test_models_core import ToyVAE, random_graph

CPU = torch.device("cpu")


class Interrupted(Exception):
    pass


def _graphs():
    graphs = [random_graph(n=5, seed=i) for i in range(120)]
    ys = torch.tensor([float(g.y) for g in graphs])
    return graphs, {"node_dim": 5, "edge_dim": 3, "y_mean": float(ys.mean()), "y_std": float(ys.std())}


def _vae(meta, init_seed):
    torch.manual_seed(init_seed)  # a resumed run must not depend on how its fresh model was initialised
    return ToyVAE(meta, VAEModel.parse({"latent_dim": 8, "hidden": 16, "layers": 2, "beta": 0.01}))


def _fit(model, graphs, workers, **kw):
    # the VAE draws noise every step and the loader shuffles: both random streams must resume exactly
    return train.fit(model, graphs[:100], graphs[100:], TrainSettings(epochs=5, batch_size=16, lr=3e-3, seed=3),
                     device=CPU, workers=workers, **kw)


@pytest.mark.parametrize("workers", [0, 2])  # 2: persistent loader processes, started once per attempt
def test_interrupted_fit_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, monkeypatch, workers):
    graphs, meta = _graphs()
    ref = _vae(meta, 0)
    ref_info = _fit(ref, graphs, workers)

    ckpt = tmp_path / "g.pt.resume"
    real, calls = train._run_epoch, {"train": 0}

    def dies_in_epoch_4(model, loader, device, optimiser=None, *args, **kw):
        if optimiser is not None:
            calls["train"] += 1
            if calls["train"] == 4:
                raise Interrupted
        return real(model, loader, device, optimiser, *args, **kw)

    monkeypatch.setattr(train, "_run_epoch", dies_in_epoch_4)
    with pytest.raises(Interrupted):
        _fit(_vae(meta, 0), graphs, workers, checkpoint=str(ckpt))
    assert torch.load(ckpt, weights_only=False)["epoch"] == 3  # saved at the end of epochs 1-3
    monkeypatch.setattr(train, "_run_epoch", real)

    resumed = _vae(meta, 1)
    info = _fit(resumed, graphs, workers, checkpoint=str(ckpt))
    assert info["resumed_from"] == 3 and ref_info["resumed_from"] == 0
    assert [h["val_loss"] for h in info["history"]] == [h["val_loss"] for h in ref_info["history"]]
    assert info["best_epoch"] == ref_info["best_epoch"]
    for (k, a), b in zip(ref.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_a_checkpoint_of_other_settings_is_not_resumed(tmp_path, caplog):
    graphs, meta = _graphs()
    ckpt = tmp_path / "g.pt.resume"
    train.fit(_vae(meta, 0), graphs[:100], graphs[100:], TrainSettings(epochs=3, batch_size=16, lr=3e-3), device=CPU,
              workers=0, checkpoint=str(ckpt))
    assert torch.load(ckpt, weights_only=False)["epoch"] == 2
    with caplog.at_level(logging.WARNING):
        info = train.fit(_vae(meta, 0), graphs[:100], graphs[100:], TrainSettings(epochs=3, batch_size=16, lr=1e-3),
                         device=CPU, workers=0, checkpoint=str(ckpt))
    assert info["resumed_from"] == 0 and len(info["history"]) == 3
    assert "other settings or data" in caplog.text


_DIES = """
import sys
import invdesign.models.train as t
real, calls = t._run_epoch, [0]
def dies(model, loader, device, optimiser=None, *a, **k):
    if optimiser is not None:
        calls[0] += 1
        if calls[0] == 3:
            raise SystemExit(3)  # every rank dies in epoch 3, as in a job killed at its time limit
    return real(model, loader, device, optimiser, *a, **k)
t._run_epoch = dies
from invdesign.pipeline.train_entry import main
sys.exit(main(sys.argv[1:]))
"""


def test_data_parallel_training_killed_mid_run_resumes_through_the_launcher(tmp_path, monkeypatch, repo):
    """Two gloo processes: killed in epoch 3, rerun through the training rules' launcher, they continue from the
    checkpoint of epoch 2 (every process's random state restored) and end where an uninterrupted run ends; the
    checkpoint is deleted once the model is saved."""
    from invdesign.pipeline import launch
    from invdesign.pipeline.train import fit_predictor

    write_toy_graphs(tmp_path / "graphs.pt")
    camp = toy_predictor_settings(epochs=4)
    runtime = Runtime(device="cpu", gpus=2, checkpoint_minutes=1e-9)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    paths = {k: str(tmp_path / k) for k in ("graphs.pt", "p.pt", "m.json", "ref.pt", "ref.json")}

    (tmp_path / "job.json").write_text(json.dumps({"name": "ddp", "settings": camp, "runtime": runtime.to_dict()}))
    (tmp_path / "dies.py").write_text(_DIES)
    cmd = launch.torchrun_command("predictor", str(tmp_path / "job.json"), paths["graphs.pt"], paths["p.pt"],
                                  paths["m.json"], runtime)
    i = cmd.index("-m", cmd.index("--nproc_per_node=2"))
    cmd[i:i + 2] = [str(tmp_path / "dies.py")]
    res = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and not (tmp_path / "p.pt").exists(), res.stderr[-2000:]
    assert torch.load(tmp_path / "p.pt.resume", weights_only=False)["epoch"] == 2

    metrics = launch.train("predictor", fit_predictor, "ddp", camp, runtime, paths["graphs.pt"], paths["p.pt"],
                           paths["m.json"])
    assert metrics["resumed_after_epoch"] == 2 and metrics["epochs_run"] == 4 and metrics["processes"] == 2
    assert not (tmp_path / "p.pt.resume").exists()
    ref = launch.train("predictor", fit_predictor, "ddp", camp, runtime, paths["graphs.pt"], paths["ref.pt"],
                       paths["ref.json"])
    assert ref["resumed_after_epoch"] == 0
    a = torch.load(paths["p.pt"], weights_only=False)["state_dict"]
    b = torch.load(paths["ref.pt"], weights_only=False)["state_dict"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert metrics["test_mae"] == ref["test_mae"]
