"""The settings of a whole config file: :class:`Config` (runtime, data, results and the campaigns) and each
:class:`Campaign`, assembled from the blocks' settings classes and cross-checked (a check that needs two blocks
lives here). Standard library only."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from .. import properties as props
from .data import SOURCES, DataSettings, DatasetBase, Split
from .featurize import FEATURIZE
from .filters import FILTERS
from .generators import Generator, Predictor, parse_generator, parse_predictor
from .oracles import ORACLE_SETTINGS
from .runtime import Runtime
from .search import LatentSearch
from .spec import ConfigError, Spec, variant
from .target import Target


CAMPAIGN_KEYS = ("domain", "description", "dataset", "target", "split", "featurize", "generator", "generators",
                 "predictor", "search", "filters", "oracle")


@dataclass(frozen=True, kw_only=True)
class Campaign:
    """One campaign, typed. ``Campaign.parse`` validates the mapping a user writes; ``to_dict`` gives it back
    with every default filled in (``generator:`` normalised to a one-item ``generators:`` list)."""

    name: str
    domain: str
    description: str
    dataset: DatasetBase
    target: Target
    split: Split
    featurize: Spec
    generators: tuple[Generator, ...]
    predictor: Predictor
    search: LatentSearch
    filters: Spec
    oracle: Spec

    @classmethod
    def parse(cls, name: str, data, source: str = "config", results: str = "results") -> Campaign:
        where = f"campaigns.{name}"
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: {where}: {data!r} is not of type 'object'; give the campaign's keys")
        unknown = sorted(set(data) - set(CAMPAIGN_KEYS))
        if unknown:
            raise ConfigError(f"{source}: unknown key '{where}.{unknown[0]}'; allowed keys there: "
                              f"{', '.join(sorted(k for k in CAMPAIGN_KEYS if k != 'generator'))}, generator")
        for key in ("domain", "dataset", "target"):
            if key not in data:
                raise ConfigError(f"{source}: {where}: '{key}' is a required property; add it (see "
                                  "config/config.yaml for an example)")
        domain = data["domain"]
        if domain not in SOURCES:
            raise ConfigError(f"{source}: {where}.domain = {domain!r} is not allowed; use one of {sorted(SOURCES)}")
        ds = data["dataset"]
        if not isinstance(ds, dict) or "source" not in ds:
            raise ConfigError(f"{source}: {where}.dataset.source is required; use one of {sorted(SOURCES[domain])}")
        if ds["source"] not in SOURCES[domain]:
            other = [d for d, s in SOURCES.items() if ds["source"] in s]
            if other:
                raise ConfigError(f"{source}: {where}.dataset.source = {ds['source']!r} does not fit domain "
                                  f"{domain!r}; use one of {sorted(SOURCES[domain])}")
        dataset = variant(ds, SOURCES[domain], "source", None, f"{where}.dataset", source, f"{domain} sources",
                          {k: v for s in SOURCES.values() for k, v in s.items()})
        if "generator" in data and "generators" in data:
            raise ConfigError(f"{source}: {where} has both generator: and generators:; keep one (generators: is a "
                              "list for several generators)")
        if "generators" in data:
            items = data["generators"]
            if not isinstance(items, list) or not items:
                raise ConfigError(f"{source}: {where}.generators: give a non-empty list of generators, e.g. "
                                  "[{type: vae}, {type: diffusion}]")
            gens = tuple(parse_generator(g, domain, f"{where}.generators.{i}", source) for i, g in enumerate(items))
        else:
            gens = (parse_generator(data.get("generator"), domain, f"{where}.generator", source),)
        types = [g.type for g in gens]
        dup = sorted({t for t in types if types.count(t) > 1})
        if dup:
            raise ConfigError(f"{source}: {where}.generators lists type {dup[0]!r} twice; give each generator type "
                              "once")
        oracles = ORACLE_SETTINGS[domain]
        every_oracle = {f"{t} oracle ({d})": c for d, o in ORACLE_SETTINGS.items() for t, c in o.items()}
        oracle_cfg = dict(data.get("oracle") or {})
        if "feedback_from" in oracle_cfg and domain != "crystals":
            raise ConfigError(f"{source}: {where}.oracle.feedback_from ranks by CHGNet verdicts and works for "
                              "crystal campaigns only; remove it")
        camp = cls(
            name=name, domain=domain, description=_string(data.get("description", ""), f"{where}.description",
                                                          source),
            dataset=dataset,
            target=Target.parse(data["target"], f"{where}.target", source),
            split=Split.parse(data.get("split"), f"{where}.split", source),
            featurize=_domain_block(data, "featurize", FEATURIZE, domain, where, source),
            generators=gens,
            predictor=parse_predictor(data.get("predictor"), f"{where}.predictor", source),
            search=LatentSearch.parse(data.get("search"), f"{where}.search", source),
            filters=_domain_block(data, "filters", FILTERS, domain, where, source),
            oracle=variant(oracle_cfg, oracles, "type", next(iter(oracles)), f"{where}.oracle", source,
                           f"{domain} oracles", every_oracle),
        )
        camp._check(where, source, results)
        return camp

    def _check(self, where: str, source: str, results: str) -> None:
        prop = self.dataset.registered_property()
        unit = self.target.unit
        if prop is not None and unit is not None and unit != prop.unit:
            raise ConfigError(f"{source}: {where}.target.unit = {unit!r} but {self.dataset.property_column} is in "
                              f"{prop.unit}; convert the target or fix the unit")
        if prop is not None and prop.domain != self.domain:
            raise ConfigError(f"{source}: {where}.dataset.property_kind = {prop.name!r} is a {prop.domain} property; "
                              f"a {self.domain} campaign cannot hold it: fix property_kind or leave it out")
        if self.split.val + self.split.test >= 0.9:
            raise ConfigError(f"{source}: {where}.split: val + test = {self.split.val + self.split.test:g} leaves "
                              "less than 10% of the rows for training; lower split.val or split.test")
        feedback = getattr(self.oracle, "feedback_from", [])
        if feedback and self.feedback_measure is None:
            # the feedback ranker models P(stable) x P(the oracle's measure of the property in the target): without a
            # measure it would judge the property by another one
            raise ConfigError(f"{source}: {where}.oracle.feedback_from ranks by the {self.oracle.type} oracle's "
                              f"measure of the campaign property, and it does not measure "
                              f"{self.dataset.property_column}; remove feedback_from (and compositions.from_feedback) "
                              "or target a property it measures")
        for i, gen in enumerate(self.generators):
            comp = getattr(gen.sample, "compositions", None)
            if comp is not None and comp.from_feedback and not feedback:
                raise ConfigError(f"{source}: {where} generator {gen.type}: compositions.from_feedback needs "
                                  "oracle.feedback_from (earlier campaigns' candidates_verified tables); add it or "
                                  "list formulas instead")
        own = Path(results.rstrip("/") or ".", self.name).resolve()
        earlier = [(f"{where}.oracle.feedback_from", p) for p in feedback]
        earlier += [(f"{where} generator {g.type}: seeds_from", p) for g in self.generators
                    for p in getattr(g.sample, "seeds_from", [])]
        for key, p in earlier:
            if Path(p).resolve().parent == own:
                raise ConfigError(f"{source}: {key}: {p} is this campaign's own output, a cycle; point it at an "
                                  "earlier campaign's candidates_verified table (e.g. a copy of this one's from a "
                                  "previous run)")

    # ------------------------------------------------------------------ access
    @property
    def target_property(self) -> props.Property | None:
        return self.dataset.registered_property()

    @property
    def feedback_measure(self) -> str | None:
        """The column of the oracle's verified tables that measures the campaign property (what the feedback ranker
        reads from earlier campaigns' verdicts); None where the oracle does not measure it."""
        from ..oracles import measured_by

        prop = self.target_property
        return measured_by(prop.name).get(self.oracle.type) if prop else None

    @property
    def unmeasured_note(self) -> str:
        """One line where no tier of the campaign's oracle measures its target property ('' where one does): the
        campaign still runs, ranked by the predictor, and its verified table says the property was not measured."""
        from ..oracles import measured_by

        prop, oracle = self.target_property, self.oracle.type
        if prop is not None and oracle in measured_by(prop.name):
            return ""
        return (f"campaign {self.name}: the {oracle} oracle does not measure {self.dataset.property_column}"
                + ("" if prop else " (a user property: set dataset.property_kind if it is a registered one)")
                + "; its candidates are ranked by the predictor alone and no hit is confirmed by physics")

    @property
    def unit(self) -> str:
        p = self.target_property
        return p.unit if p else (self.target.unit or "")

    def generator(self, kind: str) -> Generator:
        for g in self.generators:
            if g.type == kind:
                return g
        raise KeyError(f"campaign {self.name} has no {kind!r} generator")

    def to_dict(self) -> dict:
        return {"domain": self.domain, "description": self.description, "dataset": self.dataset.to_dict(),
                "target": self.target.to_dict(), "split": self.split.to_dict(),
                "featurize": self.featurize.to_dict(), "generators": [g.to_dict() for g in self.generators],
                "predictor": self.predictor.to_dict(), "search": self.search.to_dict(),
                "filters": self.filters.to_dict(), "oracle": self.oracle.to_dict()}


