"""Property-conditional molecule generation on QM9, EDM protocol, for every molecule generator.

    python -m bench.molecules_conditional_edm --out bench/out/edm [--generators diffusion ebm vae]

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

The bench is a campaign as a user would write it (``bench_campaign``: dataset, generators, predictor and the
VAE's latent search), validated by ``invdesign.config.Config.parse``; its data come from
``invdesign.pipeline.data.campaign_data`` and its samples from the generators' samplers
(``invdesign.sampling.make_sampler(...).sample_for`` for the (size, gap) pairs of the protocol; the VAE optimises
one latent per request with ``invdesign.sampling.latent.optimise_latents``). Trained models are cached as the
workflow's checkpoints (``registry.checkpoint``, read back with ``invdesign.artifacts.load_model``) and reused
while their model and training settings (the time budget aside) are unchanged.
"""

from __future__ import annotations

import argparse
import dataclasses
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

from bench.lib.common import ROOT, provenance, setup_run
from invdesign.data.known import novelty_key

log = logging.getLogger("bench")
#: the packages whose versions the results record
PACKAGES = ("torch", "torch-geometric", "rdkit", "selfies", "fcd-torch")


def half(ids) -> np.ndarray:
    return np.array([int(hashlib.sha1(f"edm-half:{i}".encode()).hexdigest(), 16) % 2 for i in ids])


GEN_CFG = {
    "diffusion": {"type": "diffusion", "hidden": 64, "edge_hidden": 32, "global_hidden": 32, "layers": 4,
                  "heads": 8, "epochs": 200, "batch_size": 256, "lr": 0.002, "sample_steps": 50},
    # langevin_train_steps: 20 is what this bench's EBM has always trained with (the model's own default before
    # the settings classes; the campaign default is 10)
    "ebm": {"type": "ebm", "hidden": 64, "layers": 3, "epochs": 50, "batch_size": 128, "lr": 0.0005,
            "langevin_train_steps": 20},
    "vae": {"type": "vae", "latent_dim": 64, "hidden": 128, "epochs": 60, "batch_size": 128, "lr": 0.002,
            "property_heads": 5},  # the campaign default: the uncertainty penalty needs an ensemble
}
#: judge (half B) and guide (half A): the same predictor, each with its own time budget
PREDICTOR_CFG = {"hidden": 128, "layers": 4, "epochs": 200, "batch_size": 128, "lr": 0.001}


def bench_campaign(args, out: Path):
    """The bench as the campaign a user would write, validated: QM9 gaps, the generators of ``--generators`` with
    their budgets and guidance scales, the judge/guide predictor, and the VAE's latent search (one point per
    trajectory, ``--vae-steps``, ``--vae-uncertainty``). The target window is not used by the protocol."""
    from invdesign.config import Config

    dataset = {"source": "qm9", "property_column": "gap_ev", "seed": 0}
    if args.max_rows is not None:
        dataset["max_rows"] = args.max_rows
    generators = []
    for kind in args.generators:
        g = GEN_CFG[kind] | {"max_minutes": args.minutes[kind]}
        if kind != "vae" and args.guidance.get(kind) is not None:
            g["guidance_scale"] = args.guidance[kind]
        generators.append(g)
    raw = {"results": str(out),
           "data": {"mirror": str(ROOT.parent / "shared" / "data"), "cache": str(ROOT / "data" / "cache")},
           "campaigns": {"edm": {
               "domain": "molecules", "dataset": dataset, "target": {"window": [4.0, 5.0]},
               "split": {"val": 0.05, "test": 0.0, "seed": 0}, "featurize": {},
               "generators": generators, "predictor": PREDICTOR_CFG,
               "search": {"steps": args.vae_steps, "lr": 0.05, "prior_weight": 0.05, "checkpoints": 1,
                          "uncertainty_weight": args.vae_uncertainty}}}}
    cfg = Config.parse(raw, source="bench/molecules_conditional_edm.py")
    return cfg.campaigns["edm"], cfg.data.to_dict()


def load_data(camp, data: dict, out: Path):
    """(dataset table, GraphSet), prepared and featurized into ``out`` once (campaign_data reuses them)."""
    from invdesign.pipeline.data import campaign_data

    return campaign_data(camp, out, data=data)


