"""A generator is registered once, by its declaration in invdesign/generators/: the config, the schema, the
checkpoint registry, the sampler, the workflow's wildcard and the table in docs/guide.md all follow from it."""

import re
import subprocess
import sys
from dataclasses import dataclass, replace

import jsonschema
import pytest
import yaml

import invdesign.config.generators as plugins
from invdesign.config import config_schema, validate_config
from invdesign.config.generators import TrainSettings, parse_generator
from invdesign.generators import markdown_table
from invdesign.config.spec import ConfigError, Spec, setting
from invdesign.errors import InvdesignError


# ------------------------------------------------------------------------------------- a toy generator, declared here
@dataclass(frozen=True, kw_only=True)
class ToyModelSettings(Spec):
    width: int = setting(4, ge=1, doc="toy: model width")


@dataclass(frozen=True, kw_only=True)
class ToySample(Spec):
    n_toys: int = setting(3, ge=1, doc="toy: samples drawn")


class ToyModel:
    def __init__(self, meta, settings):
        self.meta, self.settings = dict(meta), settings


class ToySampler:
    def __init__(self, model, sample_settings, *, search=None, device=None):
        self.model, self.settings, self.search, self.device = model, sample_settings, search, device

    def sample(self, request):
        raise NotImplementedError


TOY = plugins.GeneratorPlugin(domain="molecules", type="toy", doc="a toy generator", steering="it does not",
                              model=ToyModelSettings, sample=ToySample, model_class=f"{__name__}:ToyModel",
                              sampler_class=f"{__name__}:ToySampler", uses_search=True)


@pytest.fixture()
def toy(monkeypatch):
    """TOY registered through the public function, in a copy of the registry that the test's end restores."""
    monkeypatch.setattr(plugins, "_registry", dict(plugins.registry()))
    return plugins.register(TOY, origin=__name__)


@pytest.fixture()
def base(repo):
    return yaml.safe_load((repo / "config" / "config.yaml").read_text())


def test_a_declared_generator_needs_no_other_edit(toy, base, repo):
    """The toy generator, declared in this module and nowhere else, is an allowed type with its keys in the schema,
    parses from a config mapping, builds its model and gets its sampler (with the campaign's search settings)."""
    from invdesign.config.search import LatentSearch
    from invdesign.models.registry import build_generator
    from invdesign.sampling import make_sampler

    assert "toy" in plugins.generator_types("molecules") and "toy" not in plugins.generator_types("crystals")
    schema = config_schema()
    assert set(schema["$defs"]["molecules_toy_generator"]["properties"]) >= {"type", "width", "n_toys", "epochs"}
    base["campaigns"]["qm9_gap"]["generators"] = [{"type": "vae"}, {"type": "toy", "width": 7, "n_toys": 2}]
    jsonschema.Draft202012Validator(schema).validate(base)
    bad = {**base, "campaigns": {"qm9_gap": {**base["campaigns"]["qm9_gap"], "generators": [{"type": "toy",
                                                                                              "width": 0}]}}}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(bad))
    with pytest.raises(InvdesignError, match="width"):
        validate_config(bad)

    filled = validate_config(base)["campaigns"]["qm9_gap"]["generators"][1]
    assert (filled["type"], filled["width"], filled["n_toys"]) == ("toy", 7, 2)
    assert filled["epochs"] == TrainSettings().epochs
    gen = parse_generator({"type": "toy", "width": 7, "n_toys": 2, "epochs": 3}, "molecules", "g", "test")
    assert (gen.model, gen.sample, gen.train.epochs) == (ToyModelSettings(width=7), ToySample(n_toys=2), 3)
    assert gen.training_params()["model"] == {"width": 7}
    with pytest.raises(ConfigError, match="'toy' is not allowed"):
        parse_generator({"type": "toy"}, "crystals", "g", "test")

    model = build_generator({"domain": "molecules"}, "toy", gen.model)
    assert isinstance(model, ToyModel) and model.settings == gen.model
    search = LatentSearch()
    sampler = make_sampler("toy", model, gen.sample, search=search, device="cpu")
    assert isinstance(sampler, ToySampler) and (sampler.settings, sampler.search, sampler.device) == (
        gen.sample, search, "cpu")


def test_every_module_of_the_package_declares_one_generator(repo):
    from invdesign.config.data import SOURCES

    names = sorted(p.stem for p in (repo / "invdesign" / "generators").glob("*.py") if not p.stem.startswith("_"))
    declared = plugins.registry()
    assert sorted(p.origin.rsplit(".", 1)[1] for p in declared.values()) == names
    trained = {k for k, p in declared.items() if p.trained}
    assert trained == {(d, t) for d in SOURCES for t in ("vae", "diffusion", "ebm")}
    for (domain, kind), plugin in declared.items():
        if plugin.trained:
            assert plugin.load_model_class().__name__ == plugin.model_class.rsplit(":", 1)[1]
            assert hasattr(plugin.load_sampler_class(), "sample"), (domain, kind)
        else:  # a classical arm (tests/test_arms.py): no model, proposes from the data
            assert plugin.model is None and plugin.train is None and list(plugin.parts) == ["sample"]
            assert hasattr(plugin.load_sampler_class(), "propose"), (domain, kind)
            with pytest.raises(ValueError, match="classical arm"):
                plugin.load_model_class()


def test_a_declaration_is_trained_or_an_arm_not_half_of_each():
    with pytest.raises(TypeError, match="both model and model_class"):
        replace(TOY, model_class=None)
    with pytest.raises(TypeError, match="an arm has a sample part only"):
        replace(TOY, model=None, model_class=None)


def test_a_generator_declared_twice_is_refused(toy):
    with pytest.raises(ValueError, match=f"declared twice: in {re.escape(__name__)} and in elsewhere"):
        plugins.register(replace(TOY, doc="another toy"), origin="elsewhere")


def test_the_guides_table_of_generators_is_generated_from_the_declarations(repo):
    """Regenerate with python -m invdesign.generators."""
    assert markdown_table() in (repo / "docs" / "guide.md").read_text()


def test_validating_a_config_imports_no_model_or_sampler_code(repo):
    """The declarations name the torch classes by reference: checking a config never imports torch."""
    code = ("import sys; from invdesign.config import load_config, config_schema; load_config(sys.argv[1]); "
            "config_schema(); bad = [m for m in sys.modules if m.split('.')[0] == 'torch' or "
            "m.startswith(('invdesign.models', 'invdesign.sampling'))]; assert not bad, bad")
    res = subprocess.run([sys.executable, "-c", code, str(repo / "config" / "config.yaml")], capture_output=True,
                         text=True, timeout=120, cwd=repo)
    assert res.returncode == 0, res.stderr[-2000:]
