"""The documentation against the repository: links resolve, the README's quick start is what CI runs, its list of
property keys is the registry, and the user guide's column tables match the oracles' declarations."""

import dataclasses
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code (no links live there)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of the page's headings (lower case, punctuation dropped, spaces to hyphens)."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    heads = re.findall(r"^#+\s+(.*?)\s*$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in heads}


def section(text: str, heading: str) -> str:
    """The body of the section ``heading`` (a full heading line) up to the next heading of its level or above,
    outside code blocks (a shell comment is not a heading)."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines(keepends=True)
    start = lines.index(heading + "\n") + 1
    fenced = False
    for i in range(start, len(lines)):
        fenced ^= lines[i].startswith("```")
        if not fenced and re.match(r"#{1,%d} " % level, lines[i]):
            return "".join(lines[start:i])
    return "".join(lines[start:])


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_points_to_an_existing_file_and_heading(page):
    bad = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z]+:", target) or not re.search(r"[./#]", target):
            continue  # http:, https:, mailto:; or no path at all (a SMILES such as C([N+](=O)O) in prose)
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no such heading")
    assert not bad, f"{page.name}: {bad}"


def test_the_link_check_sees_links_and_misses_none():
    text = "[a](docs/guide.md) ![b](docs/img/x.png) `[c](nowhere.md)`\n```\n[d](nowhere.md)\n```\n[e](#top)\n"
    assert LINK.findall(prose(text)) == ["docs/guide.md", "docs/img/x.png", "#top"]
    assert "campaigns-and-targets" in anchors(ROOT / "docs" / "guide.md")
    assert "scaling-out-gpus-clusters-conda" in anchors(ROOT / "docs" / "guide.md")


def test_ci_runs_exactly_the_readmes_test_line():
    quick = section((ROOT / "README.md").read_text(), "## Quick start")
    block = re.search(r"```bash\n(.*?)```", quick, re.S).group(1)
    lines = [ln for ln in block.splitlines() if ln and not ln.startswith("#")]
    assert len(lines) == 2 and lines[0].endswith("snakemake --cores 2"), lines
    ci = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith(("#", "set ", "cd "))]
    assert ci == [lines[1]]


def test_the_readme_lists_every_registered_property_with_its_unit():
    from invdesign.properties import PROPERTIES

    body = section((ROOT / "README.md").read_text(), "## Swap the target")
    listed = {}
    for source, items in re.findall(r"^- `(\w+)`: (.*?)(?=^\S|^- |\Z)", body, re.M | re.S):
        items = " ".join(items.split())
        for keys, unit in re.findall(r"((?:`\w+`(?:, )?)+) \(([^()]*(?:\([^()]*\))?[^()]*)\)", items):
            for key in re.findall(r"`(\w+)`", keys):
                listed[key] = (source, unit)
    assert listed == {p.name: (src, p.unit) for p in PROPERTIES.values() for src in p.sources}


def _declared_columns():
    """(every column the package's oracles declare with a meaning, every column they name anywhere), over every
    property of their domain and every value of their ``alloy_orderings`` setting."""
    from invdesign.oracles import registered
    from invdesign.properties import PROPERTIES

    documented, named = set(), set()
    for cls in registered().values():
        if not cls.__module__.startswith("invdesign."):  # a test's toy oracle
            continue
        base = cls.settings_class()
        variants = [base]
        if "alloy_orderings" in {f.name for f in dataclasses.fields(base)}:
            variants.append(dataclasses.replace(base, alloy_orderings="count"))
        for settings in variants:
            for prop in [None, *(p for p in PROPERTIES.values() if p.domain == cls.domain)]:
                orc = cls(settings, {"min": 0.0}, prop)
                documented |= set(orc.columns) | set(orc.confirm_columns)
                named |= {c for c, _ in orc.table_columns()} | set(orc.report_columns) | set(orc.large_columns)
        for tier in cls.tiers:
            documented |= set(tier.columns())
            named |= {f.column for f in tier.card} | {c for fig in tier.figures for c in fig.columns.values()}
    return documented, named | documented


def _templates(source: str) -> list[re.Pattern]:
    """The column names the f-strings of ``source`` write (f"{tag}_in_target"), as patterns: those that end in a
    literal suffix of at least 4 characters (f"sevennet_{c}" or f"n_{tag}" would match nearly anything)."""
    found = re.findall(r'f"([a-z0-9_]*\{\w+\}[a-z0-9_]*_[a-z0-9_]{3,})"', source)
    return [re.compile(re.sub(r"\\\{[^}]*\\\}", "[a-z0-9]+", re.escape(t)))
            for t in found]


def _source_knows(name: str, source: str, templates: list[re.Pattern]) -> bool:
    return bool(re.search(rf"\b{re.escape(name)}\b", source)) or any(t.fullmatch(name) for t in templates)


def test_the_guides_column_tables_match_the_declarations():
    """Every column an oracle declares is in the guide's tables; every column the tables name is declared, or is
    a name the package's code writes (literally or by an f-string template such as f"{tag}_in_target")."""
    from invdesign.domains import molecules, crystals

    text = section((ROOT / "docs" / "guide.md").read_text(), "### Columns of the candidate and verified tables")
    rows = [ln.split("|")[1] for ln in text.splitlines() if ln.startswith("| `")]
    in_guide = {c for cell in rows for c in re.findall(r"`([a-z0-9_]+)`", cell)}
    documented, named = _declared_columns()
    assert not documented - in_guide, f"declared but not in docs/guide.md: {sorted(documented - in_guide)}"

    named |= set(molecules.MoleculeDomain.report_columns) | set(crystals.CrystalDomain.report_columns)
    source = "\n".join(p.read_text() for p in (ROOT / "invdesign").rglob("*.py"))
    templates = _templates(source)
    unknown = sorted(c for c in in_guide if c not in named and not _source_knows(c, source, templates))
    assert not unknown, f"docs/guide.md names columns the code does not know: {unknown}"


def test_the_column_check_fails_on_an_unknown_name():
    source = 'out[f"{tag}_in_target"] = x\nx = f"sevennet_{c}"\nCOLUMNS = {"e_hull": "..."}'
    templates = _templates(source)
    assert _source_knows("eos_in_target", source, templates) and _source_knows("e_hull", source, templates)
    for wrong in ("e_hul", "eos_in_targets", "sevennet_modell"):
        assert not _source_knows(wrong, source, templates), wrong
