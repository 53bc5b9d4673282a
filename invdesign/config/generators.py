"""Settings of the generators and the property predictor: one class per part (model, train, sample) and per
generator type and domain.

A user writes a generator as one flat mapping (``{type: diffusion, hidden: 64, epochs: 40, n_samples: 1000}``);
:func:`parse_generator` routes each key to the part that declares it. The parts are what the code sees:

* ``model``: the architecture and its training objective (what a checkpoint stores and rebuilds);
* ``train``: the optimisation loop (epochs, batch size, learning rate, budget, seed);
* ``sample``: how to sample from a trained model (a change re-runs sampling, never training).

Model code takes its model part and holds no defaults of its own. Each generator is declared once, as a
:class:`GeneratorPlugin` in its own module of :mod:`invdesign.generators`, which names its parts; :func:`registry`
finds them. Standard library only.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass, field, replace

from .spec import MAX_SAMPLES, ConfigError, Spec, setting

# ---------------------------------------------------------------------------------------------- train


@dataclass(frozen=True, kw_only=True)
class TrainSettings(Spec):
    epochs: int = setting(20, ge=1)
    batch_size: int = setting(128, ge=1, doc="graphs per batch (per process under DDP)")
    lr: float = setting(0.001, gt=0)
    weight_decay: float = setting(0.0, ge=0)
    patience: int | None = setting(None, ge=1, doc="stop after this many epochs without a better validation loss")
    max_minutes: float | None = setting(None, gt=0, doc="wall-clock training budget")
    seed: int = setting(0, doc="seeds the initial weights and the training batches")


@dataclass(frozen=True, kw_only=True)
class PredictorTrain(TrainSettings):
    epochs: int = setting(30, ge=1)


# ---------------------------------------------------------------------------------------------- model


@dataclass(frozen=True, kw_only=True)
class EncoderModel(Spec):
    hidden: int = setting(128, ge=8)
    layers: int = setting(3, ge=1)
    dropout: float = setting(0.0, ge=0, le=0.9)


@dataclass(frozen=True, kw_only=True)
class PredictorModel(EncoderModel):
    """Independent graph property predictor (never used for guidance)."""


@dataclass(frozen=True, kw_only=True)
class VAEModel(EncoderModel):
    latent_dim: int = setting(64, ge=2)
    beta: float = setting(0.01, ge=0, doc="KL weight (annealed over the first half of training)")
    property_weight: float = setting(1.0, ge=0)
    property_heads: int = setting(5, ge=1, doc="vae: ensemble of latent property heads (their spread guides search)")


@dataclass(frozen=True, kw_only=True)
class MolVAEModel(VAEModel):
    word_dropout: float = setting(0.1, ge=0, le=1, doc="molecules: decoder input dropout (forces use of the latent)")
    decoder_hidden: int | None = setting(None, ge=8, doc="molecules: GRU width (null = 2 x hidden)")


@dataclass(frozen=True, kw_only=True)
class CrystalVAEModel(VAEModel):
    coord_weight: float = setting(10.0, ge=0, doc="crystals: weight of the fractional-coordinate term in the "
                                                  "reconstruction loss and in the slot matching")


@dataclass(frozen=True, kw_only=True)
class MolDiffusionModel(Spec):
    hidden: int = setting(128, ge=8)
    layers: int = setting(3, ge=1)
    dropout: float = setting(0.0, ge=0, le=0.9)
    heads: int = setting(8, ge=1, doc="attention heads (must divide hidden)")
    edge_hidden: int = setting(32, ge=4, doc="bond feature width")
    global_hidden: int = setting(32, ge=4, doc="graph-level feature width")
    diffusion_steps: int = setting(500, ge=2, doc="noise levels T")
    condition_dropout: float = setting(0.1, ge=0, le=1, doc="share of training graphs without the property "
                                                            "condition (classifier-free guidance)")
    edge_loss_weight: float = setting(5.0, ge=0, doc="weight of the bond term in the loss")

    def check(self, where, source):
        if self.hidden % self.heads:
            raise ConfigError(f"{source}: {where}.heads = {self.heads} does not divide hidden = {self.hidden}; "
                              "pick heads that divide hidden (e.g. 4 or 8 for hidden 128)")


@dataclass(frozen=True, kw_only=True)
class CrystalDiffusionModel(Spec):
    hidden: int = setting(128, ge=8)
    layers: int = setting(3, ge=1)
    fourier_features: int = setting(8, ge=1, doc="Fourier frequencies of fractional-coordinate differences")
    diffusion_steps: int = setting(500, ge=2, doc="noise levels T of the lattice and type channels")
    sigma_min: float = setting(0.005, gt=0, doc="smallest width of the wrapped-normal coordinate noise "
                                                "(fractional units)")
    sigma_max: float = setting(0.5, gt=0, doc="largest width (0.5 is close to uniform on the torus)")
    condition_dropout: float = setting(0.1, ge=0, le=1)

    def check(self, where, source):
        if self.sigma_min >= self.sigma_max:
            raise ConfigError(f"{source}: {where}.sigma_min = {self.sigma_min} must be below sigma_max = "
                              f"{self.sigma_max}; lower sigma_min or raise sigma_max")


@dataclass(frozen=True, kw_only=True)
class MolEBMModel(Spec):
    hidden: int = setting(128, ge=8)
    layers: int = setting(3, ge=1)
    property_weight: float = setting(1.0, ge=0, doc="weight of the property head's loss")
    dequantization: float = setting(0.5, ge=0, doc="uniform noise added to one-hot graphs")
    energy_regularization: float = setting(1.0, ge=0, doc="weight of the squared-energy penalty")
    langevin_train_steps: int = setting(10, ge=1, doc="Langevin steps per training batch")
    langevin_step_size: float = setting(0.05, gt=0, doc="Langevin step (training and sampling)")
    langevin_noise: float = setting(0.005, ge=0, doc="Langevin noise (training and sampling)")


@dataclass(frozen=True, kw_only=True)
class CrystalEBMModel(MolEBMModel):
    fourier_features: int = setting(8, ge=1)
    coordinate_step_scale: float = setting(0.2, gt=0, doc="Langevin step on fractional coordinates relative to "
                                                          "the step on types and lattice")
    langevin_max_move: float = setting(0.1, gt=0, doc="largest change of any type/lattice input in one Langevin "
                                                      "step (clipped Langevin)")


# ---------------------------------------------------------------------------------------------- sample


@dataclass(frozen=True, kw_only=True)
class MolVAESample(Spec):
    decode_temperature: float = setting(0.0, ge=0, doc="0 = greedy SELFIES decoding")


@dataclass(frozen=True, kw_only=True)
class CrystalVAESample(Spec):
    """The crystal VAE decodes greedily; its search is configured under the campaign's ``search:``."""


