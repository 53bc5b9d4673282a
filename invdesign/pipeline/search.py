"""Rule ``search``: samples toward the target from one trained generator, with the current config's sampling
settings (never the ones stored with the model): latent-space optimisation (vae), classifier-free guided
diffusion or Langevin sampling with a property energy; structure prediction for given formulas when the
crystal diffusion generator's ``compositions:`` asks for it."""

from __future__ import annotations

import logging
import time

from ..artifacts import load_graphs, load_model
from ..config.generators import get_generator
from ..config.search import LatentSearch
from ..config.target import Target
from ..io import write_table

log = logging.getLogger("invdesign")


def search(*, campaign: str, domain: str, kind: str, sample: dict, latent_search: dict | None, target: dict,
           unit: str, runtime: dict, generator: str, graphs: str, feedback: list, feedback_measure: str | None,
           samples: str) -> None:
    """Write ``samples``: one row per sample, decoded by the domain, with the sampler's columns. ``sample``: the
    generator's sampling settings; ``latent_search``: the campaign's ``search:`` (for a generator that declares
    ``uses_search``, else None); ``feedback``: earlier campaigns' verified tables (structure prediction
    ``from_feedback``) and ``feedback_measure`` their column that measures the campaign property (the oracle's
    declaration)."""
    from ..device import resolve_device
    from ..domains import get_domain
    from ..sampling import SampleRequest, make_sampler
    from ..targets import check_target_in_range

    settings = get_generator(domain, kind).sample.parse(sample, f"campaigns.{campaign} {kind} sampling")
    tgt = Target.parse(target).to_dict()
    device = resolve_device(runtime.get("device"))
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
    sampler = make_sampler(kind, model, settings, search=search_settings, device=device)
    t0 = time.monotonic()
    out = sampler.sample(request)
    df = get_domain(domain).decode(out.structures, meta)
    for name, values in out.columns.items():
        df[name] = values
    df.insert(0, "generator", kind)
    df.insert(0, "sample_id", [f"{campaign}-{kind}-{i:06d}" for i in range(len(df))])
    log.info("%s: %d samples in %.1fs", kind, len(df), time.monotonic() - t0)
    write_table(df, samples)
