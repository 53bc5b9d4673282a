"""Read a config file as Snakemake does (JSON first, then YAML), refusing what Snakemake accepts silently: a key
given twice (both parsers keep the last one without a word) and YTE templating (``__use_yte__``: Snakemake runs
the Python code of such a file while reading it). Errors are one line naming the file, the key, the line and the
fix."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ..errors import InvdesignError

_MERGE = "tag:yaml.org,2002:merge"


class _Duplicate(Exception):
    def __init__(self, key, lines=()):
        super().__init__(key)
        self.key, self.lines = key, lines


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a mapping with the same key twice (merge keys ``<<`` may still be overridden)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _Duplicate(key, (seen[key], line))
                seen[key] = line
            except TypeError:  # an unhashable key: the safe loader's own error follows
                break
        return super().construct_mapping(node, deep)


def _unique_pairs(pairs):
    keys = [k for k, _ in pairs]
    for k in keys:
        if keys.count(k) > 1:
            raise _Duplicate(k)
    return dict(pairs)


def _yaml(text: str, path: Path):
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506  (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise InvdesignError(f"{path}: not valid YAML{at} ({str(exc).splitlines()[0]}); fix the syntax") from None


def _parse(text: str, path: Path):
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except _Duplicate as dup:  # JSON keeps no lines: YAML (a superset of most JSON) finds them
        try:
            _yaml(text, path)
        except InvdesignError:
            pass
        raise dup from None
    except ValueError:
        return _yaml(text, path)


def read_config_file(path: str | Path):
    """The parsed content of a config file (not yet validated); :class:`InvdesignError` when it is missing, does
    not parse, holds a key twice in one mapping, or asks for YTE templating."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvdesignError(f"config file {path} not found; pass an existing file with --configfile") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvdesignError(f"{path}: cannot be read as a text config file ({type(exc).__name__}); give a YAML "
                             "or JSON file") from None
    try:
        data = _parse(text, path)
    except _Duplicate as dup:
        lines = f" (lines {dup.lines[0]} and {dup.lines[1]})" if dup.lines else ""
        raise InvdesignError(f"{path}: key {dup.key!r} is given twice in one mapping{lines}; only the last one "
                             "would count: remove or rename one of them") from None
    if isinstance(data, dict) and "__use_yte__" in data:
        raise InvdesignError(f"{path}: sets __use_yte__, so Snakemake would run the code in its YTE templates "
                             "while reading it; remove __use_yte__ and write plain values")
    return data
