"""The workflow's steps as plain functions of (config, input paths, output paths).

Snakemake rules call these through :mod:`invdesign.pipeline.runner`; tests call them
directly. Chemistry packages are imported inside the steps that need them, so the
training steps run on machines that have only torch and torch-geometric.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from ..errors import InvdesignError
from ..io import torch_save, write_json, write_table

log = logging.getLogger("invdesign")

UNITS = {"gap_ev": "eV", "homo_ev": "eV", "lumo_ev": "eV", "bulk_modulus_gpa": "GPa", "shear_modulus_gpa": "GPa"}


def _domain(camp: dict):
    from ..domains import get_domain

    return get_domain(camp["domain"])


def _load_blob(path):
    import torch

    from ..models.graphstore import unpack

    return unpack(torch.load(path, map_location="cpu", weights_only=False))


# ----------------------------------------------------------------------------------------- data
def prepare_dataset(name: str, camp: dict, data_cfg: dict, out_path: str) -> dict:
    from ..splits import assign_splits
    from ..targets import check_target_in_range

    mirror = os.environ.get("INVDESIGN_DATA_MIRROR") or data_cfg.get("mirror")
    ds = camp["dataset"]
    log.info("campaign %s: loading %s data (source %s)", name, camp["domain"], ds["source"])
    df = _domain(camp).load_source(ds, mirror=mirror, cache_dir=data_cfg.get("cache", "data/cache"))
    n0 = len(df)
    df = df[np.isfinite(df["property"].astype(float))].reset_index(drop=True)
    if len(df) < n0:
        log.warning("dropped %d rows without a finite %s", n0 - len(df), ds["property_column"])
    if df["id"].duplicated().any():
        dup = df.loc[df["id"].duplicated(), "id"].iloc[0]
        raise InvdesignError(f"dataset of campaign {name} has duplicate id {dup!r}; make the id column unique")
    if len(df) < 10:
        raise InvdesignError(f"campaign {name}: only {len(df)} usable rows; a generator needs at least 10 "
                             "(check dataset.path and dataset.on_bad_rows)")
    stats = check_target_in_range(camp["target"], df["property"], f"campaigns.{name}",
                                  UNITS.get(ds["property_column"], ""))
    split = camp["split"]
    df["split"] = assign_splits(df["id"], split["val"], split["test"], split["seed"])
    counts = df["split"].value_counts().to_dict()
    log.info("%d rows (train %d / val %d / test %d); %.1f%% of them inside the target range",
             len(df), counts.get("train", 0), counts.get("val", 0), counts.get("test", 0),
             100 * stats["share_in_target"])
    write_table(df, out_path)
    return stats


def featurize(name: str, camp: dict, dataset_path: str, out_path: str) -> None:
    import pandas as pd

    df = pd.read_parquet(dataset_path)
    t0 = time.monotonic()
    graphs, meta = _domain(camp).featurize(df, camp["featurize"])
    if len(graphs) != len(df):
        raise RuntimeError(f"featurize returned {len(graphs)} graphs for {len(df)} rows")
    train_y = df.loc[df["split"] == "train", "property"].to_numpy(float)
    if graphs and hasattr(graphs[0], "bond_order"):  # whole-graph generators' classes and marginals
        from ..models.dense import dense_statistics

        meta["dense"] = dense_statistics([g for g, s in zip(graphs, df["split"]) if s == "train"])
    meta.update(domain=camp["domain"], property_column=camp["dataset"]["property_column"],
                y_mean=float(np.mean(train_y)), y_std=float(np.std(train_y) or 1.0))
    log.info("featurized %d %s in %.1fs: %d node features, %d edge features", len(graphs), camp["domain"],
             time.monotonic() - t0, meta["node_dim"], meta["edge_dim"])
    from ..models.graphstore import pack

    torch_save(pack(graphs, meta=meta, split=df["split"].tolist(), ids=df["id"].tolist()), out_path)


def _split_graphs(blob):
    by = {"train": [], "val": [], "test": []}
    for g, s in zip(blob["graphs"], blob["split"]):
        by[s].append(g)
    return by


# ----------------------------------------------------------------------------------------- training
def _fit_and_save(kind: str, model, blob, cfg: dict, runtime: dict, out_path: str, metrics_path: str,
                  name: str) -> dict:
    from ..device import resolve_device
    from ..models.train import fit, is_main_process, world

    device = resolve_device(runtime.get("device"))
    parts = _split_graphs(blob)
    resume, every = f"{out_path}.resume", float(runtime.get("checkpoint_minutes", 10))
    info = fit(model, parts["train"], parts["val"], epochs=cfg["epochs"], batch_size=cfg["batch_size"],
               lr=cfg["lr"], weight_decay=cfg.get("weight_decay", 0.0), patience=cfg.get("patience"),
               max_minutes=cfg.get("max_minutes"), seed=cfg.get("seed", 0), device=device, name=name,
               workers=int(runtime.get("loader_workers", 0)), checkpoint=resume if every else None,
               checkpoint_minutes=every)
    model.cpu()
    metrics = {"kind": kind, "best_epoch": info["best_epoch"], "best_val": info["best_val"],
               "epochs_run": len(info["history"]), "seconds": info["seconds"], "device": info["device"],
               "processes": world()[2], "resumed_after_epoch": info["resumed_from"],
               "final": info["history"][-1] if info["history"] else {}}
    if is_main_process():  # under torchrun every process holds the same weights; one writes them
        torch_save({"kind": kind, "state_dict": model.state_dict(), "meta": blob["meta"], "cfg": cfg,
                    "train_info": {k: v for k, v in info.items() if k != "history"}}, out_path)
        write_json(metrics, metrics_path)
        Path(resume).unlink(missing_ok=True)  # the model is kept: its checkpoint has served
    return metrics


def train_generator(name: str, camp: dict, runtime: dict, graphs_path: str, out_path: str,
                    metrics_path: str) -> dict:
    from ..models.registry import build_generator
    from ..models.train import seed_everything

    blob = _load_blob(graphs_path)
    seed_everything(camp["generator"].get("seed", 0))  # the initial weights too come from the config's seed
    model = build_generator(blob["meta"], camp["generator"])
    return _fit_and_save("generator", model, blob, camp["generator"], runtime, out_path, metrics_path,
                         f"{name}/{camp['generator']['type']}")


def train_predictor(name: str, camp: dict, runtime: dict, graphs_path: str, out_path: str,
                    metrics_path: str) -> dict:
    from ..device import resolve_device
    from ..models.predictor import GraphPropertyPredictor, predict_graphs
    from ..models.train import is_main_process, seed_everything

    blob = _load_blob(graphs_path)
    seed_everything(camp["predictor"].get("seed", 0))
    model = GraphPropertyPredictor(blob["meta"], camp["predictor"])
    metrics = _fit_and_save("predictor", model, blob, camp["predictor"], runtime, out_path, metrics_path,
                            f"{name}/predictor")
    test = _split_graphs(blob)["test"]
    if test and is_main_process():
        pred = predict_graphs(model, test, resolve_device(runtime.get("device"))).numpy()
        y = np.array([float(g.y.view(-1)[0]) for g in test])
        metrics.update(test_mae=float(np.mean(np.abs(pred - y))), test_n=len(test),
                       test_r2=float(1 - np.sum((pred - y) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-12)))
        log.info("predictor test MAE %.4g (R2 %.3f) on %d held-out examples", metrics["test_mae"],
                 metrics["test_r2"], len(test))
        write_json(metrics, metrics_path)
    return metrics


# ----------------------------------------------------------------------------------------- search
def search(name: str, camp: dict, runtime: dict, generator_path: str, graphs_path: str, out_path: str) -> None:
    """Samples toward the target from ``camp['generator']``: latent optimisation (vae) or guided sampling."""
    import pandas as pd
    import torch

    from ..device import resolve_device
    from ..models.registry import load_checkpoint
    from ..targets import check_target_in_range

    device = resolve_device(runtime.get("device"))
    model, ckpt = load_checkpoint(generator_path)
    model.to(device)
    meta = ckpt["meta"]
    blob = _load_blob(graphs_path)
    train = _split_graphs(blob)["train"]
    check_target_in_range(camp["target"], [float(g.y.view(-1)[0]) for g in train], f"campaigns.{name}",
                          UNITS.get(camp["dataset"]["property_column"], ""))
    kind = camp["generator"]["type"]
    t0 = time.monotonic()
    if kind == "vae":
        samples = _latent_search(name, camp, model, meta, train, device)
    else:
        samples = _guided_sampling(camp, model, meta, train)
    samples.insert(0, "generator", kind)
    samples.insert(0, "sample_id", [f"{name}-{kind}-{i:06d}" for i in range(len(samples))])
    log.info("%s: %d samples in %.1fs", kind, len(samples), time.monotonic() - t0)
    write_table(samples, out_path)


def _latent_search(name, camp, model, meta, train, device):
    import pandas as pd
    import torch

    from ..search.latent import optimise_latents, start_latents
    from ..targets import aim_point

    cfg = camp["search"]
    aim = aim_point(camp["target"], float(model.y_std))
    gen = torch.Generator().manual_seed(cfg["seed"])
    z0, origin = start_latents(model, train, cfg["n_starts"], cfg["from_data"], aim, cfg["noise"], gen, device)
    log.info("latent search (%s) from %d starts (%d encoded near the target, rest from the prior) toward "
             "[%g, %g]", cfg["method"], len(z0), origin.count("data"), *aim)
    trajectory = optimise_latents(model, z0, aim, steps=cfg["steps"], lr=cfg["lr"],
                                  prior_weight=cfg["prior_weight"], checkpoints=cfg["checkpoints"],
                                  uncertainty_weight=cfg["uncertainty_weight"])
    frames = []
    domain = _domain(camp)
    for step, z, pred in trajectory:
        with torch.no_grad():
            out = model.decode(z)
        out = {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in out.items()}
        df = domain.decode(out, meta)
        df["start"] = origin
        df["search_step"] = step
        df["generator_pred"] = pred.cpu().numpy()
        df["latent_norm"] = z.norm(dim=-1).cpu().numpy()
        with torch.no_grad():
            df["generator_pred_std"] = model.predict_property_std(z).cpu().numpy()
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def condition_pairs(train: list, target: dict, y_std: float, count: int, seed: int):
    """(sizes, property values) to condition on, drawn from training graphs inside the aim range.

    Sampling (atom count, property) pairs from the data, as in the EDM protocol, keeps the requested
    values attainable for molecules of that size. Falls back to the whole target range, then to
    uniform values inside the range clipped to the data.
    """
    import torch

    from ..config import target_bounds
    from ..targets import aim_point

    y = np.array([float(g.y.view(-1)[0]) for g in train])
    n = np.array([int(g.num_nodes) for g in train])
    rng = np.random.default_rng(seed)
    for lo, hi in (aim_point(target, y_std), target_bounds(target)):
        pick = np.flatnonzero((y >= lo) & (y <= hi))
        if len(pick):
            idx = rng.choice(pick, size=count, replace=True)
            return torch.as_tensor(n[idx]), torch.as_tensor(y[idx], dtype=torch.float32)
    lo, hi = target_bounds(target)
    lo, hi = max(lo, y.min()), min(hi, y.max())
    idx = rng.choice(len(y), size=count, replace=True)
    return torch.as_tensor(n[idx]), torch.as_tensor(rng.uniform(lo, hi, count), dtype=torch.float32)


def _guided_sampling(camp, model, meta, train):
    import torch

    cfg = camp["generator"]
    sizes, values = condition_pairs(train, camp["target"], float(model.y_std), cfg["n_samples"], cfg["seed"])
    gen = torch.Generator().manual_seed(cfg["seed"])
    t0 = time.monotonic()

    def progress(done, total):
        el = time.monotonic() - t0
        log.info("sampled %d/%d graphs [%.0fs elapsed, ETA %.0fs]", done, total, el, el / done * (total - done))

    asked = None
    if cfg.get("compositions"):  # structure prediction for given formulas (crystal diffusion)
        from .compositions import composition_cells, structure_prediction_formulas

        types, asked = composition_cells(structure_prediction_formulas(camp, meta), meta,
                                         cfg["compositions"].get("cells_per_formula", 2))
        values = values[torch.randint(len(values), (len(types),), generator=gen)]
        log.info("structure prediction for %d formulas (%d cells) conditioned on %s in [%.3g, %.3g] (guidance "
                 "%.2f)", len(set(asked)), len(types), camp["dataset"]["property_column"], float(values.min()),
                 float(values.max()), cfg["guidance_scale"])
        out = model.sample(types=types, target=values, generator=gen, progress=progress)
    else:
        log.info("%s sampling of %d graphs conditioned on %s in [%.3g, %.3g] (guidance %.2f)", cfg["type"],
                 len(sizes), camp["dataset"]["property_column"], float(values.min()), float(values.max()),
                 cfg["guidance_scale"])
        out = model.sample(sizes=sizes, target=values, generator=gen, progress=progress)
    df = _domain(camp).decode(out, meta)
    if asked is not None:
        df["requested_formula"] = asked
    df["requested_property"] = values.numpy()
    df["generator_pred"] = values.numpy() if "property_pred" not in out else out["property_pred"].numpy()
    df["search_step"] = 0
    return df


# ----------------------------------------------------------------------------------------- filter & rank
IDENTIFIER = {"molecules": "smiles", "crystals": "formula"}


def filter_and_rank(name: str, camp: dict, runtime: dict, samples_path, dataset_path: str,
                    predictor_path: str, out_csv: str, out_parquet: str, metrics_path: str,
                    structures_dir: str, ebm_path: str | None = None) -> dict:
    """Merge every generator's samples, check them, predict the property independently, rank.

    ``samples_path``: one file or a list (one per generator). ``ebm_path``: a trained graph EBM whose
    energy gives every candidate an out-of-distribution score (``ood_z``).
    """
    import pandas as pd

    from ..device import resolve_device
    from ..models.predictor import predict_graphs
    from ..models.registry import load_checkpoint
    from ..targets import distance_to_target, in_target

    t0 = time.monotonic()
    domain = _domain(camp)
    paths = [samples_path] if isinstance(samples_path, (str, Path)) else list(samples_path)
    samples = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    if "generator" not in samples:
        samples["generator"] = camp["generators"][0]["type"]
    reference = pd.read_parquet(dataset_path)
    checked = domain.filter_candidates(samples, reference, camp["filters"])
    keep = checked[checked["valid"] & checked["unique"]].copy()
    log.info("%d samples: %d valid, %d valid+unique, %d pass every filter", len(checked),
             int(checked["valid"].sum()), len(keep), int(checked["passes"].sum()))

    predictor, pckpt = load_checkpoint(predictor_path)
    graphs = domain.featurize_like(keep, pckpt["meta"])
    ok = [i for i, g in enumerate(graphs) if g is not None]
    pred = np.full(len(keep), np.nan)
    if ok:
        pred[ok] = predict_graphs(predictor, [graphs[i] for i in ok], resolve_device(runtime.get("device"))).numpy()
    keep["predicted_property"] = pred
    keep["distance_to_target"] = distance_to_target(pred, camp["target"])
    keep["in_target"] = in_target(pred, camp["target"])
    if ebm_path:
        keep["ebm_energy"], keep["ood_z"] = _ood_scores(ebm_path, graphs, runtime)
    # how far the independent predictor is from what the generator aimed at / believed
    keep["generator_disagreement"] = np.abs(keep["generator_pred"].to_numpy(float) - pred)
    keep = keep.sort_values(["passes", "in_target", "distance_to_target", "generator_disagreement"],
                            ascending=[False, False, True, True], kind="stable").reset_index(drop=True)
    keep.insert(0, "rank", np.arange(1, len(keep) + 1))
    keep.insert(1, "campaign", name)
    keep["property_column"] = camp["dataset"]["property_column"]
    keep["unit"] = UNITS.get(camp["dataset"]["property_column"], "")
    keep = _export_structures(camp["domain"], keep, Path(structures_dir))
    first = ["rank", "campaign", IDENTIFIER[camp["domain"]], "predicted_property", "unit", "distance_to_target",
             "in_target", "passes", "reject_reason"]
    cols = [c for c in first if c in keep] + [c for c in keep.columns if c not in first]
    keep = keep[cols]
    write_table(keep, out_parquet)
    write_table(keep.drop(columns=[c for c in ("structure",) if c in keep]), out_csv)

    passing = keep[keep["passes"]]
    n = len(checked)
    n_valid = int(checked["valid"].sum())
    metrics = {
        "campaign": name, "domain": camp["domain"], "target": camp["target"],
        "property": camp["dataset"]["property_column"], "n_samples": n,
        "validity": n_valid / max(n, 1),
        "uniqueness": len(keep) / max(n_valid, 1),
        "novelty": float(keep["novel"].mean()) if len(keep) else 0.0,
        "n_valid_unique_novel": int((keep["novel"]).sum()),
        "n_candidates": int(len(passing)),
        "candidates_in_target_share": float(passing["in_target"].mean()) if len(passing) else 0.0,
        "n_candidates_in_target": int(passing["in_target"].sum()),
        "funnel": {"sampled": n, "valid": n_valid, "unique": len(keep),
                   "novel": int(keep["novel"].sum()), "passes": int(len(passing)),
                   "in_target": int(passing["in_target"].sum())},
        "filter_seconds": time.monotonic() - t0,
        "by_generator": _generator_metrics(checked, keep),
    }
    log.info("%d candidates pass all filters; %d (%.0f%%) predicted inside the target", len(passing),
             metrics["n_candidates_in_target"], 100 * metrics["candidates_in_target_share"])
    write_json(metrics, metrics_path)
    return metrics


def _generator_metrics(checked, keep) -> dict:
    """Validity, uniqueness (within the generator), novelty and hits of each generator's samples."""
    out = {}
    for gen, part in checked.groupby("generator", sort=True):
        valid = part[part["valid"]]
        key = "smiles" if "smiles" in part else "formula"
        n_unique = int(valid[key].nunique()) if key in valid and key == "smiles" else int(part["unique"].sum())
        mine = keep[keep["generator"] == gen]
        passing = mine[mine["passes"]]
        out[str(gen)] = {"n_samples": len(part), "validity": len(valid) / max(len(part), 1),
                         "raw_validity": float(part["raw_valid"].mean()) if "raw_valid" in part else None,
                         "uniqueness": n_unique / max(len(valid), 1),
                         "novelty": float(mine["novel"].mean()) if len(mine) else 0.0,
                         "n_candidates": int(len(passing)),
                         "n_candidates_in_target": int(passing["in_target"].sum()),
                         "candidates_in_target_share": float(passing["in_target"].mean()) if len(passing) else 0.0}
    return out


