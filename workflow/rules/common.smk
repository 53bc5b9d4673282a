# Config loading and validation, shared names and the functions the rules use. Runs before any rule is planned.
import copy
import os
import re
import sys
from pathlib import Path

from snakemake.utils import update_config

from invdesign.config import parse_settings
from invdesign.config.files import read_config_file
from invdesign.device import device_setting
from invdesign.domains import EXPORT_SUFFIX, RELAXED_EXPORTS
from invdesign.artifacts import batch_ids, check_intact, clock_skew
from invdesign.errors import InvdesignError
from invdesign.config import generators as generator_registry
from invdesign.pipeline.launch import train_resources
from invdesign.pipeline.report import report_requested, require_finished
from invdesign.pipeline.verify import make_oracle


def one_line(call, *args):
    """``call(*args)``, with an InvdesignError printed as the project's one line and exit status 1."""
    try:
        return call(*args)
    except InvdesignError as exc:
        sys.stderr.write(f"invdesign error: {exc}\n")
        raise SystemExit(1)


_cli_configfiles = [str(p) for p in (getattr(workflow, "overwrite_configfiles", None) or [])]
# Snakemake's own reader keeps the last of a key given twice and runs YTE code: each file is read again here
# (`python -m invdesign run CONFIG` does it before Snakemake reads anything)
_from_files = {}
for _path in _cli_configfiles or [Path(workflow.basedir, "config", "config.yaml")]:
    update_config(_from_files, one_line(read_config_file, _path))
if not _cli_configfiles:
    # no --configfile given: the default campaign (done here, not with `configfile:`, so that a
    # --configfile replaces the default campaigns instead of being
    # merged into them); values given with --config still win
    _default = copy.deepcopy(_from_files)
    update_config(_default, dict(config))
    config.clear()
    config.update(_default)
_config_source = ", ".join(_cli_configfiles) or "config/config.yaml"
SETTINGS = one_line(parse_settings, dict(config), _from_files, _config_source)  # typed settings of every campaign
config.clear()
config.update(SETTINGS.to_dict())  # every default filled in: what the scripts see as snakemake.config

_device = one_line(device_setting, SETTINGS.runtime.device)
if _device.startswith("cuda") and workflow.local_exec and not workflow.dryrun:
    # the jobs run on this machine: a GPU asked for and absent stops the run now, not after hours of data preparation
    from invdesign.device import resolve_device

    one_line(resolve_device, _device)

CAMPAIGNS = sorted(SETTINGS.campaigns)
RESULTS = SETTINGS.results.rstrip("/")
_skew = clock_skew([RESULTS, *_cli_configfiles, *(p for c in SETTINGS.campaigns.values() for p in (
    getattr(c.dataset, "path", None), getattr(c.dataset, "table", None), *c.filters.known_library) if p)])
if _skew and workflow.is_main_process:  # once, not again in each job's own process
    sys.stderr.write(f"invdesign warning: {_skew}\n")
for _camp in SETTINGS.campaigns.values():  # a target no oracle measures is said before any job, not after them
    if _camp.unmeasured_note and workflow.is_main_process:
        sys.stderr.write(f"invdesign warning: {_camp.unmeasured_note}\n")
THREADS = SETTINGS.runtime.threads
# GPUs a training job asks the executor for (SLURM --gpus, Kubernetes nvidia.com/gpu); 0 on CPU-only runs
GPUS = 0 if SETTINGS.runtime.device == "cpu" else SETTINGS.runtime.gpus
# what a training job asks for: GPUs on one node, or nodes x GPUs for multi-node DDP (SLURM)
TRAIN_RESOURCES = train_resources(GPUS, SETTINGS.runtime.nodes)
# sampling and latent search run on one GPU when there is one: on a CPU node the full-size crystal diffusion
# model's 10,000 samples take 10 h or more on two cores (docs/benchmarks.md)
SEARCH_GPUS = 0 if SETTINGS.runtime.device == "cpu" else 1
# Paths of the intermediates that later rules read, as plain patterns: ancient() marks the very object it is given
# (so every rule naming a rule's output object would see it as ancient), and a storage provider (Kubernetes profile)
# maps plain patterns, not the already-mapped output objects that intact() would have to expand.
DATASET = f"{RESULTS}/{{campaign}}/data/dataset.parquet"
TARGET_CHECK = f"{RESULTS}/{{campaign}}/data/target.json"
KNOWN = f"{RESULTS}/{{campaign}}/data/known.parquet"
GRAPHS = f"{RESULTS}/{{campaign}}/data/graphs.pt"
GENERATOR = f"{RESULTS}/{{campaign}}/models/generator_{{generator}}.pt"
PREDICTOR = f"{RESULTS}/{{campaign}}/models/predictor.pt"
CANDIDATES = f"{RESULTS}/{{campaign}}/candidates.parquet"
FUNNEL = f"{RESULTS}/{{campaign}}/metrics.json"
PREPARED = f"{RESULTS}/{{campaign}}/oracle/prepared.json"
BATCH = f"{RESULTS}/{{campaign}}/oracle/batches/batch_{{batch}}.parquet"
VERIFIED = f"{RESULTS}/{{campaign}}/candidates_verified.parquet"
CHECKED = f"{RESULTS}/{{campaign}}/oracle/checked.parquet"
CONFIRM_BATCH = f"{RESULTS}/{{campaign}}/oracle/confirm/batches/batch_{{batch}}.parquet"
ORACLE_METRICS = f"{RESULTS}/{{campaign}}/oracle/metrics.json"
PROVENANCE = f"{RESULTS}/{{campaign}}/provenance.json"


