"""The generator plug-ins: one module per (domain, type), each declaring one
:class:`~invdesign.config.generators.GeneratorPlugin` named ``GENERATOR``.

:func:`~invdesign.config.generators.registry` finds them by walking this package; nothing else lists them. The
declarations import only the settings classes (:mod:`invdesign.config.generators`) and name their model and
sampler classes by ``"module:Class"``, so discovering them never imports torch.
"""

from __future__ import annotations

from ..config.generators import DEFAULT_TYPE, GeneratorPlugin, registry
__all__ = ["GeneratorPlugin", "markdown_table"]


def markdown_table() -> str:
    """The table of generators in docs/guide.md (``python -m invdesign.generators``): one row per declaration, the default
    type first, then by type and in the config's order of domains."""
    from ..config.data import SOURCES

    domains = list(SOURCES)
    rows = ["| type | what it is | how it reaches the target |", "|---|---|---|"]
    for p in sorted(registry().values(), key=lambda p: (p.type != DEFAULT_TYPE, p.type, domains.index(p.domain))):
        rows.append(f"| `{p.type}` ({p.domain}) | {p.doc} | {p.steering} |")
    return "\n".join(rows) + "\n"
