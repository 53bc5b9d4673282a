"""Crystal generators on the MP elasticity data: sample quality, targeted bulk-modulus hits, S.U.N. by CHGNet.

    python -m bench.crystals_generators --out bench/out/crystals [--generators diffusion ebm vae]
        [--samples 1000] [--target-min 300] [--chgnet 20]

For each generator (trained here on the training split, cached under --out):
  * unconditional: ``--samples`` cells from the generator's prior (VAE: z ~ N(0, I)); structural
    validity (every pair of atoms >= 0.5 A apart), compositional validity (SMACT charge neutrality),
    uniqueness and novelty with pymatgen's StructureMatcher (stol 0.5, ltol 0.3, angle_tol 10), as
    the campaign's filter computes them; with ``--chgnet N`` the S.U.N. rate (valid-unique-novel share
    times the CHGNet-stable share of N random valid, unique, novel samples);
  * targeted: ``--samples`` cells toward K_VRH >= ``--target-min`` GPa (diffusion / EBM: conditioned on
    (atom count, K) pairs of training cells above the threshold; VAE: latent optimisation), the share
    predicted on target by the campaign's independent GNN predictor, and, when ``--chgnet N``, a CHGNet
    check of the N best valid, unique, novel candidates: relaxation, energy above the CHGNet hull of the
    training phases + elemental references, and the matcalc EOS bulk modulus of the stable ones. S.U.N.
    here is CHGNet-judged (E_hull <= 0.1 eV/atom), not DFT-judged as in the published anchors.
  * screening baseline: the same CHGNet check on N training cells drawn at random, i.e. what
    screening the known distribution finds per evaluation.

Every CHGNet check is the workflow's oracle (``ChgnetOracle`` from ``invdesign.pipeline.verify.make_oracle``) with
fmax 0.1 eV/A, 300 steps and E_hull <= 0.1 eV/atom; the campaign (data, split, generators, predictor) is the
mapping a config file would hold, typed by ``invdesign.config.Config.parse``, and its data and graphs come from
``invdesign.pipeline.data.campaign_data``. Models trained here are saved as the workflow's checkpoints
(``<generator>.pt``, ``predictor.pt``, read back with ``invdesign.artifacts.load_model``).

Samples/second and training seconds are reported with the device.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.lib.common import ROOT, provenance, setup_run
from bench.lib.crystals import (GEN_CFG, MINUTES, PREDICTOR_CFG, campaign, known_cells, load, make_chgnet, predicted,
                                quality, targeted_order)

log = logging.getLogger("bench")
#: the packages whose versions the results record
PACKAGES = ("torch", "torch-geometric", "pymatgen", "smact", "chgnet", "matcalc", "matminer")

def _trained(path: Path, settings, what: str):
    """A model the bench trained earlier (``path``), or None; stops if it was built with other model settings."""
    from invdesign.artifacts import load_model

    if not path.exists():
        return None
    model, ck = load_model(path)
    if ck["model"] != settings.to_dict():
        raise SystemExit(f"{path}: a {what} with other model settings ({ck['model']}); delete it to retrain")
    return model, ck.get("train_info", {})


def _save(path: Path, kind: str, model, meta: dict, gen_type, train, info: dict) -> None:
    from invdesign.io import torch_save
    from invdesign.models.registry import checkpoint

    torch_save(checkpoint(kind, model, meta, generator_type=gen_type, train=train, train_info=info), path)


def train(path: Path, kind: str, gen, graphs, device):
    """The ``kind`` generator of the campaign (``gen``: its typed settings), trained here once and cached."""
    from invdesign.models.registry import build_generator
    from invdesign.models.train import fit

    cached = _trained(path, gen.model, f"{kind} generator")
    if cached is not None:
        return cached
    model = build_generator(graphs.meta, kind, gen.model)
    info = fit(model, graphs.train, graphs.part("val"), gen.train, device=device, workers=0, name=f"crystal-{kind}")
    info = {k: v for k, v in info.items() if k != "history"} | {"epochs_run": len(info["history"])}
    model.cpu()
    _save(path, "generator", model, graphs.meta, kind, gen.train, info)
    return model.eval(), info


def train_predictor(path: Path, pred, graphs, device):
    """The campaign's independent property predictor (``pred``: its typed settings), trained once and cached."""
    from invdesign.models.predictor import GraphPropertyPredictor
    from invdesign.models.train import fit

    cached = _trained(path, pred.model, "predictor")
    if cached is not None:
        return cached[0]
    predictor = GraphPropertyPredictor(graphs.meta, pred.model)
    info = fit(predictor, graphs.train, graphs.part("val"), pred.train, device=device, workers=0,
               name="crystal-predictor")
    predictor.cpu()
    _save(path, "predictor", predictor, graphs.meta, None, pred.train,
          {k: v for k, v in info.items() if k != "history"})
    return predictor.eval()