wildcard_constraints:
    campaign="|".join(CAMPAIGNS),
    generator="|".join(generator_registry.generator_types()),

# the generator types the workflow trains (rule train_generator); the others are classical arms, with no model
TRAINED_TYPES = sorted({p.type for p in generator_registry.registry().values() if p.trained})


def camp(wc):
    return SETTINGS.campaigns[wc.campaign]


def chain_priority(wc):
    """Crystal campaigns' jobs go first: their oracle batches are the longest single-threaded jobs and sit at the
    end of the chain, so starting that chain early lets them run beside the molecule training instead of after it
    (Snakemake picks higher priorities first)."""
    return 1 if camp(wc).domain == "crystals" else 0


def generator_types(name):
    return [g.type for g in SETTINGS.campaigns[name].generators]


def trained_types(name):
    """The campaign's generators that the workflow trains (not its classical arms)."""
    return [g.type for g in SETTINGS.campaigns[name].generators if g.trained]


# --- params: each rule depends on exactly the settings it uses (a change re-runs that rule and what follows)
def training_params(wc):
    """The model and train parts of the job's generator: sampling settings never re-run training."""
    return camp(wc).generator(wc.generator).training_params()


def sampling_params(wc):
    """The sample part of the job's generator: a change re-runs sampling and what follows, never training. An empty
    seeds_from is left out, so the arms' searches of campaigns run before that setting existed are not re-run."""
    params = camp(wc).generator(wc.generator).sample.to_dict()
    if params.get("seeds_from") == []:
        del params["seeds_from"]
    return params


def latent_search_params(wc):
    """The campaign's search: settings, which drive the samplers that declare uses_search (the vae's latent search;
    None for the other generators)."""
    c = camp(wc)
    return c.search.to_dict() if generator_registry.get_generator(c.domain, wc.generator).uses_search else None


def search_inputs(wc):
    """What a search job reads: a trained generator its checkpoint and the graphs; a classical arm (a generator the
    workflow does not train) the data set, the known table and the independent predictor."""
    c = camp(wc)
    if generator_registry.get_generator(c.domain, wc.generator).trained:
        paths = {"generator": GENERATOR, "graphs": GRAPHS}
    else:
        paths = {"dataset": DATASET, "known": KNOWN, "predictor": PREDICTOR}
    return {name: intact(path)(wc) for name, path in paths.items()}


def search_gpus(wc):
    """GPUs a search job asks for: none for a classical arm (its only model is the small predictor)."""
    c = camp(wc)
    return SEARCH_GPUS if generator_registry.get_generator(c.domain, wc.generator).trained else 0


def property_kind(wc):
    return getattr(camp(wc).dataset, "property_kind", None)


def composition_feedback(wc):
    """The verdict tables a generator's structure prediction chooses its formulas from (none otherwise)."""
    c = camp(wc)
    comp = getattr(c.generator(wc.generator).sample, "compositions", None)
    return list(c.oracle.feedback_from) if comp is not None and comp.from_feedback else []


def arm_seeds(wc):
    """The verified tables of earlier campaigns whose confirmed molecules seed a molecule arm (its seeds_from); one
    produced by this workflow (results/<other campaign>/candidates_verified.parquet) is built first."""
    return list(getattr(camp(wc).generator(wc.generator).sample, "seeds_from", []))


