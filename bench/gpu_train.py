"""Train every model of a campaign (each generator of its config, then the predictor) from its featurized
graphs on a chosen device, and time training and sampling.

Needs only torch + torch-geometric, so it runs on GPU nodes without rdkit/pymatgen; ``graphs`` may be
gzipped (``graphs.pt.gz``: the full QM9 graphs shrink from 270 MB to 12 MB, small enough to carry):

    python -m bench.gpu_train results/qm9_gap_full/data/graphs.pt --config config/molecules_gap.yaml \
        --campaign qm9_gap_full --device cuda --epochs 2 --out bench_out/

Per model it records epochs, seconds per epoch, training graphs per second, peak GPU memory and, where
``nvidia-smi`` is present, the mean GPU utilisation while that model trained; for the generators, the
sampling throughput (VAE: latents decoded per second; diffusion and EBM: graphs sampled per second with the
configured steps); for the predictor, the held-out MAE. The JSON file is rewritten after every model, so a
run cut short by a time limit still leaves what it measured.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import torch
import yaml

from bench.lib.common import provenance

#: the packages whose versions the report records
PACKAGES = ("torch", "torch-geometric", "numpy")

class GpuUtilisation:
    """Mean GPU utilisation (%, averaged over the GPUs) sampled once a second by ``nvidia-smi``."""

    def __init__(self):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = None

    def _poll(self):
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                per_gpu = [float(v) for v in out.split()]  # one line per GPU: their mean
                self.samples.append(sum(per_gpu) / len(per_gpu))
            except (OSError, ValueError, ZeroDivisionError, subprocess.SubprocessError):
                return
            self._stop.wait(1.0)

    def start(self):
        if torch.cuda.is_available() and shutil.which("nvidia-smi"):
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> dict:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self.samples:
            return {}
        busy = [s for s in self.samples if s > 0]
        return {"gpu_util_mean_pct": sum(self.samples) / len(self.samples),
                "gpu_util_busy_mean_pct": sum(busy) / len(busy) if busy else 0.0, "gpu_util_samples": len(self.samples)}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def sampling_rate(model, kind: str, device, count: int, sample_settings) -> dict:
    """Throughput of what the search step does with a trained generator (no chemistry decoding), with the
    campaign's sampling settings."""
    model.to(device).eval()
    gen = torch.Generator().manual_seed(0)
    if kind == "vae":
        z = torch.randn(max(count, 100), model.latent_dim, device=device)
        with torch.no_grad():
            model.decode(z[:100])  # warm-up
            _sync(device)
            t0 = time.monotonic()
            model.decode(z)
            _sync(device)
        return {"decode_latents_per_s": len(z) / (time.monotonic() - t0)}
    from invdesign.sampling import make_sampler

    kw = make_sampler(kind, model, sample_settings).model_kwargs()
    model.sample(min(count, 8), generator=gen, **kw)  # warm-up
    _sync(device)
    t0 = time.monotonic()
    model.sample(count, generator=gen, **kw)
    _sync(device)
    return {"sample_graphs_per_s": count / (time.monotonic() - t0), "sampled": count}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("graphs", help="graphs.pt of the campaign (or graphs.pt.gz)")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--campaign", required=True)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--epochs", type=int, help="override every model's epochs (and drop patience / time budget)")
    ap.add_argument("--generators", nargs="*", help="generator types to train (default: all in the config)")
    ap.add_argument("--no-predictor", action="store_true")
    ap.add_argument("--samples", type=int, default=1000,
                    help="graphs to sample when timing diffusion / EBM (0: do not time sampling)")
    ap.add_argument("--workers", type=int, default=0, help="runtime.loader_workers")
    ap.add_argument("--processes", type=int, default=1,
                    help="above 1: train data-parallel through the workflow's torchrun launch (runtime.gpus), one "
                         "process per GPU (gloo processes on the CPU); batch_size stays per process")
    ap.add_argument("--out", default="bench_out")
    args = ap.parse_args(argv)

    from invdesign.artifacts import load_graphs, load_model
    from invdesign.config import Config
    from invdesign.config.runtime import Runtime
    from invdesign.device import resolve_device
    from invdesign.io import atomic_path
    from invdesign.pipeline import launch
    from invdesign.pipeline.train import fit_generator, fit_predictor
    from invdesign.pipeline.glue import setup_logging

    setup_logging(None)  # per-epoch progress lines on stderr

    camp = Config.parse(yaml.safe_load(Path(args.config).read_text()), source=args.config).campaigns[args.campaign]
    kinds = args.generators or [g.type for g in camp.generators]
    device = resolve_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    graphs = args.graphs
    if graphs.endswith(".gz"):
        tmp = Path(tempfile.mkdtemp()) / "graphs.pt"
        with gzip.open(graphs, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 24)
        graphs = str(tmp)
    # every model trains from the same graphs: load_graphs keeps the last file in memory, so they are unpacked
    # once (14 s for QM9), not once per model (the in-process training reads them through it too)
    t0 = time.monotonic()
    n_train = len(load_graphs(graphs).train)
    res = {"campaign": args.campaign, "config": args.config, "device": str(device),
           "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None, "torch": torch.__version__,
           "loader_workers": args.workers, "processes": args.processes, "n_train": n_train,
           "load_s": time.monotonic() - t0,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "provenance": provenance(PACKAGES),
           "models": {}}
    tag = f"{device.type}_x{args.processes}" if args.processes > 1 else device.type
    report = out / f"bench_{args.campaign}_{tag}.json"
    runtime = Runtime(device=device.type if args.processes > 1 else str(device), loader_workers=args.workers,
                      gpus=args.processes)
    jobs = [("generator", k) for k in kinds] + ([] if args.no_predictor else [("predictor", "predictor")])
    for role, kind in jobs:  # role: "generator" or "predictor"
        spec = camp.generator(kind) if role == "generator" else camp.predictor
        train = spec.train.replace(epochs=args.epochs, max_minutes=None, patience=None) if args.epochs else spec.train
        settings = dict(spec.training_params(), train=train.to_dict())
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        util = GpuUtilisation().start()
        t = time.monotonic()
        # the training rules' own launch: in this process, or torchrun with one process per GPU
        fit = fit_generator if role == "generator" else fit_predictor
        m = launch.train(role, fit, args.campaign, settings, runtime, graphs, str(out / f"{kind}.pt"),
                         str(out / f"{kind}_metrics.json"))
        epochs = m["epochs_run"]
        row = {"seconds": time.monotonic() - t, "epochs": epochs, "s_per_epoch": m["seconds"] / epochs,
               "train_graphs_per_s": n_train * epochs / m["seconds"], "best_val": m["best_val"],
               "configured_epochs": spec.train.epochs, **util.stop()}
        row["configured_epochs_est_min"] = row["s_per_epoch"] * row["configured_epochs"] / 60
        if "test_mae" in m:
            row["test_mae"] = m["test_mae"]
        if device.type == "cuda" and args.processes == 1:  # (other processes' memory is not seen from here)
            row["peak_gpu_mem_gb"] = torch.cuda.max_memory_allocated() / 1e9
        if role == "generator" and args.samples > 0:
            model, _ = load_model(out / f"{kind}.pt")
            row.update(sampling_rate(model, kind, device, args.samples, spec.sample))
        res["models"][kind] = row
        print(json.dumps({kind: row}), flush=True)
        with atomic_path(report) as tmp:  # in run order (write_json would sort the models)
            tmp.write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