@dataclass(frozen=True, kw_only=True)
class ConditionalSample(Spec):
    n_samples: int = setting(2000, ge=1, le=MAX_SAMPLES, doc="graphs sampled toward the target (the vae uses search:)")
    guidance_scale: float = setting(1.0, ge=0, doc="diffusion: classifier-free guidance weight w; ebm: weight of "
                                                   "the property energy")
    sample_seed: int = setting(0, doc="seeds the conditions drawn and the sampling noise")


@dataclass(frozen=True, kw_only=True)
class MolDiffusionSample(ConditionalSample):
    sample_steps: int = setting(100, ge=1, doc="denoising steps at sampling time (<= diffusion_steps, strided)")


@dataclass(frozen=True, kw_only=True)
class Compositions(Spec):
    __doc_line__ = ("crystal diffusion: structure prediction for given compositions (the model generates lattice "
                    "and coordinates, the types are given) instead of free sampling")
    formulas: list[str] = setting([], doc="reduced or full formulas, e.g. [Ir3Re, ReTc3]")
    from_feedback: bool = setting(False, doc="add every unverified binary of the elements that "
                                             "oracle.feedback_from's verdicts say raise the property")
    min_verdicts: int = setting(2, ge=1, doc="from_feedback: an element counts only when at least this many "
                                             "verdicts contain it")
    max_reduced_atoms: int = setting(8, ge=2, doc="from_feedback: largest a + b of the binaries A_a B_b")
    max_formulas: int = setting(500, ge=1, doc="from_feedback: the best-scored this many formulas")
    cells_per_formula: int = setting(2, ge=1, doc="cells of 1, 2, ... formula units (the smallest that fits "
                                                  "when a larger one does not)")

    def check(self, where, source):
        if not self.formulas and not self.from_feedback:
            raise ConfigError(f"{source}: {where} names no formula; list some under formulas: or set "
                              "from_feedback: true")


