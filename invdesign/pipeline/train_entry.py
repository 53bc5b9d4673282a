"""Command-line entry for the training steps, used to launch them under ``torchrun`` (DDP).

    torchrun --standalone --nproc_per_node=4 -m invdesign.pipeline.train_entry generator \\
        --job job.json --graphs graphs.pt --model generator.pt --metrics generator_metrics.json

``job.json`` holds ``{"name", "settings", "runtime"}`` (``settings``: the model and train parts). Snakemake's training rules launch this
automatically when ``runtime.gpus`` > 1; it needs only torch and torch-geometric.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from ..config.runtime import Runtime
from ..errors import InvdesignError
from ..models.train import world
from .glue import setup_logging


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m invdesign.pipeline.train_entry")
    ap.add_argument("kind", choices=["generator", "predictor"])
    ap.add_argument("--job", required=True)
    ap.add_argument("--graphs", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--metrics", required=True)
    args = ap.parse_args(argv)
    from .train import fit_generator, fit_predictor

    rank = world()[0]
    setup_logging(None)
    if rank:
        logging.getLogger().setLevel(logging.WARNING)
    job = json.loads(open(args.job).read())
    fn = fit_generator if args.kind == "generator" else fit_predictor
    try:
        fn(job["name"], job["settings"], Runtime.parse(job["runtime"], "runtime"), args.graphs, args.model,
           args.metrics)
    except InvdesignError as exc:
        print(f"invdesign error: {exc}", file=sys.stderr)
        return 1
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
