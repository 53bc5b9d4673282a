"""Typed settings: dataclasses that validate a YAML mapping, fill their defaults and describe themselves as
JSON Schema.

Every settings class of the project (runtime, dataset, each generator's model / train / sample parts, the
predictor, each oracle) is a frozen dataclass deriving from :class:`Spec`, its fields declared with
:func:`setting`. The class is the one place that holds a key, its type, its bounds, its default and its
description: :meth:`Spec.parse` turns a mapping into an instance (one-line errors naming the key and the fix),
:meth:`Spec.to_dict` turns it back, and :meth:`Spec.json_schema` writes the schema that
``workflow/schemas/config.schema.yaml`` is generated from. Standard library only, so model code on GPU nodes
imports these classes with nothing but torch beside them.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any, ClassVar, Literal, get_args, get_origin

from ..errors import InvdesignError

MISSING = dataclasses.MISSING

#: the largest integer a setting takes unless its own bound is lower (10**30 samples passed validation and died in
#: sampling with an OverflowError; torch and numpy index with 64-bit integers at most, some with 32)
MAX_INT = 2**31 - 1
#: the most graphs a sampler is asked for (generator n_samples, search.n_starts)
MAX_SAMPLES = 10_000_000


def setting(default: Any = MISSING, *, doc: str = "", ge: float | None = None, gt: float | None = None,
            le: float | None = None, lt: float | None = None, pattern: str | None = None,
            min_items: int | None = None, max_items: int | None = None, required_hint: str = ""):
    """A settings field: its default (a list or dict default is copied per instance), bounds and description.

    ``required_hint`` is the fix printed when a required key (no default) is missing."""
    meta = {"doc": doc, "ge": ge, "gt": gt, "le": le, "lt": lt, "pattern": pattern, "min_items": min_items,
            "max_items": max_items, "required_hint": required_hint}
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


class ConfigError(InvdesignError):
    """A config value that breaks its settings class; the message names the key."""


def _yaml_scalar(text: str):
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if not isinstance(value, (dict, list)) else text


def _number_or_bool(text: str):
    for parse in (int, float, _yaml_scalar):
        try:
            value = parse(text)
        except ValueError:
            continue
        if isinstance(value, (bool, int, float)):
            return value
    return text


_TYPE_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string"}


class Spec:
    """Base of the settings dataclasses (subclasses are ``@dataclasses.dataclass(frozen=True)``)."""

    #: one line on what the block is for (JSON Schema ``description``)
    __doc_line__: ClassVar[str] = ""

    # ------------------------------------------------------------------ parsing
    @classmethod
    def parse(cls, data: Any, where: str = "", source: str = "config"):
        """Validate ``data`` (a mapping; None = empty) against this class and return an instance with defaults
        filled in. Raises :class:`ConfigError` with one line ``"<source>: <key>: <what>; <fix>"``."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: {where or '<top level>'}: {data!r} is not of type 'object'; give a "
                              "mapping of keys to values")
        hints = typing.get_type_hints(cls)
        known = {f.name: f for f in dataclasses.fields(cls) if f.init}
        extra = sorted(set(data) - set(known))
        if extra:
            keys = ", ".join(f"'{_join(where, k)}'" for k in extra)
            raise ConfigError(f"{source}: unknown key {keys}; {cls.unknown_key_hint(extra[0], sorted(known))}")
        values = {}
        for name, f in known.items():
            key = _join(where, name)
            if name not in data:
                if f.default is MISSING and f.default_factory is MISSING:
                    hint = f.metadata.get("required_hint") or "add it (see config/config.yaml for an example)"
                    raise ConfigError(f"{source}: {key} is required; {hint}")
                continue
            values[name] = _convert(data[name], hints[name], _capped(f.metadata, hints[name]), key, source)
        try:
            obj = cls(**values)
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: {where or '<top level>'}: {exc}") from None
        obj.check(where, source)
        return obj

    @classmethod
    def unknown_key_hint(cls, key: str, allowed: list[str]) -> str:
        return f"allowed keys there: {', '.join(allowed)}" if allowed else "remove it"

    def check(self, where: str, source: str) -> None:
        """Cross-field checks of a subclass (raise :class:`ConfigError`); fields are already valid."""

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict:
        """Plain mapping of every field (nested settings as mappings): what a rule's params and a checkpoint
        hold, and what :meth:`parse` reads back."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self, **changes):
        """A copy with ``changes``, validated as :meth:`parse` validates a mapping."""
        data = {**self.to_dict(), **{k: _plain(v) for k, v in changes.items()}}
        return type(self).parse(data, type(self).__name__, "replace")

    # ------------------------------------------------------------------ schema
    @classmethod
    def json_schema(cls) -> dict:
        """JSON Schema (draft 2020-12) of this class: properties with types, bounds, defaults, descriptions."""
        hints = typing.get_type_hints(cls)
        props, required = {}, []
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            prop = _type_schema(hints[f.name])
            meta = _capped(f.metadata, hints[f.name])
            for key, word in (("ge", "minimum"), ("gt", "exclusiveMinimum"), ("le", "maximum"),
                              ("lt", "exclusiveMaximum"), ("pattern", "pattern"), ("min_items", "minItems"),
                              ("max_items", "maxItems")):
                if meta.get(key) is not None:
                    _constrain(prop, word, meta[key])
            if f.default is not MISSING:
                prop["default"] = _plain(f.default)
            elif f.default_factory is not MISSING:
                prop["default"] = _plain(f.default_factory())
            else:
                required.append(f.name)
            if f.metadata.get("doc"):
                prop["description"] = f.metadata["doc"]
            props[f.name] = prop
        out = {"type": "object", "additionalProperties": False, "properties": props}
        if required:
            out["required"] = required
        if cls.__doc_line__:
            out["description"] = cls.__doc_line__
        return out


def _capped(meta, tp) -> dict:
    """The bounds of a field, with MAX_INT as the maximum of an integer that has none of its own."""
    if _optional(tp)[0] is int and meta.get("le") is None and meta.get("lt") is None:
        return {**meta, "le": MAX_INT}
    return dict(meta)


def _join(where: str, key) -> str:
    return f"{where}.{key}" if where else str(key)


def _plain(value):
    if isinstance(value, Spec):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _optional(tp) -> tuple[Any, bool]:
    """(inner type, whether None is allowed) of ``X | None``."""
    args = get_args(tp)
    if get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True
    return tp, False


def _type_word(tp) -> str:
    inner, _ = _optional(tp)
    if get_origin(inner) is list:
        return "array"
    if isinstance(inner, type) and issubclass(inner, Spec) or get_origin(inner) is dict:
        return "object"
    return _TYPE_NAMES.get(inner, "string")


def _convert(value, tp, meta, key: str, source: str):
    inner, nullable = _optional(tp)
    if value is None:
        if nullable:
            return None
        raise ConfigError(f"{source}: {key}: None is not of type '{_type_word(inner)}'; give a value or leave "
                          "the key out for its default")
    origin = get_origin(inner)
    if origin is Literal:
        allowed = list(get_args(inner))
        if isinstance(value, str) and value not in allowed and _yaml_scalar(value) in allowed:
            value = _yaml_scalar(value)  # --config strings: "true" for a boolean choice
        if not any(value == a and type(value) is type(a) for a in allowed):
            raise ConfigError(f"{source}: {key} = {value!r} is not allowed; use one of {allowed}")
        return value
    if origin is list:
        (item_tp,) = get_args(inner)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key}: {value!r} is not of type 'array'; give a list, e.g. [a, b]")
        n = len(value)
        if meta.get("min_items") is not None and n < meta["min_items"]:
            raise ConfigError(f"{source}: {key}: {value!r} has {n} items, fewer than {meta['min_items']}")
        if meta.get("max_items") is not None and n > meta["max_items"]:
            raise ConfigError(f"{source}: {key}: {value!r} has {n} items, more than {meta['max_items']}")
        return [_convert(v, item_tp, {k: meta.get(k) for k in ("ge", "gt", "le", "lt", "pattern")},
                         f"{key}.{i}", source) for i, v in enumerate(value)]
    if origin is dict:
        _, val_tp = get_args(inner)
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key}: {value!r} is not of type 'object'; give a mapping")
        return {k: _convert(v, val_tp, {}, f"{key}.{k}", source) for k, v in value.items()}
    if isinstance(inner, type) and issubclass(inner, Spec):
        return inner.parse(value, key, source)
    if isinstance(value, str) and inner in (bool, int, float):
        # Snakemake reads nested --config values as strings ('runtime={"gpus": 4}' gives "4")
        value = _number_or_bool(value)
    if inner is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    expected = inner if isinstance(inner, type) else str
    if not isinstance(value, expected) or (expected in (int, float) and isinstance(value, bool)):
        raise ConfigError(f"{source}: {key}: {value!r} is not of type '{_TYPE_NAMES.get(expected, 'string')}'")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{source}: {key}: {value!r} is not a finite number; give a real number")
    _bounds(value, meta, key, source)
    return value


def _bounds(value, meta, key, source) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for name, test, word in (("ge", lambda v, b: v >= b, "less than the minimum of"),
                                 ("gt", lambda v, b: v > b, "less than or equal to the minimum of"),
                                 ("le", lambda v, b: v <= b, "greater than the maximum of"),
                                 ("lt", lambda v, b: v < b, "greater than or equal to the maximum of")):
            bound = meta.get(name)
            if bound is not None and not test(value, bound):
                raise ConfigError(f"{source}: {key}: {value!r} is {word} {bound}")
    pattern = meta.get("pattern")
    if pattern and isinstance(value, str) and not re.search(pattern, value):
        raise ConfigError(f"{source}: {key}: {value!r} does not match '{pattern}'")


def _constrain(prop: dict, word: str, bound) -> None:
    """Put a bound on the schema of a field (on its items for a list, on the non-null branch when nullable)."""
    target = prop
    if "items" in prop and word not in ("minItems", "maxItems"):
        target = prop["items"]
    target[word] = bound


def _type_schema(tp) -> dict:
    inner, nullable = _optional(tp)
    origin = get_origin(inner)
    if origin is Literal:
        allowed = list(get_args(inner))
        return {"enum": allowed + ([None] if nullable else [])}
    if origin is list:
        out = {"type": "array", "items": _type_schema(get_args(inner)[0])}
    elif origin is dict:
        out = {"type": "object", "additionalProperties": _type_schema(get_args(inner)[1])}
    elif isinstance(inner, type) and issubclass(inner, Spec):
        out = inner.json_schema()
    else:
        out = {"type": _TYPE_NAMES.get(inner, "string")}
    if nullable:
        out["type"] = [out["type"], "null"] if isinstance(out.get("type"), str) else out.get("type")
    return out


def variant(data: Any, variants: dict[str, type], key: str, default: str | None, where: str, source: str,
            what: str, siblings: dict[str, type] | None = None):
    """Parse a mapping whose ``key`` (e.g. ``type``) picks its settings class out of ``variants``.

    A key that the chosen class lacks but another class of ``siblings`` has is reported as belonging to that
    other class (e.g. an xTB setting given to a crystal campaign's CHGNet oracle)."""
    data = dict(data or {})
    name = data.get(key, default)
    if name not in variants:
        allowed = sorted(variants)
        raise ConfigError(f"{source}: {_join(where, key)} = {name!r} is not allowed; use one of {allowed}"
                          + (f" ({what})" if what else ""))
    data[key] = name
    cls = variants[name]
    fields = {f.name for f in dataclasses.fields(cls)}
    for extra in sorted(set(data) - fields):
        owners = [n for n, c in (siblings or variants).items() if extra in {f.name for f in dataclasses.fields(c)}]
        if owners:
            raise ConfigError(f"{source}: unknown key '{_join(where, extra)}': it is a setting of "
                              f"{' / '.join(owners)}, not of {name}{f' ({what})' if what else ''}; remove it; "
                              f"allowed keys there: {', '.join(sorted(fields))}")
    return cls.parse(data, where, source)
