"""Rule ``search``: samples toward the target from one generator, with the current config's sampling settings
(never the ones stored with the model). A trained generator samples its checkpoint: latent-space optimisation
(vae), classifier-free guided diffusion or Langevin sampling with a property energy; structure prediction for
given formulas when the crystal diffusion generator's ``compositions:`` asks for it. A classical arm (a declaration
that is not trained: :mod:`invdesign.arms`) proposes from the campaign's data set, known table and independent
predictor instead."""

from __future__ import annotations

import logging
import time

import pandas as pd

from ..artifacts import load_graphs, load_model, read_table
from ..config.generators import get_generator
from ..config.search import LatentSearch
from ..config.target import Target
from ..io import write_table

log = logging.getLogger("invdesign")


def search(*, campaign: str, domain: str, kind: str, sample: dict, latent_search: dict | None, target: dict,
           unit: str, runtime: dict, feedback: list, feedback_measure: str | None, samples: str,
           generator: str | None = None, graphs: str | None = None, dataset: str | None = None,
           known: str | None = None, predictor: str | None = None, seeds: list | None = None) -> None:
    """Write ``samples``: one row per sample, decoded by the domain, with the sampler's columns. ``sample``: the
    generator's sampling settings; ``latent_search``: the campaign's ``search:`` (for a generator that declares
    ``uses_search``, else None); ``feedback``: earlier campaigns' verified tables (structure prediction
    ``from_feedback``) and ``feedback_measure`` their column that measures the campaign property (the oracle's
    declaration). A trained generator reads its checkpoint ``generator`` and the ``graphs``; a classical arm the
    ``dataset``, the ``known`` table and the ``predictor``, and a molecule arm the earlier campaigns' verified tables
    its ``seeds_from`` names (``seeds``: those paths as the rule's inputs; the settings' own when not given)."""
    from ..device import resolve_device

    plugin = get_generator(domain, kind)
    settings = plugin.sample.parse(sample, f"campaigns.{campaign} {kind} sampling")
    tgt = Target.parse(target).to_dict()
    device = resolve_device(runtime.get("device"))
    t0 = time.monotonic()
    if plugin.trained:
        df = _sample(plugin, settings, campaign, domain, tgt, unit, device, latent_search, generator, graphs,
                     feedback, feedback_measure)
    else:
        df = _propose(plugin, settings, campaign, domain, tgt, unit, device, dataset, known, predictor, seeds)
    df.insert(0, "generator", kind)
    df.insert(0, "sample_id", [f"{campaign}-{kind}-{i:06d}" for i in range(len(df))])
    log.info("%s: %d samples in %.1fs", kind, len(df), time.monotonic() - t0)
    write_table(df, samples)


def _sample(plugin, settings, campaign, domain, tgt, unit, device, latent_search, generator, graphs, feedback,
            feedback_measure) -> pd.DataFrame:
    """The samples of a trained generator's checkpoint."""
    from ..domains import get_domain
    from ..sampling import SampleRequest, make_sampler
    from ..targets import check_target_in_range

    model, ckpt = load_model(generator)
    model.to(device)
    meta = ckpt["meta"]
    train = load_graphs(graphs).train
    check_target_in_range(tgt, [float(g.y.view(-1)[0]) for g in train], f"campaigns.{campaign}", unit)
    request = SampleRequest(target=tgt, train=train)
    compositions = getattr(settings, "compositions", None)
    if compositions is not None:  # structure prediction for given formulas (crystal diffusion)
        from .compositions import composition_cells, structure_prediction_formulas

        formulas = structure_prediction_formulas(compositions, meta, feedback, tgt, feedback_measure)
        request.compositions, request.composition_formulas = composition_cells(formulas, meta,
                                                                               compositions.cells_per_formula)
    search_settings = LatentSearch.parse(latent_search) if latent_search is not None else None
    out = make_sampler(plugin.type, model, settings, search=search_settings, device=device).sample(request)
    df = get_domain(domain).decode(out.structures, meta)
    for name, values in out.columns.items():
        df[name] = values
    return df


def _propose(plugin, settings, campaign, domain, tgt, unit, device, dataset, known, predictor,
             seeds) -> pd.DataFrame:
    """The proposals of a classical arm, which reads the data set, the known table and the predictor (and, seeded,
    the earlier campaigns' verified tables)."""
    from ..arms.base import ArmRequest
    from ..domains import get_domain
    from ..targets import check_target_in_range
    from .filter import predict

    dom = get_domain(domain)
    data = read_table(dataset, ["id", "property", "split"])
    model, ckpt = load_model(predictor)
    model.to(device)

    def predict_table(table: pd.DataFrame):
        return predict(model, dom.featurize_like(table, ckpt["meta"]), device)

    request = ArmRequest(target=tgt, dataset=data, known=read_table(known, [dom.identifier]), predict=predict_table)
    if getattr(settings, "seeds_from", None):
        from ..arms.molecules import read_seeds

        request.seeds = read_seeds(seeds or settings.seeds_from)
    check_target_in_range(tgt, request.train["property"], f"campaigns.{campaign}", unit)
    return plugin.load_sampler_class()(settings).propose(request).reset_index(drop=True)
