"""Featurize a prepared dataset (dataset.parquet) for a campaign: the featurize rule without Snakemake.

    python bench/featurize_only.py dataset.parquet graphs.pt --config config/molecules_gap.yaml --campaign qm9_gap_full

Used to featurize on a GPU node that has rdkit/selfies but no Snakemake.
"""

import argparse
import time
from pathlib import Path

import yaml

from invdesign.config import validate_config
from invdesign.pipeline import steps
from invdesign.pipeline.runner import setup_logging

ap = argparse.ArgumentParser()
ap.add_argument("dataset")
ap.add_argument("out")
ap.add_argument("--config", required=True)
ap.add_argument("--campaign", required=True)
args = ap.parse_args()
setup_logging(None)
cfg = validate_config(yaml.safe_load(Path(args.config).read_text()), source=args.config)
t0 = time.monotonic()
steps.featurize(args.campaign, cfg["campaigns"][args.campaign], args.dataset, args.out)
print(f"featurized in {time.monotonic() - t0:.1f}s")