@dataclass(frozen=True, kw_only=True)
class CrystalDiffusionSample(ConditionalSample):
    sample_steps: int = setting(100, ge=1, doc="reverse-time steps at sampling time")
    composition_projection: float = setting(0.5, ge=0, le=1, doc="from this noise level (1 = pure noise) on, "
                                            "cells keep only their k most abundant elements (k within the data's "
                                            "range); 0 = off")
    compositions: Compositions | None = setting(None, doc=Compositions.__doc_line__)


@dataclass(frozen=True, kw_only=True)
class EBMSample(ConditionalSample):
    langevin_steps: int = setting(60, ge=1, doc="Langevin steps when sampling")
    property_tolerance: float = setting(0.5, gt=0, doc="property-energy width, in the property's unit")


# ---------------------------------------------------------------------------------------------- classical arms
# Proposal methods that need no training (``GeneratorPlugin.trained`` is False): their one part is ``sample``.


@dataclass(frozen=True, kw_only=True)
class SeededMoleculeArm(Spec):
    """The setting the molecule arms share: start from the confirmed hits of earlier campaigns."""

    seeds_from: list[str] = setting([], doc="graph_ga, edit_library: candidates_verified tables (Parquet/CSV) of "
                                            "earlier molecule campaigns; their confirmed molecules start the arm "
                                            "(the GA's first population, the library's first parents) before the "
                                            "random training molecules, and the molecules they checked by DFT are "
                                            "not proposed again")


@dataclass(frozen=True, kw_only=True)
class GraphGASample(SeededMoleculeArm):
    population: int = setting(200, ge=2, le=MAX_SAMPLES, doc="graph_ga: molecules kept each generation; the first "
                                                             "are the seeds (seeds_from), then random training "
                                                             "molecules")
    generations: int = setting(20, ge=1, doc="graph_ga: rounds of selection")
    offspring: int = setting(200, ge=1, le=MAX_SAMPLES, doc="graph_ga: children made each generation (crossover of "
                                                            "two tournament-picked parents)")
    mutation_rate: float = setting(0.5, ge=0, le=1, doc="graph_ga: chance that a child is also mutated")
    seed: int = setting(0, doc="seeds the random draws of the arm")


@dataclass(frozen=True, kw_only=True)
class EditLibrarySample(SeededMoleculeArm):
    parents: int = setting(2000, ge=1, le=MAX_SAMPLES, doc="edit_library: molecules edited: the seeds (seeds_from), "
                                                           "then random training molecules (all of them when there "
                                                           "are fewer)")
    edits_per_parent: int = setting(10, ge=1, doc="edit_library: random single graph edits tried on each parent "
                                                  "(a failed or repeated edit adds nothing)")
    seed: int = setting(0, doc="seeds the random draws of the arm")


@dataclass(frozen=True, kw_only=True)
class SubstitutionSample(Spec):
    n_substitutions: int = setting(3000, ge=1, le=MAX_SAMPLES, doc="substitution: random (binary cell, element "
                                                                   "pair) draws")
    elements: list[str] = setting([], pattern=r"^[A-Z][a-z]?$", doc="substitution: the elements put into the cells "
                                  "(empty: every element of the data set's cells)")
    seed: int = setting(0, doc="seeds the random draws of the arm")

    def check(self, where, source):
        if len(self.elements) == 1:
            raise ConfigError(f"{source}: {where}.elements names one element; a binary cell needs two: list at "
                              "least two or leave it empty")


