"""Load, validate and complete a campaign configuration.

The JSON schema (``workflow/schemas/config.schema.yaml``) is the single source of
truth for keys and defaults. Errors are turned into one line naming the key and
the fix, e.g. ``config: unknown key 'campaigns.qm9_gap.generator.epochz' ...``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from .errors import InvdesignError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"

SOURCES = {"molecules": ("qm9", "csv"), "crystals": ("mp_elasticity", "cif_folder")}
DEFAULT_PROPERTY = {"qm9": "gap_ev", "mp_elasticity": "bulk_modulus_gpa"}
BUILTIN_PROPERTIES = {
    "qm9": {"gap_ev": "eV", "homo_ev": "eV", "lumo_ev": "eV"},
    "mp_elasticity": {"bulk_modulus_gpa": "GPa", "shear_modulus_gpa": "GPa"},
}


def load_schema(path: str | Path | None = None) -> dict:
    with open(path or SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


def _key_path(parts) -> str:
    return ".".join(str(p) for p in parts) or "<top level>"


def _one_line(error, source: str) -> str:
    import jsonschema  # noqa: F401  (imported for its error types)

    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        keys = ", ".join(f"'{_key_path(list(error.absolute_path) + [k])}'" for k in extra)
        hint = f"allowed keys there: {', '.join(allowed)}" if allowed else "remove it"
        return f"{source}: unknown key {keys}; {hint}"
    if error.validator == "required":
        return f"{source}: {where}: {error.message}; add it (see config/config.yaml for an example)"
    if error.validator == "enum":
        return f"{source}: {where} = {error.instance!r} is not allowed; use one of {error.validator_value}"
    if error.validator == "pattern" and where.startswith("campaigns") and len(error.absolute_path) == 1:
        return f"{source}: campaign name {error.instance!r} may only use letters, digits, '_' and '-'"
    return f"{source}: {where}: {error.message}"


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        ref = schema["$ref"]
        node = root
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _fill_defaults(instance: Any, schema: dict, root: dict) -> None:
    schema = _resolve(schema, root)
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            _fill_defaults(item, schema["items"], root)
        return
    if not isinstance(instance, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        sub_r = _resolve(sub, root)
        if key not in instance and "default" in sub_r:
            instance[key] = copy.deepcopy(sub_r["default"])
        if key in instance:
            _fill_defaults(instance[key], sub_r, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in schema.get("properties", {}):
                _fill_defaults(value, extra, root)


def _coerce_strings(instance: Any, schema: dict, root: dict) -> Any:
    """Numbers, booleans and nulls that arrive as strings where the schema wants no string, parsed as YAML.

    Snakemake reads nested ``--config key={...}`` values with YAML's BaseLoader, so
    ``--config 'runtime={"gpus": 4}'`` gives the string "4"; this makes it the integer 4.
    """
    import yaml

    schema = _resolve(schema, root)
    types = schema.get("type")
    types = [types] if isinstance(types, str) else (types or [])
    if isinstance(instance, str) and types and "string" not in types:
        for parse in ((int, float) if {"integer", "number"} & set(types) else ()) + (yaml.safe_load,):
            try:
                parsed = parse(instance)
            except (ValueError, yaml.YAMLError):
                continue
            if not isinstance(parsed, (str, dict, list)):
                return parsed
        return instance
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        return [_coerce_strings(item, schema["items"], root) for item in instance]
    if isinstance(instance, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        for key, value in instance.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                instance[key] = _coerce_strings(value, sub, root)
    return instance


def validate_config(config: dict, source: str = "config", schema: dict | None = None) -> dict:
    """Return a validated copy of ``config`` with defaults filled in."""
    import jsonschema

    schema = schema or load_schema()
    cfg = _coerce_strings(copy.deepcopy(config or {}), schema, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        raise InvdesignError(_one_line(errors[0], source))
    for name, camp in cfg["campaigns"].items():
        if "generator" in camp and "generators" in camp:
            raise InvdesignError(f"{source}: campaigns.{name} has both generator: and generators:; keep one "
                                 "(generators: is a list for several generators)")
    _fill_defaults(cfg, schema, schema)
    for name, camp in cfg["campaigns"].items():
        _check_campaign(name, camp, source)
        _normalise_generators(name, camp, source)
        _check_feedback(name, camp, cfg.get("results", "results"), source)
    return cfg


def _check_feedback(name: str, camp: dict, results: str, source: str) -> None:
    """``oracle.feedback_from`` is for crystal campaigns and cannot feed a campaign its own verdicts;
    a generator's ``compositions:`` (structure prediction) is for crystal diffusion."""
    paths = camp.get("oracle", {}).get("feedback_from") or []
    where = f"{source}: campaigns.{name}.oracle.feedback_from"
    if paths and camp["domain"] != "crystals":
        raise InvdesignError(f"{where} ranks by CHGNet verdicts and works for crystal campaigns only; remove it")
    for gen in camp.get("generators", []):
        comp = gen.get("compositions")
        if comp is None:
            continue
        at = f"{source}: campaigns.{name} generator {gen['type']}: compositions"
        if camp["domain"] != "crystals" or gen["type"] != "diffusion":
            raise InvdesignError(f"{at} is structure prediction for crystal diffusion only; remove it or use "
                                 "a crystal campaign's diffusion generator")
        if comp.get("from_feedback") and not paths:
            raise InvdesignError(f"{at}.from_feedback needs oracle.feedback_from (earlier campaigns' "
                                 "candidates_verified tables); add it or list formulas instead")
        if not comp.get("formulas") and not comp.get("from_feedback"):
            raise InvdesignError(f"{at} names no formula; list some under formulas: or set from_feedback: true")
    own = Path(results.rstrip("/"), name).resolve()
    for p in paths:
        if Path(p).resolve().parent == own:
            raise InvdesignError(f"{where}: {p} is this campaign's own output, a cycle; point it at an earlier "
                                 "campaign's candidates_verified table (e.g. a copy of this one's from a previous run)")


