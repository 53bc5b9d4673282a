"""Unconditional sample quality of a trained molecule generator.

    python -m bench.molecules_unconditional results/qm9_gap --generator diffusion --n 10000 \
        [--config config/config.yaml] [--campaign qm9_gap]

Loads the campaign's trained generator (``models/generator_<type>.pt``, :func:`invdesign.artifacts.load_model`)
and samples it with that campaign's current sampling settings from ``--config`` (the generator's entry under
``campaigns.<campaign>.generators``; ``--campaign`` defaults to the name of the results folder), as the search
rule would. VAE: prior samples z ~ N(0, I), decoded with the sampling settings' ``decode_temperature`` (0 =
greedy). Diffusion / EBM: sizes drawn from the training size histogram (``meta['dense']['n_hist']`` of the
checkpoint), no property condition, through the generator's sampler (``make_sampler(...).sample_for``: the
diffusion's ``sample_steps``, the EBM's ``langevin_steps``; EBM samples are valency-corrected and its raw validity
is reported too).

Reports validity (RDKit parses a single fragment), uniqueness (distinct valid / valid), novelty (distinct
valid not in the training split) and the Frechet ChemNet Distance (fcd-torch) between the distinct valid
samples and the test split. QM9 anchors (without H): DiGress validity 99.0 / uniqueness 96.3.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import torch
import yaml

from bench.lib.common import ROOT, provenance

#: the packages whose versions the result records
PACKAGES = ("torch", "torch-geometric", "rdkit", "selfies", "fcd-torch")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("campaign_dir", help="results/<campaign> (models/generator_<type>.pt, data/dataset.parquet)")
    ap.add_argument("--generator", default="vae", choices=["vae", "diffusion", "ebm"])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", default=str(ROOT / "config" / "config.yaml"),
                    help="config file whose campaign gives the sampling settings")
    ap.add_argument("--campaign", default=None, help="campaign of --config (default: the campaign_dir's name)")
    args = ap.parse_args(argv)
    from rdkit import Chem, RDLogger

    from invdesign.artifacts import load_model, read_table
    from invdesign.config import Config
    from invdesign.domains import get_domain
    from invdesign.models.dense import sample_sizes
    from invdesign.sampling import make_sampler

    RDLogger.DisableLog("rdApp.*")
    root = Path(args.campaign_dir)
    name = args.campaign or root.resolve().name
    camp = Config.parse(yaml.safe_load(Path(args.config).read_text()), source=args.config).campaigns[name]
    if camp.domain != "molecules":
        raise SystemExit(f"campaign {name} of {args.config} is a {camp.domain} campaign; this bench is for molecules")
    gen = camp.generator(args.generator)  # its sampling settings: gen.sample
    model, ckpt = load_model(root / "models" / f"generator_{args.generator}.pt")
    data = read_table(root / "data" / "dataset.parquet", ["smiles", "split"])
    train = set(data.loc[data["split"] == "train", "smiles"])
    test = data.loc[data["split"] == "test", "smiles"].tolist()
    torch.manual_seed(args.seed)
    t0 = time.monotonic()
    if args.generator == "vae":
        with torch.no_grad():
            out = model.decode(torch.randn(args.n, model.latent_dim), temperature=gen.sample.decode_temperature)
    else:
        sizes = sample_sizes(ckpt["meta"]["dense"]["n_hist"], args.n, torch.Generator().manual_seed(args.seed))
        out = make_sampler(args.generator, model, gen.sample).sample_for(sizes, None, seed=args.seed).structures
    samples = get_domain("molecules").decode(out, ckpt["meta"])
    seconds = time.monotonic() - t0
    valid = [s for s in samples["smiles"] if isinstance(s, str) and "." not in s and Chem.MolFromSmiles(s)]
    unique = sorted(set(valid))
    novel = [s for s in unique if s not in train]
    res = {"campaign": name, "generator": args.generator, "date": dt.date.today().isoformat(), "n": args.n,
           "config": args.config, "sampling": gen.sample.to_dict(),
           "raw_validity": float(samples["raw_valid"].mean()) if "raw_valid" in samples else None,
           "validity": len(valid) / args.n, "uniqueness": len(unique) / max(len(valid), 1),
           "novelty": len(novel) / max(len(unique), 1), "samples_per_s": args.n / seconds,
           "n_train": len(train), "epochs": ckpt["train_info"].get("best_epoch"), "provenance": provenance(PACKAGES)}
    try:
        from fcd_torch import FCD

        res["fcd_vs_test"] = float(FCD(device="cpu", n_jobs=1)(unique, test))
    except ImportError:
        res["fcd_vs_test"] = None
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
