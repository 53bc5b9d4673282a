"""Crystal generators on the MP elasticity data: sample quality, targeted bulk-modulus hits, S.U.N. by CHGNet.

    python bench/crystals_generators.py --out bench/out/crystals [--generators diffusion ebm vae]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _util import setup_run  # noqa: E402 (bench/ is the script's folder)

from invdesign.pipeline import steps  # noqa: E402

log = logging.getLogger("bench")

GEN_CFG = {
    "diffusion": {"type": "diffusion", "hidden": 96, "layers": 3, "epochs": 400, "batch_size": 64, "lr": 0.001,
                  "diffusion_steps": 1000, "sample_steps": 100},
    "ebm": {"type": "ebm", "hidden": 64, "layers": 2, "epochs": 100, "batch_size": 64, "lr": 0.0005,
            "langevin_train_steps": 10},
    "vae": {"type": "vae", "latent_dim": 64, "hidden": 128, "epochs": 200, "batch_size": 64, "lr": 0.002},
}


def load(out: Path, max_atoms: int):
    camp = {"domain": "crystals", "dataset": {"source": "mp_elasticity", "property_column": "bulk_modulus_gpa",
                                              "max_atoms": max_atoms, "seed": 0},
            "target": {"min": 300}, "split": {"val": 0.1, "test": 0.0, "seed": 0}, "featurize": {}}
    ds, gp = out / "dataset.parquet", out / "graphs.pt"
    if not gp.exists():
        steps.prepare_dataset("bench", camp, {"mirror": str(ROOT.parent / "shared" / "data"),
                                              "cache": str(ROOT / "data" / "cache")}, str(ds))
        steps.featurize("bench", camp, str(ds), str(gp))
    return pd.read_parquet(ds), steps._load_blob(str(gp)), camp


def train(path: Path, kind: str, meta: dict, split: dict, minutes: float, device):
    from invdesign.models.registry import build_generator
    from invdesign.models.train import fit

    cfg = GEN_CFG[kind] | {"max_minutes": minutes}
    model = build_generator(meta, cfg)
    if path.exists():
        ck = torch.load(path, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["state_dict"])
        return model.eval(), ck["info"]
    info = fit(model, split["train"], split["val"], epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
               max_minutes=minutes, device=device, name=f"crystal-{kind}", seed=0)
    info = {k: v for k, v in info.items() if k != "history"} | {"epochs_run": len(info["history"])}
    model.cpu()
    torch.save({"state_dict": model.state_dict(), "info": info, "cfg": cfg}, path)
    return model.eval(), info


def sample(kind, model, n, target_min, train_graphs, seed, guidance=None):
    gen = torch.Generator().manual_seed(seed)
    if kind == "vae":
        if target_min is None:
            with torch.no_grad():
                return model.decode(torch.randn(n, model.latent_dim, generator=gen))
        from invdesign.search.latent import optimise_latents

        hi = float(max(float(g.y.view(-1)[0]) for g in train_graphs))
        (_, z, _), = optimise_latents(model, torch.randn(n, model.latent_dim, generator=gen),
                                      (float(target_min), hi), steps=60, lr=0.05,
                                      prior_weight=0.05, checkpoints=1)
        with torch.no_grad():
            return model.decode(z)
    if target_min is None:
        return model.sample(n, generator=gen)
    y = np.array([float(g.y.view(-1)[0]) for g in train_graphs])
    nn_ = np.array([int(g.num_nodes) for g in train_graphs])
    pick = np.random.default_rng(seed).choice(np.flatnonzero(y >= target_min), size=n, replace=True)
    extra = {} if guidance is None or kind != "diffusion" else {"guidance_scale": guidance}
    return model.sample(sizes=torch.as_tensor(nn_[pick]), target=torch.as_tensor(y[pick], dtype=torch.float32),
                        generator=gen, **extra)


def predicted(checked: pd.DataFrame, predictor, meta) -> np.ndarray:
    """The independent predictor's K (GPa) for each checked sample; NaN where no graph could be built."""
    from invdesign.domains import crystals as dom
    from invdesign.models.predictor import predict_graphs

    graphs = dom.featurize_like(checked, meta)
    ok = [i for i, g in enumerate(graphs) if g is not None]
    pred = np.full(len(graphs), np.nan)
    if ok:
        pred[ok] = predict_graphs(predictor, [graphs[i] for i in ok], torch.device("cpu")).numpy()
    return pred