def split_halves(df, data):
    h = half(df["id"])
    rng = np.random.default_rng(0)
    val = rng.random(len(df)) < 0.05
    graphs = data.graphs
    parts = {}
    for name, k in (("A", 0), ("B", 1)):
        idx = np.flatnonzero(h == k)
        parts[name] = {"train": [graphs[i] for i in idx if not val[i]], "val": [graphs[i] for i in idx if val[i]],
                       "idx": idx}
    return parts


def meta_for(data, train):
    from invdesign.models.dense import dense_statistics

    meta = dict(data.meta)
    y = np.array([float(g.y.view(-1)[0]) for g in train])
    meta.update(y_mean=float(y.mean()), y_std=float(y.std()), dense=dense_statistics(train))
    return meta


def _without_budget(params: dict) -> dict:
    """Training params with the time budget left out: a cached model trained with another budget is reused."""
    return {**params, "train": {k: v for k, v in (params.get("train") or {}).items() if k != "max_minutes"}}


def train_model(path: Path, spec, meta: dict, train_set, val_set, device, retrain=False):
    """``spec``: a :class:`~invdesign.config.Generator` or :class:`~invdesign.config.Predictor`; the cached
    checkpoint at ``path`` is reused when its model and training settings (budget aside) are ``spec``'s."""
    from invdesign.artifacts import load_model
    from invdesign.config import Generator
    from invdesign.errors import InvdesignError
    from invdesign.io import torch_save
    from invdesign.models.predictor import GraphPropertyPredictor
    from invdesign.models.registry import build_generator, checkpoint
    from invdesign.models.train import fit, seed_everything

    is_gen = isinstance(spec, Generator)
    want = _without_budget(spec.training_params())
    if path.exists() and not retrain:
        try:
            model, ck = load_model(path)
        except InvdesignError as exc:  # e.g. an older bench's cache: train again
            log.info("%s", exc)
        else:
            if _without_budget({k: ck.get(k) for k in want}) == want:
                log.info("reusing %s (same model and training settings)", path)
                return model, ck["train_info"]
            log.info("%s was trained with other settings; training again", path)
    seed_everything(spec.train.seed)  # initial weights from the settings' seed, as the training rules do
    model = build_generator(meta, spec.type, spec.model) if is_gen else GraphPropertyPredictor(meta, spec.model)
    info = fit(model, train_set, val_set, spec.train, device=device, workers=0, name=path.stem)
    info = {k: v for k, v in info.items() if k != "history"} | {"epochs_run": len(info["history"])}
    model.cpu()
    torch_save(checkpoint("generator" if is_gen else "predictor", model, meta,
                          generator_type=spec.type if is_gen else None, train=spec.train, train_info=info), path)
    return model.eval(), info


def judge_smiles(judge, smiles, meta, device):
    from invdesign.domains import get_domain
    from invdesign.models.predictor import predict_graphs

    graphs = get_domain("molecules").featurize_like(pd.DataFrame({"smiles": smiles}), meta)
    ok = [i for i, g in enumerate(graphs) if g is not None]
    pred = np.full(len(smiles), np.nan)
    if ok:
        pred[ok] = predict_graphs(judge, [graphs[i] for i in ok], device).numpy()
    return pred


def strict_valid(smiles) -> np.ndarray:
    from invdesign.chem.molecules import canonical

    return np.array([isinstance(s, str) and "." not in s and canonical(s) is not None for s in smiles])


def generate(kind, model, sample, sizes, targets, meta, search):
    """SMILES for each (size, target) pair with the sampling settings ``sample`` (``targets`` None:
    unconditional); the VAE optimises a latent per target instead, with the campaign's ``search`` settings."""
    from invdesign.domains import get_domain

    dom = get_domain("molecules")
    if kind == "vae":
        from invdesign.sampling.latent import optimise_latents

        z0 = torch.randn(len(targets), model.latent_dim, generator=torch.Generator().manual_seed(1))
        t = torch.as_tensor(targets, dtype=torch.float32)
        (_, z, _), = optimise_latents(model, z0, (t, t), steps=search.steps, lr=search.lr,
                                      prior_weight=search.prior_weight, checkpoints=search.checkpoints,
                                      uncertainty_weight=search.uncertainty_weight)
        with torch.no_grad():
            out = model.decode(z, temperature=sample.decode_temperature)
        return dom.decode(out, meta)["smiles"].tolist()
    from invdesign.sampling import make_sampler

    t0 = time.monotonic()
    out = make_sampler(kind, model, sample).sample_for(
        sizes, targets, seed=1, progress=lambda d, n: log.info("%s: %d/%d [%.0fs]", kind, d, n, time.monotonic() - t0))
    return dom.decode(out.structures, meta)["smiles"].tolist()