# ---------------------------------------------------------------------------------------------- generators

#: the ``type`` of a generator mapping that names none
DEFAULT_TYPE = "vae"

#: the package whose every public module declares one generator (``GENERATOR = GeneratorPlugin(...)``)
PLUGIN_PACKAGE = "invdesign.generators"


def _load(ref: str):
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True, kw_only=True)
class GeneratorPlugin:
    """The declaration of one generator: its ``type`` (the value of ``generator.type``) in a ``domain``, its settings
    classes and its classes. It is the only place a generator is registered: the config's parsing and JSON
    schema, the checkpoint registry (:mod:`invdesign.models.registry`), :func:`invdesign.sampling.make_sampler`,
    the search step (:mod:`invdesign.pipeline.search`), the workflow's ``generator`` wildcard and jobs and the
    guide's table of generators follow from it.

    A trained generator (a model is fitted by the workflow's ``train_generator`` job) declares:

    * ``model``: the model settings (architecture and training objective; what a checkpoint stores);
    * ``sample``: how to sample a trained model (a change re-runs sampling, never training);
    * ``train``: the optimisation loop;
    * ``model_class``: ``"module:Class"`` of the ``nn.Module``, built as ``Class(meta, model_settings)``;
    * ``sampler_class``: ``"module:Class"`` of its sampler, built as ``Class(model, sample_settings, search=...,
      device=...)`` (:class:`invdesign.sampling.base.Sampler`);
    * ``uses_search``: the sampler reads the campaign's ``search:`` settings (a change there re-runs its sampling);
    * ``steered_by_predictor``: its proposals are optimised against the campaign's predictor, which is then no
      independent estimate for them (the DFT tier's choice uses calibrated xTB alone on their rows);
    * ``scores_ood``: its model gives every candidate of the campaign an out-of-distribution score (the filter step
      loads the first such model of the campaign: ``score_graphs``, ``energy_mean``, ``energy_std``).

    A classical arm (no model, no training: :attr:`trained` is False) declares neither ``model`` nor
    ``model_class`` and gives ``train=None``; its ``sampler_class`` is built as ``Class(sample_settings)`` and
    proposes from the campaign's data set, known table and independent predictor (:class:`invdesign.arms.base.Arm`).

    ``doc`` and ``steering``: what it is and how it reaches the target (one line each, for the schema and the
    guide's table). The classes are named, not imported: declaring, discovering and validating never import torch
    or a chemistry package.
    """

    domain: str
    type: str
    doc: str
    steering: str
    sample: type[Spec]
    sampler_class: str
    model: type[Spec] | None = None
    model_class: str | None = None
    train: type[Spec] | None = TrainSettings
    uses_search: bool = False
    #: its trained model scores every candidate of the campaign for being out of distribution (``ebm_energy``,
    #: ``ood_z``; the energy-based models)
    scores_ood: bool = False
    #: its proposals are optimised against the campaign's predictor (the graph GA's fitness): the predictor is their
    #: guide, so the oracle's choice of what to confirm does not use the predictor's value for its rows
    steered_by_predictor: bool = False
    #: the module that declared it (set by :func:`register`)
    origin: str = field(default="", compare=False)

    def __post_init__(self):
        if (self.model is None) != (self.model_class is None):
            raise TypeError(f"generator {self.type!r} of {self.domain!r}: declare both model and model_class (a "
                            "trained generator) or neither (a classical arm)")
        if self.model is None and (self.train is not None or self.uses_search):
            raise TypeError(f"generator {self.type!r} of {self.domain!r} has no model: give it train=None and no "
                            "uses_search (an arm has a sample part only)")

    @property
    def key(self) -> tuple[str, str]:
        return self.domain, self.type

    @property
    def trained(self) -> bool:
        """Whether the workflow trains a model for it (False: a classical arm, which proposes without one)."""
        return self.model_class is not None

    @property
    def parts(self) -> dict[str, type[Spec]]:
        """The settings classes by part name (an arm has its ``sample`` part only)."""
        return {name: cls for name, cls in (("model", self.model), ("train", self.train), ("sample", self.sample))
                if cls is not None}

    def load_model_class(self):
        """The ``nn.Module`` class (imports torch)."""
        if not self.trained:
            raise ValueError(f"the {self.domain} {self.type} generator is a classical arm: it has no model")
        return _load(self.model_class)

    def load_sampler_class(self):
        """The sampler class (a trained generator's imports torch), or the arm's class."""
        return _load(self.sampler_class)