def oracle_feedback(wc):
    """Earlier campaigns' verdicts that rank the candidates (oracle.feedback_from); one produced by this workflow
    (results/<other campaign>/candidates_verified.parquet) is built first."""
    return list(getattr(camp(wc).oracle, "feedback_from", []))


def campaign_samples(wc):
    return [f"{RESULTS}/{wc.campaign}/samples/samples_{g}.parquet" for g in generator_types(wc.campaign)]


def ood_model(wc):
    """The campaign's graph EBM (its energy scores every candidate for being out of distribution)."""
    c = camp(wc)
    return [f"{RESULTS}/{wc.campaign}/models/generator_{g}.pt" for g in generator_types(wc.campaign)
            if generator_registry.get_generator(c.domain, g).scores_ood][:1]


def checked_batches(wc):
    """The checked files of every batch the oracle_batches checkpoint wrote (known once it has run)."""
    folder = checkpoints.oracle_batches.get(campaign=wc.campaign).output.batches
    ids = one_line(batch_ids, folder)
    return expand(f"{RESULTS}/{wc.campaign}/oracle/checked/batch_{{batch}}.parquet", batch=sorted(ids))


def confirm_rounds(wc):
    """Rounds of the campaign's confirming tier (oracle.dft.rounds where DFT runs; 1 otherwise)."""
    c = camp(wc)
    return make_oracle(c.domain, c.oracle.to_dict(), c.target.to_dict(), c.dataset.property_column,
                       getattr(c.dataset, "property_kind", None)).confirm_rounds


def round_batches(wc, r):
    """The files of every batch round ``r`` of the confirming tier wrote (known once its checkpoint has run)."""
    if r == 1:
        folder, sub = checkpoints.confirm_batches.get(campaign=wc.campaign).output.batches, "confirm"
    else:
        folder = checkpoints.confirm_batches_round.get(campaign=wc.campaign, round=str(r)).output.batches
        sub = f"confirm/round_{r}"
    ids = one_line(batch_ids, folder)
    return expand(f"{RESULTS}/{wc.campaign}/oracle/{sub}/checked/batch_{{batch}}.parquet", batch=sorted(ids))


def confirmed_batches(wc):
    """The files of every batch of every round of the confirming tier (none when the oracle has no such tier)."""
    return [p for r in range(1, confirm_rounds(wc) + 1) for p in round_batches(wc, r)]


def earlier_confirmed(wc):
    """The confirmed batches of the rounds before round ``wc.round``."""
    return [p for r in range(1, int(wc.round)) for p in round_batches(wc, r)]


def intact(source):
    """An input function: the paths of ``source`` (a plain path pattern or an input function), each checked to be a whole
    file when it exists (invdesign.artifacts.check_intact). A truncated intermediate then stops the run with one
    line while planning, before Snakemake removes the good outputs made from it."""

    def checked(wc):
        paths = source(wc) if callable(source) else expand(source, **dict(wc.items()))
        for p in paths:
            one_line(check_intact, p)
        return paths if callable(source) else paths[0]

    return checked


def log_path(rule_name):
    return f"{RESULTS}/logs/{{campaign}}/{rule_name}.log"


def bench_path(rule_name):
    return f"{RESULTS}/benchmarks/{{campaign}}/{rule_name}.tsv"


def export_path(name):
    """The file chemists get beside the tables: candidates.sdf (molecules), candidates_cifs.zip (crystals)."""
    return f"{RESULTS}/{name}/candidates{EXPORT_SUFFIX[SETTINGS.campaigns[name].domain]}"


def final_outputs():
    """What `snakemake` builds: the tables, exports and report pages, and the trained models (so that a model deleted
    after its candidates were made is trained again, not silently missing; a classical arm has none)."""
    return ([f"{RESULTS}/{c}/candidates_verified.csv" for c in CAMPAIGNS] + [export_path(c) for c in CAMPAIGNS]
            + [f"{RESULTS}/{c}/{f}" for c in CAMPAIGNS
               for f in RELAXED_EXPORTS[SETTINGS.campaigns[c].domain].values()]
            + [f"{RESULTS}/{c}/report/top_candidates.html" for c in CAMPAIGNS]
            + [f"{RESULTS}/{c}/report/index.html" for c in CAMPAIGNS]
            + [f"{RESULTS}/{c}/models/generator_{g}.pt" for c in CAMPAIGNS for g in trained_types(c)]
            + [f"{RESULTS}/{c}/models/predictor.pt" for c in CAMPAIGNS])