def sample(kind, model, gen, n, target_min, train_graphs, seed):
    """``n`` cells (CrystalSamples) from a trained generator; ``target_min`` None: unconditional. Diffusion / EBM
    toward the target are conditioned on (atom count, K) pairs of training cells with K >= ``target_min``, drawn
    here; the VAE optimises prior latents toward [target_min, the training maximum]."""
    gen_t = torch.Generator().manual_seed(seed)
    if kind == "vae":
        if target_min is None:
            with torch.no_grad():
                return model.decode(torch.randn(n, model.latent_dim, generator=gen_t))
        from invdesign.sampling.latent import optimise_latents

        hi = float(max(float(g.y.view(-1)[0]) for g in train_graphs))
        (_, z, _), = optimise_latents(model, torch.randn(n, model.latent_dim, generator=gen_t),
                                      (float(target_min), hi), steps=60, lr=0.05,
                                      prior_weight=0.05, checkpoints=1)
        with torch.no_grad():
            return model.decode(z)
    from invdesign.sampling import make_sampler

    sampler = make_sampler(kind, model, gen.sample)
    if target_min is None:
        return model.sample(n, generator=gen_t, **sampler.model_kwargs())
    y = np.array([float(g.y.view(-1)[0]) for g in train_graphs])
    nn_ = np.array([int(g.num_nodes) for g in train_graphs])
    pick = np.random.default_rng(seed).choice(np.flatnonzero(y >= target_min), size=n, replace=True)
    return sampler.sample_for(nn_[pick], y[pick], seed=seed).structures


def volume_ratios(checked: pd.DataFrame, volumes: dict) -> np.ndarray:
    """Generated cell volume over its composition's additive volume, per valid sample (below 1: compressed)."""
    from invdesign.chem.crystals import additive_volume, structure_from_record

    out = []
    for rec in checked.loc[checked["valid"], "structure"]:
        s = structure_from_record(rec)
        target = additive_volume(s, volumes)
        if target is not None:
            out.append(s.volume / target)
    return np.array(out)


def fingerprints(structures):
    """CDVAE's fingerprints: the mean over sites of matminer's CrystalNN 'ops' site fingerprint, and the
    Magpie composition features; None for a structure the featurizer cannot handle."""
    import warnings

    from matminer.featurizers.composition.composite import ElementProperty
    from matminer.featurizers.site.fingerprint import CrystalNNFingerprint

    cnn, magpie = CrystalNNFingerprint.from_preset("ops"), ElementProperty.from_preset("magpie")
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in structures:
            try:
                site = np.array([cnn.featurize(s, i) for i in range(len(s))], dtype=float).mean(axis=0)
                comp = np.array(magpie.featurize(s.composition), dtype=float)
                out.append((site, comp) if np.isfinite(site).all() and np.isfinite(comp).all() else None)
            except Exception:  # noqa: BLE001 (any featurizer failure: the sample covers nothing)
                out.append(None)
    return out


def coverage(gen_fps, ref_fps, comp_mean, comp_std, struct_cutoff=0.4, comp_cutoff=10.0) -> dict:
    """COV-R / COV-P as defined for CDVAE (Xie et al. 2022): a reference crystal is recalled when some
    generated crystal is within ``struct_cutoff`` in structure fingerprint distance and some (not
    necessarily the same) within ``comp_cutoff`` in standardised composition distance; precision swaps
    the roles. MP-20 cut-offs (0.4, 10). Generated crystals without a fingerprint count as misses."""
    from scipy.spatial.distance import cdist

    ok = [f for f in gen_fps if f is not None]
    refs = [f for f in ref_fps if f is not None]
    if not ok or not refs:
        return {"cov_recall": 0.0, "cov_precision": 0.0, "n_generated": len(gen_fps), "n_reference": len(refs)}
    gs, gc = np.stack([f[0] for f in ok]), (np.stack([f[1] for f in ok]) - comp_mean) / comp_std
    rs, rc = np.stack([f[0] for f in refs]), (np.stack([f[1] for f in refs]) - comp_mean) / comp_std
    ds, dc = cdist(gs, rs), cdist(gc, rc)
    recall = np.mean((ds.min(axis=0) <= struct_cutoff) & (dc.min(axis=0) <= comp_cutoff))
    precision = np.sum((ds.min(axis=1) <= struct_cutoff) & (dc.min(axis=1) <= comp_cutoff)) / len(gen_fps)
    return {"cov_recall": float(recall), "cov_precision": float(precision), "n_generated": len(gen_fps),
            "n_reference": len(refs), "struct_cutoff": struct_cutoff, "comp_cutoff": comp_cutoff}


