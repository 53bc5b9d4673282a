"""Set-up shared by the bench scripts (run as scripts: ``python bench/<name>.py``)."""

from __future__ import annotations

import logging
from pathlib import Path


def setup_run(args):
    """Logging, torch threads, the output folder and the device; returns (out folder, torch device)."""
    import torch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return out, torch.device("cuda" if torch.cuda.is_available() else "cpu")