_registry: dict[tuple[str, str], GeneratorPlugin] | None = None


def register(plugin: GeneratorPlugin, origin: str = "") -> GeneratorPlugin:
    """Add ``plugin`` to the registry (a (domain, type) declared twice is an error); returns it as registered."""
    plugins = registry()
    if plugin.key in plugins:
        raise ValueError(f"generator {plugin.type!r} of {plugin.domain!r} is declared twice: in "
                         f"{plugins[plugin.key].origin or '?'} and in {origin or '?'}")
    plugins[plugin.key] = plugin = replace(plugin, origin=origin) if origin else plugin
    return plugin


def _discover() -> dict[tuple[str, str], GeneratorPlugin]:
    global _registry
    _registry = {}
    package = importlib.import_module(PLUGIN_PACKAGE)
    for info in sorted(pkgutil.iter_modules(package.__path__, PLUGIN_PACKAGE + "."), key=lambda m: m.name):
        if info.name.rsplit(".", 1)[1].startswith("_"):
            continue
        plugin = getattr(importlib.import_module(info.name), "GENERATOR", None)
        if not isinstance(plugin, GeneratorPlugin):
            raise TypeError(f"{info.name} declares no GENERATOR = GeneratorPlugin(...); every public module of "
                            f"{PLUGIN_PACKAGE} is one generator")
        register(plugin, origin=info.name)
    return _registry


def registry() -> dict[tuple[str, str], GeneratorPlugin]:
    """Every declared generator by (domain, type), found by walking :data:`PLUGIN_PACKAGE` once."""
    return _registry if _registry is not None else _discover()


def generator_types(domain: str | None = None) -> list[str]:
    """The generator types of ``domain`` (of every domain when None), sorted."""
    return sorted({t for d, t in registry() if domain is None or d == domain})


def get_generator(domain: str, kind: str) -> GeneratorPlugin:
    """The declaration of the ``kind`` generator of ``domain``; ValueError names the known ones."""
    try:
        return registry()[(domain, kind)]
    except KeyError:
        raise ValueError(f"no generator {kind!r} for domain {domain!r}; {domain} has "
                         f"{generator_types(domain) or 'none'}") from None


def _names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


@dataclass(frozen=True)
class Generator:
    """One generator of a campaign: its type, domain and typed parts (a classical arm's ``model`` and ``train`` are
    None)."""

    domain: str
    type: str
    model: Spec | None
    train: TrainSettings | None
    sample: Spec

    @property
    def trained(self) -> bool:
        return self.model is not None

    def to_dict(self) -> dict:
        """The flat mapping a user writes (every key with its value)."""
        return {"type": self.type, **{k: v for part in (self.model, self.train, self.sample) if part is not None
                                      for k, v in part.to_dict().items()}}

    def training_params(self) -> dict:
        """What a training job depends on: a change re-runs training (and what follows)."""
        if not self.trained:
            raise ValueError(f"the {self.domain} {self.type} generator is a classical arm: it is never trained")
        return {"domain": self.domain, "type": self.type, "model": self.model.to_dict(),
                "train": self.train.to_dict()}


def parse_flat(data: dict, parts: dict[str, type], where: str, source: str, extra: tuple = ()) -> dict:
    """Route the keys of a flat mapping to the parts that declare them and parse each part. Keys in ``extra``
    (e.g. ``type``) are left out. The caller has checked that no key is unknown."""
    out = {}
    for name, cls in parts.items():
        mine = set(_names(cls))
        out[name] = cls.parse({k: v for k, v in data.items() if k in mine and k not in extra}, where, source)
    return out