def _ood_scores(ebm_path: str, graphs: list, runtime: dict):
    """EBM energy and its z-score against the training data for each graph (NaN where no graph)."""
    import torch
    from torch_geometric.loader import DataLoader

    from ..device import resolve_device
    from ..models.registry import load_checkpoint

    ebm, _ = load_checkpoint(ebm_path)
    device = resolve_device(runtime.get("device"))
    ebm.to(device)
    energy = np.full(len(graphs), np.nan)
    needs = getattr(ebm, "score_inputs", ())  # crystal EBM: cell targets (absent for oversized cells)
    ok = [i for i, g in enumerate(graphs) if g is not None and all(hasattr(g, a) for a in needs)]
    vals = []
    for batch in DataLoader([graphs[i] for i in ok], batch_size=512):
        vals.append(ebm.score_graphs(batch.to(device)).cpu())
    if vals:
        energy[ok] = torch.cat(vals).numpy()
    z = (energy - float(ebm.energy_mean)) / max(float(ebm.energy_std), 1e-6)
    return energy, z


def _export_structures(domain: str, cands, folder: Path):
    """Write each passing candidate as a file chemists can open (CIF / SMILES list)."""
    import shutil
    import tempfile

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    paths = [""] * len(cands)
    if domain == "crystals":
        from ..chem.crystals import structure_from_record

        for i, (rank, row) in enumerate(zip(cands["rank"], cands.itertuples())):
            if not row.passes:
                continue
            fname = f"{rank:04d}_{row.formula}.cif"
            structure_from_record(row.structure).to(filename=str(tmp / fname))
            paths[i] = str(folder / fname)
        cands["cif_path"] = paths
    else:
        lines = [f"{row.smiles} rank{row.rank}" for row in cands.itertuples() if row.passes]
        (tmp / "candidates.smi").write_text("\n".join(lines) + ("\n" if lines else ""))
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return cands


def summarise(metric_paths: list[str], out_csv: str) -> None:
    import json

    import pandas as pd

    rows = []
    for p in metric_paths:
        m = json.loads(Path(p).read_text())
        rows.append({k: v for k, v in m.items() if not isinstance(v, dict)} | {"target": json.dumps(m["target"])})
    write_table(pd.DataFrame(rows), out_csv)