def guide_error(guide, smiles, targets, metaA, device):
    """(mean |guide_A - target| over valid samples, validity): the generator side's own view, used to
    choose a guidance scale without touching the judge."""
    valid = strict_valid(smiles)
    pred = judge_smiles(guide, smiles, metaA, device)
    ok = valid & np.isfinite(pred)
    return (float(np.mean(np.abs(pred[ok] - targets[ok]))) if ok.any() else float("inf")), float(valid.mean())


def choose_guidance(kind, model, sample, guide, sizes, targets, metaA, search, args,
                    device) -> tuple[float, dict]:
    """Guidance scale with the lowest half-A guide error among scales keeping >= 80% of the best validity."""
    scores = {}
    for w in args.guidance_grid:
        sm = generate(kind, model, sample.replace(guidance_scale=w), sizes, targets, metaA, search)
        scores[w] = guide_error(guide, sm, targets, metaA, device)
        log.info("%s guidance %.2f: guide-A MAE %.3f eV, validity %.3f", kind, w, *scores[w])
    best_valid = max(v for _, v in scores.values())
    ok = {w: e for w, (e, v) in scores.items() if v >= 0.8 * best_valid}
    chosen = min(ok, key=ok.get)
    return chosen, {str(w): {"guide_mae": e, "validity": v} for w, (e, v) in scores.items()}


def unconditional(kind, model, sample, sizes, metaA, known, reference, search) -> dict:
    """Unconditional sample quality: validity, uniqueness, novelty vs half A, FCD vs half B."""
    t0 = time.monotonic()
    if kind == "vae":
        from invdesign.domains import get_domain

        with torch.no_grad():
            out = model.decode(torch.randn(len(sizes), model.latent_dim, generator=torch.Generator().manual_seed(2)),
                               temperature=sample.decode_temperature)
        smiles = get_domain("molecules").decode(out, metaA)["smiles"].tolist()
    else:
        smiles = generate(kind, model, sample, sizes, None, metaA, search)
    seconds = time.monotonic() - t0
    valid = strict_valid(smiles)
    from invdesign.chem.molecules import canonical

    canon = [canonical(s) for s, v in zip(smiles, valid) if v]
    uniq = sorted(set(canon))
    res = {"samples": len(smiles), "validity": float(valid.mean()), "uniqueness": len(uniq) / max(len(canon), 1),
           "novelty": float(np.mean([novelty_key(s) not in known for s in uniq])) if uniq else 0.0,
           "samples_per_second": len(smiles) / seconds}
    try:
        from fcd_torch import FCD

        res["fcd_vs_halfB"] = float(FCD(device="cpu", n_jobs=1)(uniq, reference))
    except ImportError:
        res["fcd_vs_halfB"] = None
    return res


