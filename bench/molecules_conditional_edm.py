"""Property-conditional molecule generation on QM9, EDM protocol, for every molecule generator.

    python bench/molecules_conditional_edm.py --out bench/out/edm [--generators diffusion ebm vae]

Protocol (Hoogeboom et al. 2022, section 4.2, as also used by GeoLDM, JODO, UDM-3D):
  * QM9 is split in two halves by a hash of the molecule id. The generator (and anything it uses for
    guidance) is trained on half A; an independent property predictor, the judge, on half B. The
    judge is never used for guidance or selection.
  * (atom count, gap) pairs are drawn from half A; each generator makes one molecule per pair,
    conditioned on that gap; the judge predicts the gap of every valid molecule; we report the mean
    absolute error between requested and judged gap (10,000 samples by default).
  * Bounds: the judge's own MAE on half A against the DFT values (the best any generator can
    look) and the MAE between the judged gaps of half-A molecules and shuffled requests (what an
    unconditional generator scores).
  * Window hit rate: for targets at the 10th and 90th percentile of the data, the share of valid,
    novel samples whose judged gap is within +-0.2 eV of the target.

Differences from EDM, stated in docs/benchmarks.md: generators and judge are 2D graph models
(heavy atoms, no coordinates), the judge is a GNN on graphs rather than EGNN on 3D structures,
and MAE is over valid molecules (validity is reported next to it).

Each stage is cached under --out (data, judge, models, samples), so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import hashlib
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


def half(ids) -> np.ndarray:
    return np.array([int(hashlib.sha1(f"edm-half:{i}".encode()).hexdigest(), 16) % 2 for i in ids])


def load_graphs(out: Path, max_rows):
    ds, gp = out / "dataset.parquet", out / "graphs.pt"
    camp = {"domain": "molecules", "dataset": {"source": "qm9", "property_column": "gap_ev", "max_rows": max_rows,
                                               "seed": 0},
            "target": {"window": [4.0, 5.0]}, "split": {"val": 0.05, "test": 0.0, "seed": 0},
            "featurize": {}}
    if not gp.exists():
        steps.prepare_dataset("edm", camp, {"mirror": str(ROOT.parent / "shared" / "data"),
                                            "cache": str(ROOT / "data" / "cache")}, str(ds))
        steps.featurize("edm", camp, str(ds), str(gp))
    blob = steps._load_blob(str(gp))
    df = pd.read_parquet(ds)
    return df, blob


def split_halves(df, blob):
    h = half(df["id"])
    rng = np.random.default_rng(0)
    val = rng.random(len(df)) < 0.05
    graphs = blob["graphs"]
    parts = {}
    for name, k in (("A", 0), ("B", 1)):
        idx = np.flatnonzero(h == k)
        parts[name] = {"train": [graphs[i] for i in idx if not val[i]], "val": [graphs[i] for i in idx if val[i]],
                       "idx": idx}
    return parts


def meta_for(blob, train):
    from invdesign.models.dense import dense_statistics

    meta = dict(blob["meta"])
    y = np.array([float(g.y.view(-1)[0]) for g in train])
    meta.update(y_mean=float(y.mean()), y_std=float(y.std()), dense=dense_statistics(train))
    return meta


def train_model(path: Path, build, train, val, cfg, device, retrain=False):
    from invdesign.models.train import fit

    same = {k: v for k, v in cfg.items() if k != "max_minutes"}
    ck = torch.load(path, map_location="cpu", weights_only=False) if path.exists() and not retrain else None
    if ck is not None and {k: v for k, v in ck.get("cfg", {}).items() if k != "max_minutes"} == same:
        model = build()
        model.load_state_dict(ck["state_dict"])
        return model.eval(), ck["info"]
    model = build()
    info = fit(model, train, val, epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
               max_minutes=cfg["max_minutes"], device=device, name=path.stem, seed=0,
               weight_decay=cfg.get("weight_decay", 0.0))
    info = {k: v for k, v in info.items() if k != "history"} | {"epochs_run": len(info["history"])}
    model.cpu()
    torch.save({"state_dict": model.state_dict(), "info": info, "cfg": cfg}, path)
    return model.eval(), info


def judge_smiles(judge, smiles, meta, device):
    from invdesign.domains.molecules import featurize_like
    from invdesign.models.predictor import predict_graphs

    graphs = featurize_like(pd.DataFrame({"smiles": smiles}), meta)
    ok = [i for i, g in enumerate(graphs) if g is not None]
    pred = np.full(len(smiles), np.nan)
    if ok:
        pred[ok] = predict_graphs(judge, [graphs[i] for i in ok], device).numpy()
    return pred


def strict_valid(smiles) -> np.ndarray:
    from invdesign.chem.molecules import canonical

    return np.array([isinstance(s, str) and "." not in s and canonical(s) is not None for s in smiles])


GEN_CFG = {
    "diffusion": {"type": "diffusion", "hidden": 64, "edge_hidden": 32, "global_hidden": 32, "layers": 4,
                  "heads": 8, "epochs": 200, "batch_size": 256, "lr": 0.002, "sample_steps": 50},
    "ebm": {"type": "ebm", "hidden": 64, "layers": 3, "epochs": 50, "batch_size": 128, "lr": 0.0005},
    "vae": {"type": "vae", "latent_dim": 64, "hidden": 128, "epochs": 60, "batch_size": 128, "lr": 0.002,
            "property_heads": 5},  # the campaign default: the uncertainty penalty needs an ensemble
}


def generate(kind, model, sizes, targets, meta, args):
    """SMILES for each (size, target) pair; the VAE optimises a latent per target instead."""
    from invdesign.domains.molecules import decode

    gen = torch.Generator().manual_seed(1)
    if kind == "vae":
        from invdesign.search.latent import optimise_latents

        z0 = torch.randn(len(targets), model.latent_dim, generator=gen)
        t = torch.as_tensor(targets, dtype=torch.float32)
        (_, z, _), = optimise_latents(model, z0, (t, t), steps=args.vae_steps, lr=0.05, prior_weight=0.05,
                                      checkpoints=1, uncertainty_weight=args.vae_uncertainty)
        with torch.no_grad():
            out = model.decode(z)
        return decode(out, meta)["smiles"].tolist()
    t0 = time.monotonic()
    out = model.sample(sizes=torch.as_tensor(sizes), target=None if targets is None else torch.as_tensor(targets),
                       guidance_scale=args.guidance.get(kind), generator=gen, batch_size=1000,
                       progress=lambda d, n: log.info("%s: %d/%d [%.0fs]", kind, d, n, time.monotonic() - t0))
    return decode(out, meta)["smiles"].tolist()


def guide_error(guide, smiles, targets, metaA, device):
    """(mean |guide_A - target| over valid samples, validity): the generator side's own view, used to
    choose a guidance scale without touching the judge."""
    valid = strict_valid(smiles)
    pred = judge_smiles(guide, smiles, metaA, device)
    ok = valid & np.isfinite(pred)
    return (float(np.mean(np.abs(pred[ok] - targets[ok]))) if ok.any() else float("inf")), float(valid.mean())


def choose_guidance(kind, model, guide, sizes, targets, metaA, args, device) -> tuple[float, dict]:
    """Guidance scale with the lowest half-A guide error among scales keeping >= 80% of the best validity."""
    scores = {}
    for w in args.guidance_grid:
        sub = argparse.Namespace(**vars(args))
        sub.guidance = {kind: w}
        sm = generate(kind, model, sizes, targets, metaA, sub)
        scores[w] = guide_error(guide, sm, targets, metaA, device)
        log.info("%s guidance %.2f: guide-A MAE %.3f eV, validity %.3f", kind, w, *scores[w])
    best_valid = max(v for _, v in scores.values())
    ok = {w: e for w, (e, v) in scores.items() if v >= 0.8 * best_valid}
    chosen = min(ok, key=ok.get)
    return chosen, {str(w): {"guide_mae": e, "validity": v} for w, (e, v) in scores.items()}


def unconditional(kind, model, sizes, metaA, known, reference, args) -> dict:
    """Unconditional sample quality: validity, uniqueness, novelty vs half A, FCD vs half B."""
    t0 = time.monotonic()
    if kind == "vae":
        from invdesign.domains.molecules import decode

        with torch.no_grad():
            out = model.decode(torch.randn(len(sizes), model.latent_dim, generator=torch.Generator().manual_seed(2)))
        smiles = decode(out, metaA)["smiles"].tolist()
    else:
        smiles = generate(kind, model, sizes, None, metaA, args)
    seconds = time.monotonic() - t0
    valid = strict_valid(smiles)
    from invdesign.chem.molecules import canonical

    canon = [canonical(s) for s, v in zip(smiles, valid) if v]
    uniq = sorted(set(canon))
    res = {"samples": len(smiles), "validity": float(valid.mean()), "uniqueness": len(uniq) / max(len(canon), 1),
           "novelty": float(np.mean([s not in known for s in uniq])) if uniq else 0.0,
           "samples_per_second": len(smiles) / seconds}
    try:
        from fcd_torch import FCD

        res["fcd_vs_halfB"] = float(FCD(device="cpu", n_jobs=1)(uniq, reference))
    except ImportError:
        res["fcd_vs_halfB"] = None
    return res


def best_of_k(kind, model, guide, judge, sizes, targets, ks, args, metaA, metaB, known, device) -> dict:
    """Guide-ranked best-of-k: max(ks) samples per request, the half-A guide picks the one whose
    predicted gap is closest to the request (the judge only scores the pick). One pool of samples
    serves every k (the first k of each request's samples), so the curve over k is paired."""
    from invdesign.chem.molecules import canonical

    kmax = ks[-1]
    m = min(args.best_of_targets or len(targets) // kmax, len(targets))
    tk, reps = targets[:m], np.repeat(np.arange(m), kmax)
    t0 = time.monotonic()
    s2 = generate(kind, model, sizes[:m][reps], tk[reps], metaA, args)
    seconds = time.monotonic() - t0
    v2 = strict_valid(s2)
    g2 = judge_smiles(guide, s2, metaA, device)
    g2[~v2] = np.nan
    j2 = judge_smiles(judge, s2, metaB, device)
    err = np.abs(g2 - tk[reps]).reshape(m, kmax)
    err = np.where(np.isfinite(err), err, np.inf)
    jd = j2.reshape(m, kmax)
    curve = {}
    for k in ks:
        best = err[:, :k].argmin(1)
        okb = np.isfinite(err[:, :k].min(1))
        picked = jd[np.arange(m), best]
        smiles = [canonical(s) for s in np.asarray(s2, dtype=object).reshape(m, kmax)[np.arange(m), best][okb]]
        novel = np.array([s not in known for s in smiles])
        curve[str(k)] = {"mae": float(np.mean(np.abs(picked[okb] - tk[okb]))), "share_with_valid": float(okb.mean()),
                         "guide_mae_of_pick": float(np.mean(err[:, :k].min(1)[okb])),
                         "uniqueness": float(len(set(smiles)) / max(len(smiles), 1)), "novelty": float(novel.mean()),
                         "mae_novel_picks": float(np.mean(np.abs(picked[okb][novel] - tk[okb][novel])))}
        log.info("%s best-of-%d: judge MAE %.3f eV (%d requests)", kind, k, curve[str(k)]["mae"], m)
    return {"k": kmax, "targets": int(m), "samples": int(m * kmax), "mae": curve[str(kmax)]["mae"],
            "share_with_valid": curve[str(kmax)]["share_with_valid"], "curve": curve,
            "samples_per_second": len(s2) / seconds}


STAGES = ("unconditional", "conditional", "best_of", "windows")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "edm"))
    ap.add_argument("--generators", nargs="+", default=["diffusion", "ebm", "vae"])
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--max-rows", type=int, default=None, help="QM9 subset (default: all)")
    ap.add_argument("--minutes", type=json.loads, default={"judge": 10, "guide": 6, "diffusion": 25, "ebm": 8,
                                                           "vae": 10}, help="training budget per model (JSON)")
    ap.add_argument("--guidance", type=json.loads, default={"diffusion": 1.0, "ebm": 1.0})
    ap.add_argument("--best-of", type=int, nargs="+", default=[4],
                    help="k for the best-of-k variant (ranked by the half-A guide); several give a paired curve")
    ap.add_argument("--best-of-targets", type=int, default=None,
                    help="requests for best-of-k (default: --samples / max k, i.e. the same sample budget)")
    ap.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                    help="what to (re)measure; the numbers of stages left out stay from the last run")
    ap.add_argument("--vae-steps", type=int, default=100)
    ap.add_argument("--vae-uncertainty", type=float, default=1.0,
                    help="search.uncertainty_weight of the VAE's latent optimisation (0 = plain gradient descent)")
    ap.add_argument("--guidance-grid", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0],
                    help="guidance scales tried on 1,000 pairs, scored by the half-A guide (never the judge)")
    ap.add_argument("--fixed-guidance", type=json.loads, default={},
                    help='guidance scale per generator that skips the grid search, e.g. {"diffusion": 2.0}')
    ap.add_argument("--unconditional-samples", type=int, default=10000)
    ap.add_argument("--skip-unconditional", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--retrain", nargs="+", default=[], choices=["judge", "guide", *GEN_CFG],
                    help="train these models again (by default a cached model with the same config is reused)")
    args = ap.parse_args(argv)
    out, device = setup_run(args)
    from invdesign.models.predictor import GraphPropertyPredictor
    from invdesign.models.registry import build_generator

    df, blob = load_graphs(out, args.max_rows)
    parts = split_halves(df, blob)
    log.info("half A: %d train / %d val; half B: %d train / %d val", len(parts["A"]["train"]), len(parts["A"]["val"]),
             len(parts["B"]["train"]), len(parts["B"]["val"]))
    metaA, metaB = meta_for(blob, parts["A"]["train"]), meta_for(blob, parts["B"]["train"])
    pcfg = {"hidden": 128, "layers": 4, "epochs": 200, "batch_size": 128, "lr": 0.001}
    judge, jinfo = train_model(out / "judge_B.pt", lambda: GraphPropertyPredictor(metaB, pcfg), parts["B"]["train"],
                               parts["B"]["val"], pcfg | {"max_minutes": args.minutes["judge"]}, device,
                               retrain="judge" in args.retrain)
    guide, ginfo = train_model(out / "guide_A.pt", lambda: GraphPropertyPredictor(metaA, pcfg), parts["A"]["train"],
                               parts["A"]["val"], pcfg | {"max_minutes": args.minutes["guide"]}, device,
                               retrain="guide" in args.retrain)

    smilesA = df["smiles"].to_numpy()[parts["A"]["idx"]]
    yA = df["property"].to_numpy(float)[parts["A"]["idx"]]
    nA = np.array([int(blob["graphs"][i].num_nodes) for i in parts["A"]["idx"]])
    known = set(smilesA)
    smilesB = df["smiles"].to_numpy()[parts["B"]["idx"]]
    reference = list(np.random.default_rng(3).choice(smilesB, size=min(10000, len(smilesB)), replace=False))
    rng = np.random.default_rng(0)
    pick = rng.choice(len(yA), size=args.samples, replace=True)
    sizes, targets = nA[pick], yA[pick].astype(np.float32)

    cache = out / "judge_halfA.npy"
    if cache.exists():
        judged_A = np.load(cache)
    else:
        judged_A = judge_smiles(judge, list(smilesA), metaB, device)
        np.save(cache, judged_A)
    results = {"date": str(date.today()), "device": str(device), "cpu": platform.processor() or platform.machine(),
               "threads": args.threads, "n_half_A": int(len(yA)), "n_samples": args.samples,
               "judge": {"val_mae_halfB": None, "mae_on_halfA": float(np.nanmean(np.abs(judged_A - yA))),
                         "train_seconds": jinfo["seconds"], "epochs": jinfo["epochs_run"]},
               "naive_shuffled_mae": float(np.nanmean(np.abs(judged_A[pick] - rng.permutation(targets)))),
               "guide_A": {"train_seconds": ginfo["seconds"], "epochs": ginfo["epochs_run"]}, "generators": {}}
    if (out / "results.json").exists():  # earlier generators' numbers stay when one is re-run
        results["generators"] = json.loads((out / "results.json").read_text()).get("generators", {})
    log.info("judge MAE on half A %.3f eV (lower bound); shuffled %.3f eV", results["judge"]["mae_on_halfA"],
             results["naive_shuffled_mae"])
    p10, p90 = np.percentile(yA, [10, 90])
    for kind in args.generators:
        gcfg = GEN_CFG[kind] | {"max_minutes": args.minutes[kind]}
        model, info = train_model(out / f"{kind}_A.pt", lambda: build_generator(metaA, gcfg), parts["A"]["train"],
                                  parts["A"]["val"], gcfg, device, retrain=kind in args.retrain)
        res = {"train_seconds": info["seconds"], "epochs": info["epochs_run"], "config": gcfg}
        if kind == "vae":
            res["uncertainty_weight"] = args.vae_uncertainty
        if kind in args.fixed_guidance:
            args.guidance[kind] = res["guidance_scale"] = args.fixed_guidance[kind]
        elif kind != "vae" and len(args.guidance_grid) > 1:
            w, res["guidance_grid"] = choose_guidance(kind, model, guide, sizes[-1000:], targets[-1000:], metaA,
                                                      args, device)
            args.guidance[kind] = w
            res["guidance_scale"] = w
        key = kind if kind != "vae" or args.vae_uncertainty else "vae_plain_gradient"
        if set(args.stages) != set(STAGES):  # a partial re-run keeps the stages it skips
            res = results["generators"].get(key, {}) | res
        if "unconditional" in args.stages and not args.skip_unconditional:
            usizes = nA[np.random.default_rng(5).choice(len(nA), size=args.unconditional_samples, replace=True)]
            res["unconditional"] = unconditional(kind, model, usizes, metaA, known, reference, args)
            log.info("%s unconditional: %s", kind, res["unconditional"])
        if "conditional" in args.stages:
            t0 = time.monotonic()
            smiles = generate(kind, model, sizes, targets, metaA, args)
            res["samples_per_second"] = len(smiles) / (time.monotonic() - t0)
            valid = strict_valid(smiles)
            judged = judge_smiles(judge, smiles, metaB, device)
            ok = valid & np.isfinite(judged)
            canon = pd.Series(smiles)[valid]
            res.update(validity=float(valid.mean()), uniqueness=float(canon.nunique() / max(len(canon), 1)),
                       novelty=float(np.mean([s not in known for s in canon.unique()])) if len(canon) else 0.0,
                       mae=float(np.mean(np.abs(judged[ok] - targets[ok]))), n_judged=int(ok.sum()),
                       mae_unconditional_same_samples=float(np.mean(np.abs(judged[ok] - rng.permutation(targets[ok])))))
        ks = sorted(set(args.best_of))
        if "best_of" in args.stages and ks[-1] > 1:
            res["best_of_k"] = best_of_k(kind, model, guide, judge, sizes, targets, ks, args, metaA, metaB, known,
                                         device)
            res["best_of_k"]["guide"] = results["guide_A"]
        if "windows" in args.stages:
            # window hit rates at the 10th / 90th percentile targets
            hits = {}
            for label, c in (("p10", p10), ("p90", p90)):
                n = min(2000, args.samples // 2)
                sz = nA[rng.choice(np.flatnonzero(np.abs(yA - c) <= 0.2), size=n)]
                sm = generate(kind, model, sz, np.full(n, c, dtype=np.float32), metaA, args)
                v = strict_valid(sm)
                jd = judge_smiles(judge, sm, metaB, device)
                nov = np.array([s not in known for s in sm])
                inside = v & nov & (np.abs(jd - c) <= 0.2)
                hits[label] = {"target_ev": float(c), "samples": n,
                               "share_valid_novel_in_window": float(inside.mean()),
                               "data_share_in_window": float(np.mean(np.abs(yA - c) <= 0.2))}
            res["window_hits"] = hits
        results["generators"][key] = res
        log.info("%s: %s", kind, json.dumps({k: v for k, v in res.items() if k != "config"}))
        (out / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