def chgnet_check(batch: pd.DataFrame, dataset: pd.DataFrame, oracle, prepared: dict, target_min: float) -> dict:
    """The product's CHGNet oracle (``oracle.evaluate``) on the cells of ``batch`` (rows with ``formula`` and
    ``structure`` records, in rank order) against ``dataset`` (``id``, ``formula``, ``structure``: the hull's
    reference phases, with the elemental references, and the known set of ``matches_known``), summarised as the
    bench records it. A hit is stable with an EOS modulus >= ``target_min``."""
    t0 = time.monotonic()
    cands = batch[["formula", "structure"]].reset_index(drop=True)
    res = oracle.evaluate(cands.assign(rank=np.arange(1, len(cands) + 1)), dataset, prepared)
    stable = res["stable"].fillna(False).astype(bool).to_numpy()
    k = pd.to_numeric(res["eos_bulk_modulus_gpa"], errors="coerce").to_numpy(float)
    e_hull = pd.to_numeric(res["e_hull"], errors="coerce").to_numpy(float)
    hit = stable & (np.nan_to_num(k, nan=-np.inf) >= target_min)
    return {"evaluated": len(cands), "stable": int(stable.sum()), "stable_and_on_target": int(hit.sum()),
            "hits": [f for f, h in zip(cands["formula"], hit) if h],
            "eos_bulk_modulus_gpa": [float(x) for x in k[np.isfinite(k)]],
            "e_hull": [float(x) for x in e_hull[np.isfinite(e_hull)]], "seconds": time.monotonic() - t0,
            "candidates": [  # one record per evaluated cell, in rank order (NaN -> None)
                {"formula": f, "hit": bool(h), "stable": bool(st),
                 "e_hull": None if np.isnan(e) else float(e),
                 "eos_bulk_modulus_gpa": None if np.isnan(kk) else float(kk),
                 "oracle_error": r.oracle_error, "relaxed_cif": r.relaxed_cif,
                 "matches_known": r.matches_known or None, "volume_scale": float(r.volume_scale)}
                for f, h, st, e, kk, r in zip(cands["formula"], hit, stable, e_hull, k, res.itertuples())]}


