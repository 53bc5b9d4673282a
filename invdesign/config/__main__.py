"""Check config files before a run: ``python -m invdesign.config config/my_campaign.yaml [...]``.

Snakemake reads a ``--configfile`` itself before the workflow starts, so a YAML syntax error or a missing file
there gets Snakemake's own message; this command gives the project's (the file, the line and the fix) and
validates every key, as the workflow does when it starts. Exit status 1 on the first bad file.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from ..errors import InvdesignError
    from . import load_config, unmeasured_notes

    paths = sys.argv[1:] if argv is None else argv
    if not paths or paths[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if paths else 2
    for path in paths:
        try:
            cfg = load_config(path)
        except InvdesignError as exc:
            print(f"invdesign error: {exc}", file=sys.stderr)
            return 1
        campaigns = ", ".join(cfg.get("campaigns", {}))
        print(f"{path}: valid (campaigns: {campaigns})")
        for note in unmeasured_notes(cfg):
            print(f"invdesign warning: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
