"""Glue between Snakemake's ``script:`` directive and :mod:`invdesign.pipeline.steps`.

Every step logs to the rule's ``log:`` file and to stderr, sets torch's thread count
from the rule's ``threads``, and turns user errors into one line (no traceback).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from ..errors import InvdesignError


def setup_logging(log_path: str | None = None) -> None:
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for h in list(root.handlers):
        root.removeHandler(h)
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for h in handlers:
        h.setFormatter(fmt)
        root.addHandler(h)
    for noisy in ("matplotlib", "PIL", "numba", "pymatgen", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run(step: str, smk) -> None:
    from . import launch, steps, verify

    setup_logging(smk.log[0] if smk.log else None)
    log = logging.getLogger("invdesign")
    try:
        import torch

        torch.set_num_threads(max(1, int(smk.threads)))
    except ImportError:  # pragma: no cover
        pass
    cfg = smk.config
    name = getattr(smk.wildcards, "campaign", None)
    camp = cfg["campaigns"][name] if name else None
    kind = getattr(smk.wildcards, "generator", None)
    if camp is not None and kind:  # jobs of one generator see it as campaign["generator"]
        from ..config import generator_config

        camp = dict(camp, generator=generator_config(camp, kind))
    runtime = cfg.get("runtime", {})
    t0 = time.monotonic()
    log.info("step %s%s started", step, f" for campaign {name}" if name else "")
    try:
        if step == "prepare":
            steps.prepare_dataset(name, camp, cfg.get("data", {}), smk.output.dataset)
        elif step == "featurize":
            steps.featurize(name, camp, smk.input.dataset, smk.output.graphs)
        elif step in ("train_generator", "train_predictor"):
            launch.train(step.split("_")[1], name, camp, runtime, smk.input.graphs, smk.output.model,
                         smk.output.metrics)
        elif step == "search":
            steps.search(name, camp, runtime, smk.input.generator, smk.input.graphs, smk.output.samples)
        elif step == "filter":
            steps.filter_and_rank(name, camp, runtime, list(smk.input.samples), smk.input.dataset,
                                  smk.input.predictor, smk.output.csv, smk.output.parquet, smk.output.metrics,
                                  smk.output.structures, ebm_path=(list(smk.input.ebm) or [None])[0])
        elif step == "calibrate_xtb":
            verify.calibrate_xtb(name, camp, smk.input.dataset, smk.output.calibration)
        elif step == "verify_molecules":
            verify.verify_molecules(name, camp, smk.input.candidates, smk.input.dataset, smk.input.calibration,
                                    smk.output.csv, smk.output.parquet, smk.output.sdf, smk.output.metrics)
        elif step == "crystal_batches":
            verify.crystal_batches(camp, smk.input.candidates, smk.output.batches)
        elif step == "relax_crystal_batch":
            verify.relax_crystal_batch(camp, smk.input.batch, smk.input.dataset, smk.output.verified)
        elif step == "verify_crystals":
            verify.verify_crystals(name, camp, list(smk.input.batches), smk.output.csv, smk.output.parquet,
                                   smk.output.metrics)
        elif step == "package_crystals":
            n = verify.package_crystals(smk.input.candidates, smk.output.zip)
            log.info("zipped %d candidate CIFs into %s", n, smk.output.zip)
        elif step == "report_figures":
            from .plots import make_report_figures

            make_report_figures(name, camp, smk.input.dataset, smk.input.samples, smk.input.candidates,
                                smk.input.metrics, smk.input.get("verified"), str(Path(smk.output.hist).parent))
        elif step == "summary":
            steps.summarise(list(smk.input.metrics), smk.output.csv)
        else:  # pragma: no cover
            raise ValueError(f"unknown step {step}")
    except InvdesignError as exc:
        log.error("%s", exc)
        print(f"invdesign error: {exc}", file=sys.stderr)
        sys.exit(1)
    log.info("step %s done in %.1fs", step, time.monotonic() - t0)