def merge_checks(a: dict, b: dict) -> dict:
    """Two CHGNet checks of consecutive candidate ranges as one."""
    out = {k: a[k] + b[k] for k in ("evaluated", "stable", "stable_and_on_target", "hits", "eos_bulk_modulus_gpa",
                                     "e_hull", "seconds")}
    if "candidates" in a and "candidates" in b:  # checks from before the per-candidate records have none
        out["candidates"] = a["candidates"] + b["candidates"]
    return out | {"ranks": [a["ranks"][0], b["ranks"][1]]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "crystals"))
    ap.add_argument("--generators", nargs="*", default=["diffusion", "ebm", "vae"])
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--target-min", type=float, default=300.0)
    ap.add_argument("--max-atoms", type=int, default=20)
    ap.add_argument("--minutes", type=json.loads, default={},
                    help=f"training budgets in minutes, JSON; the keys given replace these: {json.dumps(MINUTES)}")
    ap.add_argument("--epochs", type=json.loads, default={},
                    help="epoch counts, JSON (e.g. '{\"diffusion\": 85}'); the keys given replace the bench's ("
                         + ", ".join(f"{k} {v['epochs']}" for k, v in GEN_CFG.items())
                         + f", predictor {PREDICTOR_CFG['epochs']}); training also stops at --minutes")
    ap.add_argument("--chgnet", type=int, default=0, help="CHGNet-check this many top candidates per generator")
    ap.add_argument("--chgnet-start", type=int, default=0,
                    help="skip this many candidates already CHGNet-checked by an earlier run (its counts are extended)")
    ap.add_argument("--eos-for", default="all", choices=["all", "stable"],
                    help="targeted CHGNet check: EOS of every relaxed candidate or only of the stable ones")
    ap.add_argument("--screening", type=int, default=None,
                    help="training cells in the screening baseline (default: --chgnet)")
    ap.add_argument("--screening-start", type=int, default=0,
                    help="the first cells of the screening were checked by an earlier run: check the rest, merge")
    ap.add_argument("--reuse-samples", action="store_true",
                    help="use the samples an earlier run saved (samples_<generator>_<mode>.parquet) instead of sampling")
    ap.add_argument("--cov", action="store_true",
                    help="COV-R/COV-P of the valid unconditional samples vs the validation cells (needs matminer: "
                         "pip install --no-deps matminer)")
    ap.add_argument("--modes", nargs="+", default=["targeted", "unconditional"],
                    choices=["targeted", "unconditional"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1,
                    help="sampling seed (noise and the conditioning cells); a new seed with a new --out draws a fresh "
                         "batch from the same trained models")
    ap.add_argument("--rescale-volume", action="store_true",
                    help="targeted CHGNet check: scale each chosen cell to its composition's additive volume (atomic "
                         "volumes fitted on the training cells) before relaxing it; filters and ranking are unchanged")
    ap.add_argument("--one-per-formula", action="store_true",
                    help="targeted CHGNet check: only the predictor's best cell of each reduced formula")
    ap.add_argument("--guidance", type=float, default=None,
                    help="diffusion: classifier-free guidance scale of the targeted samples (default: the model's, 1)")
    args = ap.parse_args(argv)
    out, device = setup_run(args)
    from invdesign.artifacts import read_table
    from invdesign.chem.crystals import structure_from_record
    from invdesign.domains import get_domain

    dom = get_domain("crystals")
    camp = campaign(args.max_atoms, args.target_min, args.minutes, args.guidance, args.epochs)
    df, graphs = load(out, camp)
    meta = graphs.meta
    train_df = df[df["split"] == "train"].reset_index(drop=True)
    y = train_df["property"].to_numpy(float)
    log.info("%d training cells, %.1f%% with K >= %g GPa", len(train_df), 100 * np.mean(y >= args.target_min),
             args.target_min)
    predictor = train_predictor(out / "predictor.pt", camp.predictor, graphs, device)
    res_path = out / "results.json"  # earlier generators' results are kept; the ones run now are replaced
    old = json.loads(res_path.read_text()) if res_path.exists() else {}
    results = old | {"date": str(date.today()), "device": str(device),
                     "cpu": platform.processor() or platform.machine(), "threads": args.threads,
                     "n_train": len(train_df), "target_min_gpa": args.target_min,
                     "train_share_on_target": float(np.mean(y >= args.target_min)),
                     "provenance": provenance(PACKAGES), "generators": old.get("generators", {})}
    # the oracle checks: targeted candidates (EOS as --eos-for, optionally from the additive volume), unconditional
    # samples (stability only), and the screening baseline (the training cell as it is, EOS of the stable ones)
    targeted_oracle = make_chgnet(camp, args.eos_for, args.rescale_volume)
    targeted_prepared = targeted_oracle.prepare(train_df)  # per-element volumes of the training cells, if rescaled
    volumes = targeted_prepared.get("atomic_volumes")
    cov_refs = None
    if args.cov:
        val_df = df[df["split"] == "val"]
        cov_refs = fingerprints([structure_from_record(r) for r in val_df["structure"]])
        from matminer.featurizers.composition.composite import ElementProperty

        magpie = ElementProperty.from_preset("magpie")  # the composition scale comes from the training cells
        comps = np.array([magpie.featurize(structure_from_record(r).composition) for r in train_df["structure"]],
                         dtype=float)
        comps = comps[np.isfinite(comps).all(axis=1)]
        comp_mean, comp_std = comps.mean(axis=0), comps.std(axis=0) + 1e-8
        log.info("COV references: %d validation cells", len(cov_refs))
    for kind in args.generators:
        gen = camp.generator(kind)
        model, info = train(out / f"{kind}.pt", kind, gen, graphs, device)
        res = results["generators"].get(kind, {}) | {"train_seconds": info["seconds"], "epochs": info["epochs_run"],
                                                      "config": GEN_CFG[kind]}
        modes = {"targeted": args.target_min, "unconditional": None}
        for label, tmin in ((m, modes[m]) for m in args.modes):
            saved = out / f"samples_{kind}_{label}.parquet"
            if args.reuse_samples and saved.exists():  # the earlier run's samples; their quality numbers stay
                checked, q = read_table(saved, ["formula", "structure", "valid", "unique", "novel"]), {}
                log.info("%s %s: %d saved samples from %s", kind, label, len(checked), saved)
            else:
                t0 = time.monotonic()
                raw = sample(kind, model, gen, args.samples, tmin, graphs.train, seed=args.seed)
                seconds = time.monotonic() - t0
                samples = dom.decode(raw, meta)
                # the campaign's default filters; novelty against every MP cell
                checked = dom.filter_candidates(samples, train_df, None, known_cells())
                checked.to_parquet(saved)  # for later analysis
                q = quality(samples, checked) | {"samples_per_second": args.samples / seconds, "seed": args.seed,
                                               "guidance": args.guidance}
            pred = predicted(checked, predictor, meta)
            if volumes is not None:
                ratios = volume_ratios(checked, volumes)
                q["volume_ratio_quartiles"] = [float(x) for x in np.quantile(ratios, [0.25, 0.5, 0.75])] \
                    if len(ratios) else None
            sun_like = checked["valid"] & checked["unique"] & checked["novel"]
            q["predicted_on_target_share"] = float(np.mean((pred >= args.target_min) & sun_like.to_numpy()))
            if cov_refs is not None and tmin is None:
                valid = [structure_from_record(checked["structure"].iat[i])
                         for i in np.flatnonzero(checked["valid"].to_numpy())]
                q["coverage"] = coverage(fingerprints(valid) + [None] * (len(checked) - len(valid)), cov_refs,
                                         comp_mean, comp_std)
                log.info("%s COV: %s", kind, q["coverage"])
            if args.chgnet:
                vun = np.flatnonzero(sun_like.to_numpy())
                if tmin is None:  # S.U.N. rate: a random subset of the valid, unique, novel samples
                    order = np.random.default_rng(0).permutation(vun)
                    oracle, prepared = make_chgnet(camp, "none", False), {}
                else:             # targeted: the predictor's best
                    order = targeted_order(checked, pred, one_per_formula=args.one_per_formula)
                    q["one_per_formula"] = args.one_per_formula
                    oracle, prepared = targeted_oracle, targeted_prepared
                    if args.rescale_volume:
                        q["rescaled_volume"] = True
                order = order[args.chgnet_start: args.chgnet_start + args.chgnet]
                # hull references and the known set: the training cells
                q["chgnet"] = chgnet_check(checked.iloc[order], train_df, oracle, prepared, args.target_min)
                q["chgnet"]["ranks"] = [args.chgnet_start, args.chgnet_start + len(order)]
                earlier = res.get(label, {}).get("chgnet")
                if args.chgnet_start and earlier and earlier.get("ranks", [0, 0])[1] == args.chgnet_start:
                    q["chgnet"] = merge_checks(earlier, q["chgnet"])  # extends the earlier check of ranks [0, start)
                checked_n = max(q["chgnet"]["evaluated"], 1)
                q["sun_rate_chgnet"] = float(len(vun) / len(checked) * q["chgnet"]["stable"] / checked_n)
            res[label] = res.get(label, {}) | q  # a re-run without --chgnet/--cov keeps the earlier numbers
            log.info("%s %s: %s", kind, label, {k: v for k, v in q.items() if k != "chgnet"})
            results["generators"][kind] = res
            res_path.write_text(json.dumps(results, indent=2))
    n_screen = args.chgnet if args.screening is None else args.screening
    if n_screen:
        pick = np.random.default_rng(0).permutation(len(train_df))[:n_screen]
        # every screened cell is left out of the hull (and the known set) of every other one
        others = train_df.drop(index=pick)
        start = args.screening_start
        screen = chgnet_check(train_df.iloc[pick[start:]], others, make_chgnet(camp, "stable", False), {},
                              args.target_min)
        screen["ranks"] = [start, n_screen]
        earlier = results.get("screening_baseline")
        if start:
            if not earlier or earlier.get("ranks", [0, earlier.get("evaluated", 0)])[1] != start:
                raise SystemExit(f"--screening-start {start}: {res_path} holds no screening of the first {start} cells")
            results[f"screening_baseline_first{start}"] = earlier  # kept: later cells can be analysed alone
            screen = merge_checks(earlier | {"ranks": [0, start]}, screen)
        results["screening_baseline"] = screen
        res_path.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
