"""Featurize a prepared dataset (dataset.parquet) for a campaign: the featurize rule without Snakemake.

    python -m bench.featurize_only dataset.parquet graphs.pt --config config/molecules_gap.yaml --campaign qm9_gap_full

Used to featurize on a GPU node that has rdkit/selfies but no Snakemake. Calls the rule's own function
(invdesign.pipeline.featurize.featurize) with the campaign's validated featurize settings.
"""

import argparse
import time
from pathlib import Path

import yaml


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset")
    ap.add_argument("out")
    ap.add_argument("--config", required=True)
    ap.add_argument("--campaign", required=True)
    args = ap.parse_args(argv)
    from invdesign.config import Config
    from invdesign.pipeline.featurize import featurize
    from invdesign.pipeline.glue import setup_logging

    setup_logging(None)
    camp = Config.parse(yaml.safe_load(Path(args.config).read_text()), source=args.config).campaigns[args.campaign]
    t0 = time.monotonic()
    # the featurize rule's params, from the typed campaign
    featurize(domain=camp.domain, settings=camp.featurize.to_dict(), property_column=camp.dataset.property_column,
              dataset=args.dataset, graphs=args.out)
    print(f"featurized in {time.monotonic() - t0:.1f}s")


if __name__ == "__main__":
    main()