def targeted_order(checked: pd.DataFrame, pred: np.ndarray, one_per_formula: bool = False) -> np.ndarray:
    """Row indices of the valid, unique, novel samples, the predictor's highest K first (the CHGNet check order);
    with ``one_per_formula`` only the best-ranked cell of each reduced formula (a diversity filter)."""
    vun = np.flatnonzero((checked["valid"] & checked["unique"] & checked["novel"]).to_numpy())
    order = vun[np.argsort(-pred[vun], kind="stable")]
    if one_per_formula:
        first = ~pd.Series(checked["formula"].to_numpy()[order]).duplicated().to_numpy()
        order = order[first]
    return order


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


def quality(df: pd.DataFrame, checked: pd.DataFrame) -> dict:
    n = len(df)
    built = checked["structure"].notna() if "structure" in checked else pd.Series(False, index=checked.index)
    return {"samples": n, "built": float(built.mean()),
            "structural_validity": float(checked.get("min_distance_ok", pd.Series(False)).fillna(False).mean()),
            "compositional_validity": float(checked.get("charge_neutral", pd.Series(False)).fillna(False).mean()),
            "validity": float(checked["valid"].mean()),
            "uniqueness": float(checked["unique"].sum() / max(checked["valid"].sum(), 1)),
            "novelty": float(checked["novel"].sum() / max(checked["unique"].sum(), 1))}


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


