"""Train a campaign's generator and predictor from its featurized graphs on a chosen device and time it.

Needs only torch + torch-geometric (runs on GPU nodes without rdkit/pymatgen):

    python bench/gpu_train.py results/qm9_gap/data/graphs.pt --config config/config.yaml \
        --campaign qm9_gap --device cuda --out bench_out/

Prints and writes (JSON) epochs, seconds per epoch, training graphs/second, peak GPU memory,
held-out predictor MAE, and latent decode throughput (latents/second).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import yaml


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("graphs")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--campaign", required=True)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--epochs", type=int, help="override generator/predictor epochs")
    ap.add_argument("--out", default="bench_out")
    ap.add_argument("--workers", type=int, default=0, help="runtime.loader_workers")
    args = ap.parse_args()

    from invdesign.config import validate_config
    from invdesign.pipeline import steps

    cfg = validate_config(yaml.safe_load(Path(args.config).read_text()), source=args.config)
    camp = cfg["campaigns"][args.campaign]
    if args.epochs:
        for key in ("generator", "predictor"):
            camp[key].update(epochs=args.epochs, max_minutes=None, patience=None)
    runtime = {"device": args.device, "loader_workers": args.workers}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    n_train = sum(s == "train" for s in torch.load(args.graphs, weights_only=False)["split"])  # noqa: S614
    res = {"campaign": args.campaign, "device": args.device, "loader_workers": args.workers,
           "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
           "torch": torch.__version__, "n_train": n_train}
    for kind, fn in (("generator", steps.train_generator), ("predictor", steps.train_predictor)):
        t0 = time.monotonic()
        m = fn(args.campaign, camp, runtime, args.graphs, str(out / f"{kind}.pt"), str(out / f"{kind}_metrics.json"))
        secs = time.monotonic() - t0
        res[kind] = {"seconds": secs, "epochs": m["epochs_run"], "s_per_epoch": m["seconds"] / m["epochs_run"],
                     "train_graphs_per_s": n_train * m["epochs_run"] / m["seconds"],
                     "best_val": m["best_val"], "test_mae": m.get("test_mae")}
    if torch.cuda.is_available():
        res["peak_gpu_mem_gb"] = torch.cuda.max_memory_allocated() / 1e9
    from invdesign.device import resolve_device
    from invdesign.models.registry import load_checkpoint

    device = resolve_device(args.device)
    model, _ = load_checkpoint(out / "generator.pt")
    model.to(device)
    z = torch.randn(10000, model.latent_dim, device=device)
    model.decode(z[:100])
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.monotonic()
    model.decode(z)
    if device.type == "cuda":
        torch.cuda.synchronize()
    res["decode_latents_per_s"] = len(z) / (time.monotonic() - t0)
    print(json.dumps(res, indent=2))
    (out / f"bench_{args.campaign}_{device.type}.json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
