"""Run a campaign config safely: ``python -m invdesign run CONFIG [snakemake args]``.

Validates CONFIG before Snakemake reads anything (a key given twice, ``__use_yte__``, whose templates Snakemake
would run as code while reading the file, and every key of the schema), then runs
``snakemake --configfile CONFIG [snakemake args]`` in this process. The safe way to run a config from someone
else. Exit status 1 with one line when CONFIG is refused.
"""

from __future__ import annotations

import os
import sys

USAGE = "usage: python -m invdesign run CONFIG [snakemake args], e.g. python -m invdesign run my.yaml --cores 2"


def snakemake_command(config: str, args: list[str]) -> list[str]:
    """The validated command line, or :class:`InvdesignError` naming what is refused."""
    from .config import load_config
    from .errors import InvdesignError

    given = [a for a in args if a.split("=")[0] in ("--configfile", "--configfiles")]
    if given:
        raise InvdesignError(f"{given[0]}: give the config as CONFIG (python -m invdesign run CONFIG ...), not "
                             "again after it; merge the files into one")
    load_config(config)
    return [sys.executable, "-m", "snakemake", f"--configfile={config}", *args]  # "=": targets may follow


def main(argv: list[str] | None = None) -> int:
    from .errors import InvdesignError

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or argv[0] != "run":
        print(USAGE, file=sys.stderr)
        return 2
    try:
        cmd = snakemake_command(argv[1], argv[2:])
    except InvdesignError as exc:
        print(f"invdesign error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    os.execv(cmd[0], cmd)
    return 0  # pragma: no cover  (execv does not return)


if __name__ == "__main__":
    sys.exit(main())