def _string(value, where, source) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{source}: {where}: {value!r} is not of type 'string'")
    return value


def _domain_block(data, key, classes, domain, where, source):
    block = data.get(key)
    cls = classes[domain]
    if isinstance(block, dict):
        mine = {f.name for f in dataclasses.fields(cls)}
        for extra in sorted(set(block) - mine):
            other = [d for d, c in classes.items() if d != domain and extra in {f.name for f in dataclasses.fields(c)}]
            if other:
                raise ConfigError(f"{source}: unknown key '{where}.{key}.{extra}': it is a {other[0]} setting, not "
                                  f"one of {domain}; remove it; allowed keys there: {', '.join(sorted(mine))}")
    return cls.parse(block, f"{where}.{key}", source)


# ---------------------------------------------------------------------------------------------- the whole file

TOP_KEYS = ("runtime", "data", "results", "campaigns")


def _check_writable_folder(results: str, source: str) -> None:
    """``results`` must be a folder this user can create or write: its nearest existing ancestor is a writable
    folder (a file on the way, /proc or a read-only mount fail here, before any job runs)."""
    import os

    for q in (Path(results), *Path(results).parents):
        if q.is_symlink() and not q.exists():
            raise ConfigError(f"{source}: results = {results!r}: {q} is a link to {os.readlink(q)}, which does not "
                              "exist; create that folder or remove the link")
    p = Path(results).resolve()
    for q in (p, *p.parents):
        if q.exists():
            if not q.is_dir():
                raise ConfigError(f"{source}: results = {results!r}: {q} is a file, not a folder; give a folder "
                                  "such as results")
            if not os.access(q, os.W_OK | os.X_OK) or str(q).startswith(("/proc", "/sys")):
                raise ConfigError(f"{source}: results = {results!r}: {q} is not writable; give a folder you can "
                                  "write, such as results")
            return