def chgnet_check(structures, references, target_min, eos_for="all"):
    from invdesign.oracles.crystal import ReferenceEnergies, verify_crystals

    refs = ReferenceEnergies(references, fmax=0.1, steps=300)
    t0 = time.monotonic()
    res = verify_crystals(structures, refs, fmax=0.1, steps=300, e_hull_max=0.1, eos_for=eos_for)
    hit = res["stable"] & (res["eos_bulk_modulus_gpa"] >= target_min)
    return {"evaluated": len(structures), "stable": int(res["stable"].sum()), "stable_and_on_target": int(hit.sum()),
            "hits": [s.composition.reduced_formula for s, h in zip(structures, hit) if h],
            "eos_bulk_modulus_gpa": [float(x) for x in res["eos_bulk_modulus_gpa"].dropna()],
            "e_hull": [float(x) for x in res["e_hull"].dropna()], "seconds": time.monotonic() - t0,
            "candidates": [  # one record per evaluated cell, in rank order (NaN -> None)
                {"formula": s.composition.reduced_formula, "hit": bool(h), "stable": bool(r.stable),
                 "e_hull": None if np.isnan(r.e_hull) else float(r.e_hull),
                 "eos_bulk_modulus_gpa": None if np.isnan(r.eos_bulk_modulus_gpa) else float(r.eos_bulk_modulus_gpa),
                 "oracle_error": r.oracle_error, "relaxed_cif": r.relaxed_cif}
                for s, h, r in zip(structures, hit, res.itertuples())]}


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
    ap.add_argument("--minutes", type=json.loads, default={"diffusion": 15, "ebm": 8, "vae": 4, "predictor": 3})
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
    from invdesign.chem.crystals import structure_from_record
    from invdesign.domains import crystals as dom
    from invdesign.models.predictor import GraphPropertyPredictor
    from invdesign.models.train import fit

    df, blob, camp = load(out, args.max_atoms)
    split = steps._split_graphs(blob)
    meta = blob["meta"]
    train_df = df[df["split"] == "train"]
    y = train_df["property"].to_numpy(float)
    log.info("%d training cells, %.1f%% with K >= %g GPa", len(train_df), 100 * np.mean(y >= args.target_min),
             args.target_min)
    pcfg = {"hidden": 128, "layers": 3, "epochs": 300, "batch_size": 64, "lr": 0.002}
    pred_path = out / "predictor.pt"
    predictor = GraphPropertyPredictor(meta, pcfg)
    if pred_path.exists():
        predictor.load_state_dict(torch.load(pred_path, weights_only=False)["state_dict"])
    else:
        fit(predictor, split["train"], split["val"], epochs=pcfg["epochs"], batch_size=64, lr=pcfg["lr"],
            max_minutes=args.minutes["predictor"], device=device, name="crystal-predictor", seed=0)
        predictor.cpu()
        torch.save({"state_dict": predictor.state_dict()}, pred_path)
    predictor.eval()
    res_path = out / "results.json"  # earlier generators' results are kept; the ones run now are replaced
    old = json.loads(res_path.read_text()) if res_path.exists() else {}
    results = old | {"date": str(date.today()), "device": str(device),
                     "cpu": platform.processor() or platform.machine(), "threads": args.threads,
                     "n_train": len(train_df), "target_min_gpa": args.target_min,
                     "train_share_on_target": float(np.mean(y >= args.target_min)),
                     "generators": old.get("generators", {})}
    references = [structure_from_record(r) for r in train_df["structure"]]
    volumes = None
    if args.rescale_volume:
        from invdesign.chem.crystals import fit_atomic_volumes

        volumes = fit_atomic_volumes(references)
    cov_refs = None
    if args.cov:
        val_df = df[df["split"] == "val"]
        cov_refs = fingerprints([structure_from_record(r) for r in val_df["structure"]])
        from matminer.featurizers.composition.composite import ElementProperty

        magpie = ElementProperty.from_preset("magpie")  # the composition scale comes from the training cells
        comps = np.array([magpie.featurize(s.composition) for s in references], dtype=float)
        comps = comps[np.isfinite(comps).all(axis=1)]
        comp_mean, comp_std = comps.mean(axis=0), comps.std(axis=0) + 1e-8
        log.info("COV references: %d validation cells", len(cov_refs))
    for kind in args.generators:
        model, info = train(out / f"{kind}.pt", kind, meta, split, args.minutes[kind], device)
        res = results["generators"].get(kind, {}) | {"train_seconds": info["seconds"], "epochs": info["epochs_run"],
                                                      "config": GEN_CFG[kind]}
        modes = {"targeted": args.target_min, "unconditional": None}
        for label, tmin in ((m, modes[m]) for m in args.modes):
            saved = out / f"samples_{kind}_{label}.parquet"
            if args.reuse_samples and saved.exists():  # the earlier run's samples; their quality numbers stay
                checked, q = pd.read_parquet(saved), {}
                log.info("%s %s: %d saved samples from %s", kind, label, len(checked), saved)
            else:
                t0 = time.monotonic()
                raw = sample(kind, model, args.samples, tmin, split["train"], seed=args.seed, guidance=args.guidance)
                seconds = time.monotonic() - t0
                samples = dom.decode({k: v for k, v in raw.items() if torch.is_tensor(v)}, meta)
                checked = dom.filter_candidates(samples, train_df, {})
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
                else:             # targeted: the predictor's best
                    order = targeted_order(checked, pred, one_per_formula=args.one_per_formula)
                    q["one_per_formula"] = args.one_per_formula
                order = order[args.chgnet_start: args.chgnet_start + args.chgnet]
                chosen = [structure_from_record(checked["structure"].iat[i]) for i in order]
                if volumes is not None and tmin is not None:
                    from invdesign.chem.crystals import rescale_to_volume

                    chosen = [rescale_to_volume(c, volumes) for c in chosen]
                    q["rescaled_volume"] = True
                q["chgnet"] = chgnet_check(chosen, references, args.target_min,
                                           eos_for=args.eos_for if tmin else "none")
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
        pick = np.random.default_rng(0).permutation(len(references))[:n_screen]
        chosen = set(pick.tolist())  # every screened cell is left out of the hull of every other one
        others = [references[i] for i in range(len(references)) if i not in chosen]
        start = args.screening_start
        screen = chgnet_check([references[i] for i in pick[start:]], others, args.target_min, eos_for="stable")
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