def _check_campaign(name: str, camp: dict, source: str) -> None:
    where = f"{source}: campaigns.{name}"
    domain, ds = camp["domain"], camp["dataset"]
    if ds["source"] not in SOURCES[domain]:
        raise InvdesignError(f"{where}.dataset.source = {ds['source']!r} does not fit domain {domain!r}; "
                             f"use one of {list(SOURCES[domain])}")
    if ds["source"] in ("csv", "cif_folder") and "path" not in ds:
        raise InvdesignError(f"{where}.dataset.path is required for source {ds['source']!r}; point it at your file/folder")
    if ds["source"] == "cif_folder" and "table" not in ds:
        raise InvdesignError(f"{where}.dataset.table is required for source 'cif_folder': a CSV with an id column "
                             "(CIF file stem) and the property column")
    if ds["source"] in ("csv", "cif_folder") and "property_column" not in ds:
        raise InvdesignError(f"{where}.dataset.property_column is required for source {ds['source']!r}; "
                             "name the column holding the target property")
    ds.setdefault("property_column", DEFAULT_PROPERTY.get(ds["source"]))
    known = BUILTIN_PROPERTIES.get(ds["source"])
    if known is not None and ds["property_column"] not in known:
        raise InvdesignError(f"{where}.dataset.property_column = {ds['property_column']!r} is not provided by "
                             f"{ds['source']}; use one of {sorted(known)}")
    t = camp["target"]
    if not any(k in t for k in ("window", "min", "max")):
        raise InvdesignError(f"{where}.target needs a window: [low, high] or a threshold min: / max:")
    if "window" in t and ("min" in t or "max" in t):
        raise InvdesignError(f"{where}.target: give either window or min/max, not both")
    lo, hi = target_bounds(t)
    if lo >= hi:
        raise InvdesignError(f"{where}.target: lower bound {lo} must be below upper bound {hi}")
    if known is not None and "unit" in t and t["unit"] != known[ds["property_column"]]:
        raise InvdesignError(f"{where}.target.unit = {t['unit']!r} but {ds['property_column']} is in "
                             f"{known[ds['property_column']]}; convert the target or fix the unit")


def _normalise_generators(name: str, camp: dict, source: str) -> None:
    """Campaigns always end up with ``generators``: a list with one entry per generator type."""
    single = camp.pop("generator", None)
    gens = camp.get("generators") or [single]
    types = [g["type"] for g in gens]
    dup = sorted({t for t in types if types.count(t) > 1})
    if dup:
        raise InvdesignError(f"{source}: campaigns.{name}.generators lists type {dup[0]!r} twice; "
                             "give each generator type once")
    camp["generators"] = gens


def generator_config(camp: dict, kind: str) -> dict:
    for g in camp["generators"]:
        if g["type"] == kind:
            return g
    raise KeyError(f"campaign has no {kind!r} generator")


def target_bounds(target: dict) -> tuple[float, float]:
    """(low, high) of the accepted property range; open ends are +-inf."""
    if "window" in target:
        lo, hi = target["window"]
        return float(lo), float(hi)
    return float(target.get("min", float("-inf"))), float(target.get("max", float("inf")))


def load_config(path: str | Path) -> dict:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InvdesignError(f"config file {path} not found; pass an existing file with --configfile") from None
    except yaml.YAMLError as exc:
        raise InvdesignError(f"{path}: not valid YAML ({str(exc).splitlines()[0]}); fix the syntax") from None
    return validate_config(raw, source=str(path))