def best_of_k(kind, model, sample, guide, judge, sizes, targets, ks, args, metaA, metaB, known, search,
              device) -> dict:
    """Guide-ranked best-of-k: max(ks) samples per request, the half-A guide picks the one whose
    predicted gap is closest to the request (the judge only scores the pick). One pool of samples
    serves every k (the first k of each request's samples), so the curve over k is paired."""
    from invdesign.chem.molecules import canonical

    kmax = ks[-1]
    m = min(args.best_of_targets or len(targets) // kmax, len(targets))
    tk, reps = targets[:m], np.repeat(np.arange(m), kmax)
    t0 = time.monotonic()
    s2 = generate(kind, model, sample, sizes[:m][reps], tk[reps], metaA, search)
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
        novel = np.array([novelty_key(s) not in known for s in smiles])
        curve[str(k)] = {"mae": float(np.mean(np.abs(picked[okb] - tk[okb]))), "share_with_valid": float(okb.mean()),
                         "guide_mae_of_pick": float(np.mean(err[:, :k].min(1)[okb])),
                         "uniqueness": float(len(set(smiles)) / max(len(smiles), 1)), "novelty": float(novel.mean()),
                         "mae_novel_picks": float(np.mean(np.abs(picked[okb][novel] - tk[okb][novel])))}
        log.info("%s best-of-%d: judge MAE %.3f eV (%d requests)", kind, k, curve[str(k)]["mae"], m)
    return {"k": kmax, "targets": int(m), "samples": int(m * kmax), "mae": curve[str(kmax)]["mae"],
            "share_with_valid": curve[str(kmax)]["share_with_valid"], "curve": curve,
            "samples_per_second": len(s2) / seconds}


STAGES = ("unconditional", "conditional", "best_of", "windows")
#: stages run only when asked for by --stages
EXTRA_STAGES = ("dft_requests",)


def dft_requests(kind, model, sample, guide, judge, sizes, targets, k, metaA, metaB, search, device) -> pd.DataFrame:
    """The answers a DFT judge scores (bench/edm_dft.py): ``k`` samples per request; the k = 1 answer is each
    request's first sample, the best-of-k answer the sample whose half-A guide prediction is closest to the
    request. Every answer carries its validity and the guide's and the judge's predictions."""
    m = len(targets)
    reps = np.repeat(np.arange(m), k)
    smiles = np.asarray(generate(kind, model, sample, sizes[reps], targets[reps], metaA, search), dtype=object)
    valid = strict_valid(smiles)
    g = judge_smiles(guide, list(smiles), metaA, device)
    j = judge_smiles(judge, list(smiles), metaB, device)
    err = np.where(valid & np.isfinite(g), np.abs(g - targets[reps]), np.inf).reshape(m, k)
    rows = []
    for arm_k, pick in ((1, np.zeros(m, dtype=int)), (k, err.argmin(1))):
        at = np.arange(m) * k + pick
        rows.append(pd.DataFrame({"generator": kind, "k": arm_k, "request": np.arange(m), "size": sizes,
                                  "target_ev": targets.astype(float), "smiles": smiles[at], "valid": valid[at],
                                  "guide_ev": g[at], "judge_ev": j[at]}))
    return pd.concat(rows, ignore_index=True)


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
    ap.add_argument("--stages", nargs="+", choices=STAGES + EXTRA_STAGES, default=list(STAGES),
                    help="what to (re)measure; the numbers of stages left out stay from the last run "
                         "(dft_requests: the answers bench/edm_dft.py judges by DFT, written to --dft-requests)")
    ap.add_argument("--dft-requests", type=int, default=80, help="requests of the dft_requests stage")
    ap.add_argument("--dft-k", type=json.loads, default={"vae": 8, "diffusion": 4},
                    help="best-of-k of the dft_requests stage per generator (JSON)")
    ap.add_argument("--dft-requests-out", default=str(ROOT / "bench" / "records" / "edm_dft" / "requests.parquet"))
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
    camp, data = bench_campaign(args, out)

    df, graphs = load_data(camp, data, out)
    parts = split_halves(df, graphs)
    log.info("half A: %d train / %d val; half B: %d train / %d val", len(parts["A"]["train"]), len(parts["A"]["val"]),
             len(parts["B"]["train"]), len(parts["B"]["val"]))
    metaA, metaB = meta_for(graphs, parts["A"]["train"]), meta_for(graphs, parts["B"]["train"])
    pred = camp.predictor
    judge, jinfo = train_model(out / "judge_B.pt", dataclasses.replace(pred, train=pred.train.replace(
        max_minutes=args.minutes["judge"])), metaB, parts["B"]["train"], parts["B"]["val"], device,
        retrain="judge" in args.retrain)
    guide, ginfo = train_model(out / "guide_A.pt", dataclasses.replace(pred, train=pred.train.replace(
        max_minutes=args.minutes["guide"])), metaA, parts["A"]["train"], parts["A"]["val"], device,
        retrain="guide" in args.retrain)

    smilesA = df["smiles"].to_numpy()[parts["A"]["idx"]]
    yA = df["property"].to_numpy(float)[parts["A"]["idx"]]
    nA = np.array([int(graphs.graphs[i].num_nodes) for i in parts["A"]["idx"]])
    # novelty against everything known: all of QM9 (canonical SMILES without stereo), not the training half
    from invdesign.data.qm9 import raw_table

    known = {novelty_key(x) for x in raw_table(data.get("cache", "data/cache"))["SMILES"]}
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
    results = {"date": str(date.today()), "provenance": provenance(PACKAGES), "device": str(device),
               "cpu": platform.processor() or platform.machine(), "threads": args.threads,
               "n_half_A": int(len(yA)), "n_samples": args.samples,
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
        gen = camp.generator(kind)
        model, info = train_model(out / f"{kind}_A.pt", gen, metaA, parts["A"]["train"], parts["A"]["val"], device,
                                  retrain=kind in args.retrain)
        res = {"train_seconds": info["seconds"], "epochs": info["epochs_run"], "config": gen.to_dict()}
        sample = gen.sample  # the sampling settings; the guidance scale is chosen below
        if kind == "vae":
            res["uncertainty_weight"] = args.vae_uncertainty
        if kind in args.fixed_guidance:
            res["guidance_scale"] = args.fixed_guidance[kind]
            if kind != "vae":
                sample = sample.replace(guidance_scale=args.fixed_guidance[kind])
        elif kind != "vae" and len(args.guidance_grid) > 1:
            # the guidance scale is chosen on requests drawn apart from the evaluated ones
            tune = np.random.default_rng(7).choice(len(yA), size=min(1000, args.samples), replace=True)
            w, res["guidance_grid"] = choose_guidance(kind, model, sample, guide, nA[tune], yA[tune].astype(np.float32),
                                                      metaA, camp.search, args, device)
            sample = sample.replace(guidance_scale=w)
            res["guidance_scale"] = w
        key = kind if kind != "vae" or args.vae_uncertainty else "vae_plain_gradient"
        if set(args.stages) != set(STAGES):  # a partial re-run keeps the stages it skips
            res = results["generators"].get(key, {}) | res
        if "unconditional" in args.stages and not args.skip_unconditional:
            usizes = nA[np.random.default_rng(5).choice(len(nA), size=args.unconditional_samples, replace=True)]
            res["unconditional"] = unconditional(kind, model, sample, usizes, metaA, known, reference, camp.search)
            log.info("%s unconditional: %s", kind, res["unconditional"])
        if "conditional" in args.stages:
            t0 = time.monotonic()
            smiles = generate(kind, model, sample, sizes, targets, metaA, camp.search)
            res["samples_per_second"] = len(smiles) / (time.monotonic() - t0)
            valid = strict_valid(smiles)
            judged = judge_smiles(judge, smiles, metaB, device)
            ok = valid & np.isfinite(judged)
            canon = pd.Series(smiles)[valid]
            res.update(validity=float(valid.mean()), uniqueness=float(canon.nunique() / max(len(canon), 1)),
                       novelty=float(np.mean([novelty_key(s) not in known for s in canon.unique()])) if len(canon) else 0.0,
                       mae=float(np.mean(np.abs(judged[ok] - targets[ok]))), n_judged=int(ok.sum()),
                       mae_unconditional_same_samples=float(np.mean(np.abs(judged[ok] - rng.permutation(targets[ok])))))
        ks = sorted(set(args.best_of))
        if "best_of" in args.stages and ks[-1] > 1:
            res["best_of_k"] = best_of_k(kind, model, sample, guide, judge, sizes, targets, ks, args, metaA, metaB,
                                         known, camp.search, device)
            res["best_of_k"]["guide"] = results["guide_A"]
        if "dft_requests" in args.stages:
            # requests of their own seed, apart from the evaluated and the guidance-tuning ones
            pick_d = np.random.default_rng(11).choice(len(yA), size=args.dft_requests, replace=True)
            table = dft_requests(kind, model, sample, guide, judge, nA[pick_d], yA[pick_d].astype(np.float32),
                                 args.dft_k.get(kind, 4), metaA, metaB, camp.search, device)
            dest = Path(args.dft_requests_out)
            old = pd.read_parquet(dest) if dest.exists() else None
            if old is not None:
                old = old[old["generator"] != kind]
            from invdesign.io import write_table

            write_table(pd.concat([old, table], ignore_index=True) if old is not None else table, dest)
            log.info("%s: %d DFT requests written to %s", kind, len(table), dest)
        if "windows" in args.stages:
            # window hit rates at the 10th / 90th percentile targets
            hits = {}
            for label, c in (("p10", p10), ("p90", p90)):
                n = min(2000, args.samples // 2)
                sz = nA[rng.choice(np.flatnonzero(np.abs(yA - c) <= 0.2), size=n)]
                sm = generate(kind, model, sample, sz, np.full(n, c, dtype=np.float32), metaA, camp.search)
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