#: the longest campaign name: it is a folder name and part of every output path (a file name holds 255 bytes)
MAX_NAME = 100


def _check_campaign_name(name, source: str) -> None:
    """Letters, digits, '_' and '-', at most MAX_NAME of them, and no end that repeats one piece 20 times or more
    (Snakemake takes such a wildcard value for a runaway recursion and stops with PeriodicWildcardError)."""
    import re

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ConfigError(f"{source}: campaign name {name!r} may only use letters, digits, '_' and '-'")
    if len(name) > MAX_NAME:
        raise ConfigError(f"{source}: campaign name {name[:20]}... has {len(name)} characters; use at most {MAX_NAME}")
    repeat = re.search(r"(.+?)\1{19,}$", name)
    if repeat:
        raise ConfigError(f"{source}: campaign name {name!r} ends in {repeat.group(1)!r} repeated "
                          f"{len(repeat.group(0)) // len(repeat.group(1))} times, which Snakemake refuses as a "
                          "wildcard (PeriodicWildcardError); shorten the repeat")


@dataclass(frozen=True, kw_only=True)
class Config:
    runtime: Runtime
    data: DataSettings
    results: str
    campaigns: dict[str, Campaign]

    @classmethod
    def parse(cls, data, source: str = "config") -> Config:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: the config is {type(data).__name__}, not a mapping; start from "
                              "config/config.yaml")
        unknown = sorted(set(data) - set(TOP_KEYS))
        if unknown:
            keys = ", ".join(f"'{k}'" for k in unknown)
            raise ConfigError(f"{source}: unknown key {keys}; allowed keys there: {', '.join(sorted(TOP_KEYS))}")
        if "campaigns" not in data:
            raise ConfigError(f"{source}: <top level>: 'campaigns' is a required property; add it (see "
                              "config/config.yaml for an example)")
        results = data.get("results", "results")
        if not isinstance(results, str):
            raise ConfigError(f"{source}: results: {results!r} is not of type 'string'")
        if not results.strip() or Path(results).resolve() == Path("/"):
            raise ConfigError(f"{source}: results = {results!r} would put every output at the filesystem root; "
                              "give a folder such as results")
        _check_writable_folder(results, source)
        camps = data["campaigns"]
        if not isinstance(camps, dict) or not camps:
            raise ConfigError(f"{source}: campaigns: give at least one campaign (a mapping of names to campaigns)")
        for name in camps:
            _check_campaign_name(name, source)
        return cls(runtime=Runtime.parse(data.get("runtime"), "runtime", source),
                   data=DataSettings.parse(data.get("data"), "data", source), results=results,
                   campaigns={n: Campaign.parse(n, c, source, results) for n, c in camps.items()})

    def to_dict(self) -> dict:
        return {"runtime": self.runtime.to_dict(), "data": self.data.to_dict(), "results": self.results,
                "campaigns": {n: c.to_dict() for n, c in self.campaigns.items()}}