def parse_generator(data, domain: str, where: str, source: str) -> Generator:
    """A generator mapping of a ``domain`` campaign (``type`` defaults to :data:`DEFAULT_TYPE`) as a
    :class:`Generator`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {where}: {data!r} is not of type 'object'; give a mapping such as "
                          "{type: vae, epochs: 20}")
    kind = data.get("type", DEFAULT_TYPE)
    plugins = registry()
    if (domain, kind) not in plugins:
        raise ConfigError(f"{source}: {where}.type = {kind!r} is not allowed; use one of {generator_types(domain)}")
    parts = plugins[(domain, kind)].parts
    allowed = {"type", *(n for cls in parts.values() for n in _names(cls))}
    unknown = sorted(set(data) - allowed)
    if unknown:
        key = unknown[0]
        owners = [f"{d} {t}" for (d, t), p in sorted(plugins.items(), key=lambda item: item[0][0] != domain)
                  if any(key in _names(c) for c in p.parts.values())]  # this domain's generators first
        what = (f"it is a setting of the {' / '.join(owners)} generator, not of the {domain} {kind} generator; "
                "remove it" if owners else f"allowed keys there: {', '.join(sorted(allowed))}")
        if owners:
            what += f"; allowed keys there: {', '.join(sorted(allowed))}"
        raise ConfigError(f"{source}: unknown key '{where}.{key}'; {what}")
    got = parse_flat(data, parts, where, source, extra=("type",))
    gen = Generator(domain, kind, got.get("model"), got.get("train"), got["sample"])
    steps_t = getattr(gen.model, "diffusion_steps", None)
    if domain == "molecules" and steps_t is not None and gen.sample.sample_steps > steps_t:
        raise ConfigError(f"{source}: {where}.sample_steps = {gen.sample.sample_steps} is more than "
                          f"diffusion_steps = {steps_t}; sampling cannot take more steps than the model has noise "
                          "levels: lower sample_steps")
    return gen


def generator_from_training_params(params: dict) -> Generator:
    """Rebuild a :class:`Generator` (with default sampling settings) from :meth:`Generator.training_params`."""
    plugin = get_generator(params["domain"], params["type"])
    return Generator(params["domain"], params["type"], plugin.model.parse(params["model"], "model"),
                     plugin.train.parse(params["train"], "train"), plugin.sample())


def model_settings(domain: str, kind: str, data: dict | None = None):
    """The model part of a ``domain`` ``kind`` generator from a mapping of its keys (defaults for the rest):
    how tests, bench and checkpoints build the models a campaign trains."""
    return get_generator(domain, kind).model.parse(data or {}, f"{domain} {kind} model")


def generator_schema(domain: str, kind: str) -> dict:
    """JSON Schema of the flat mapping of one generator type."""
    plugin = get_generator(domain, kind)
    props, required = {"type": {"const": kind, "description": plugin.doc}}, []
    for cls in plugin.parts.values():
        s = cls.json_schema()
        props.update(s["properties"])
        required += s.get("required", [])
    out = {"type": "object", "additionalProperties": False, "properties": props}
    if required:
        out["required"] = required
    return out


@dataclass(frozen=True)
class Predictor:
    model: PredictorModel
    train: PredictorTrain

    def to_dict(self) -> dict:
        return {**self.model.to_dict(), **self.train.to_dict()}

    def training_params(self) -> dict:
        return {"model": self.model.to_dict(), "train": self.train.to_dict()}


def parse_predictor(data, where: str, source: str) -> Predictor:
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {where}: {data!r} is not of type 'object'; give a mapping")
    allowed = set(_names(PredictorModel)) | set(_names(PredictorTrain))
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{source}: unknown key '{where}.{unknown[0]}'; allowed keys there: "
                          f"{', '.join(sorted(allowed))}")
    got = parse_flat(data, {"model": PredictorModel, "train": PredictorTrain}, where, source)
    return Predictor(got["model"], got["train"])


def predictor_schema() -> dict:
    props = {**PredictorModel.json_schema()["properties"], **PredictorTrain.json_schema()["properties"]}
    return {"type": "object", "additionalProperties": False, "default": {}, "properties": props}
