"""Load, validate and complete a campaign configuration.

The settings classes, one module per block (:mod:`~invdesign.config.runtime`, :mod:`~invdesign.config.data`,
:mod:`~invdesign.config.target`, :mod:`~invdesign.config.featurize`, :mod:`~invdesign.config.generators`,
:mod:`~invdesign.config.search`, :mod:`~invdesign.config.filters`, :mod:`~invdesign.config.oracles`), assembled
and cross-checked in :mod:`~invdesign.config.campaign`, are the single source of truth for keys, types, bounds
and defaults; ``workflow/schemas/config.schema.yaml`` is generated from them (:func:`config_schema`). Errors are
one line naming the key and the fix, e.g. ``config: unknown key 'campaigns.qm9_gap.generator.epochz' ...``.
"""

from __future__ import annotations

from pathlib import Path

from .campaign import Campaign, Config
from .generators import (Generator, Predictor, generator_schema, model_settings, parse_generator, parse_predictor,
                         predictor_schema)
from .spec import ConfigError
from .target import target_bounds

__all__ = ["Campaign", "Config", "ConfigError", "Generator", "Predictor", "block_settings", "campaign_settings",
           "config_schema", "dataset_settings", "load_config", "model_settings", "parse_generator", "parse_predictor",
           "parse_settings", "target_bounds", "validate_config"]


def validate_config(config: dict, source: str = "config") -> dict:
    """A validated copy of ``config`` with every default filled in (``generator:`` normalised to a one-item
    ``generators:`` list); raises :class:`InvdesignError` (one line) on the first problem."""
    return Config.parse(config, source=source).to_dict()


def parse_settings(config: dict, from_files: dict, source: str) -> Config:
    """Typed settings of the config Snakemake merged (``from_files`` overridden by ``--config`` values); a problem
    that only the ``--config`` values bring is named as theirs, not the files' (``source``)."""
    try:
        return Config.parse(config, source=source)
    except ConfigError:
        if config == from_files:
            raise
        try:
            Config.parse(from_files, source=source)
        except ConfigError:
            pass
        else:
            Config.parse(config, source="--config")
        raise


def campaign_settings(config: dict, name: str, source: str = "config") -> Campaign:
    """The typed settings of campaign ``name`` of a (validated or raw) config mapping."""
    results = config.get("results", "results")
    return Campaign.parse(name, config["campaigns"][name], source, results)


def dataset_settings(domain: str, data, where: str = "dataset"):
    """Typed dataset settings of a ``domain`` from a mapping (``source`` picks the class; defaults as in a campaign);
    settings objects pass through."""
    from .data import SOURCES as by_domain
    from .spec import Spec, variant

    if isinstance(data, Spec):
        return data
    every = {k: v for s in by_domain.values() for k, v in s.items()}
    return variant(data, by_domain[domain], "source", None, where, "config", f"{domain} sources", every)


def block_settings(kind: str, domain: str, data=None, where: str = ""):
    """Typed ``featurize`` / ``filters`` settings of a ``domain`` from a mapping (None = the defaults)."""
    from .featurize import FEATURIZE
    from .filters import FILTERS
    from .spec import Spec

    if isinstance(data, Spec):
        return data
    return {"featurize": FEATURIZE, "filters": FILTERS}[kind][domain].parse(data, where or kind)


def unmeasured_notes(config: dict) -> list[str]:
    """For a validated config, one line for each campaign whose target property no oracle measures."""
    cfg = Config.parse(config)
    return [c.unmeasured_note for c in cfg.campaigns.values() if c.unmeasured_note]


def load_config(path: str | Path) -> dict:
    """Read a YAML or JSON config file (:func:`~invdesign.config.files.read_config_file`: no key twice, no YTE)
    and validate it (:func:`validate_config`)."""
    from .files import read_config_file

    return validate_config(read_config_file(path), source=str(path))


def config_schema() -> dict:
    """JSON Schema (draft 2020-12) of a config file, generated from the settings classes."""
    from .generators import DEFAULT_TYPE, generator_types
    from .oracles import ORACLE_SETTINGS
    from .data import SOURCES, DataSettings, Split
    from .featurize import FEATURIZE
    from .filters import FILTERS
    from .runtime import Runtime
    from .search import LatentSearch
    from .target import Target

    defs: dict = {}

    def ref(name: str, schema: dict) -> dict:
        defs[name] = schema
        return {"$ref": f"#/$defs/{name}"}

    def by_key(key: str, variants: dict[str, dict], default: str | None) -> dict:
        """A mapping whose ``key`` picks its schema (missing key = ``default``)."""
        rules = []
        for name, r in variants.items():
            cond = {"properties": {key: {"const": name}}, "required": [key]}
            if name == default:
                cond = {"anyOf": [cond, {"not": {"required": [key]}}]}
            rules.append({"if": cond, "then": r})
        return {"type": "object", "properties": {key: {"enum": sorted(variants)}}, "allOf": rules}

    camp_rules = []
    for domain, sources in SOURCES.items():
        gens = {t: ref(f"{domain}_{t}_generator", generator_schema(domain, t)) for t in generator_types(domain)}
        gen = by_key("type", gens, DEFAULT_TYPE)
        oracles = {t: ref(f"{t}_oracle", c.json_schema()) for t, c in ORACLE_SETTINGS[domain].items()}
        camp_rules.append({"if": {"properties": {"domain": {"const": domain}}, "required": ["domain"]},
                           "then": {"properties": {
                               "dataset": by_key("source", {s: ref(f"{s}_dataset", c.json_schema())
                                                            for s, c in sources.items()}, None),
                               "featurize": ref(f"{domain}_featurize", FEATURIZE[domain].json_schema()),
                               "filters": ref(f"{domain}_filters", FILTERS[domain].json_schema()),
                               "generator": gen,
                               "generators": {"type": "array", "minItems": 1, "items": gen},
                               "oracle": by_key("type", oracles, next(iter(oracles)))}}})
    campaign = {
        "type": "object", "additionalProperties": False, "required": ["domain", "dataset", "target"],
        "properties": {
            "domain": {"enum": sorted(SOURCES)}, "description": {"type": "string"},
            "dataset": {"type": "object", "required": ["source"]},
            "target": ref("target", Target.json_schema()), "split": ref("split", Split.json_schema()),
            "featurize": {"type": "object"}, "filters": {"type": "object"}, "oracle": {"type": "object"},
            "generator": {"type": "object"},
            "generators": {"type": "array", "minItems": 1,
                           "description": "several generators whose candidates are merged (instead of a single "
                                          "generator:); one per type"},
            "predictor": ref("predictor", predictor_schema()),
            "search": ref("search", LatentSearch.json_schema())},
        "not": {"required": ["generator", "generators"]},
        "allOf": camp_rules}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "invdesign campaign configuration",
        "description": "Generated from invdesign/config (python -m invdesign.config.schema); do not edit by hand. "
                       "Validated before any rule runs; unknown keys are errors; defaults are filled in for keys "
                       "that are left out.",
        "type": "object", "additionalProperties": False, "required": ["campaigns"],
        "properties": {
            "runtime": ref("runtime", Runtime.json_schema()), "data": ref("data", DataSettings.json_schema()),
            "results": {"type": "string", "default": "results", "minLength": 1,
                        "description": "Output folder; one sub-folder per campaign"},
            "campaigns": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": "^[A-Za-z0-9_-]+$"},
                          "additionalProperties": ref("campaign", campaign)}},
        "$defs": dict(sorted(defs.items())),
    }
