"""Glue between Snakemake's ``script:`` directive and the step functions: bind by name, log, one-line errors.

Each workflow script is two lines, ``run(<step function>, snakemake)``. :func:`run` calls the function with
every named ``input``, ``output`` and ``params`` entry of the rule bound to the parameter of the same name
(a file list as a list of paths), and, where the function asks for them, ``runtime`` and ``data`` (from the
config: where to compute is not part of the science, so a change there re-runs nothing) and ``threads``.
It logs to the rule's ``log:`` file and to stderr, sets torch's thread count from the rule's ``threads``, and
turns user errors (:class:`~invdesign.errors.InvdesignError`) into one line without a traceback.
"""

from __future__ import annotations

import inspect
import logging
import sys
import time

from ..errors import InvdesignError

CONFIG_ARGUMENTS = ("runtime", "data")


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


def _value(v):
    """A Snakemake file entry as a path, a list of them as a list of paths; other values as they are."""
    if isinstance(v, str):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [_value(x) for x in v]
    return v


def bound_arguments(func, smk) -> dict:
    """The keyword arguments ``func`` gets from the job ``smk`` (see the module docstring)."""
    named = {}
    for part in ("input", "output", "params"):
        container = getattr(smk, part)
        for name in container.keys():
            if name in named:
                raise RuntimeError(f"rule entry {name!r} is both in {named[name][0]} and {part}; rename one")
            named[name] = (part, _value(getattr(container, name)))
    kwargs = {}
    for name, p in inspect.signature(func).parameters.items():
        if name in named:
            kwargs[name] = named[name][1]
        elif name in CONFIG_ARGUMENTS:
            kwargs[name] = dict(smk.config.get(name) or {})
        elif name == "threads":
            kwargs[name] = int(smk.threads)
        elif p.default is inspect.Parameter.empty and p.kind is not inspect.Parameter.VAR_KEYWORD:
            raise RuntimeError(f"{func.__module__}.{func.__name__} needs {name!r}, which rule {smk.rule} neither "
                               "has as input, output nor params")
    return kwargs


def run(func, smk) -> None:
    """Run step ``func`` for the Snakemake job ``smk`` (what a workflow script is given as ``snakemake``)."""
    setup_logging(smk.log[0] if smk.log else None)
    log = logging.getLogger("invdesign")
    try:
        import torch

        torch.set_num_threads(max(1, int(smk.threads)))
    except ImportError:  # pragma: no cover
        pass
    wildcards = ", ".join(f"{k} {v}" for k, v in smk.wildcards.items())
    t0 = time.monotonic()
    log.info("step %s%s started", smk.rule, f" ({wildcards})" if wildcards else "")
    try:
        func(**bound_arguments(func, smk))
    except InvdesignError as exc:
        log.error("%s", exc)
        print(f"invdesign error: {exc}", file=sys.stderr)
        sys.exit(1)
    log.info("step %s done in %.1fs", smk.rule, time.monotonic() - t0)
