"""Write the JSON Schema of the config (generated from the settings classes) to a YAML file.

    python -m invdesign.config.schema workflow/schemas/config.schema.yaml
"""

from __future__ import annotations

import sys

import yaml

from . import config_schema

HEADER = ("# GENERATED from the settings classes in invdesign/config/ by\n"
          "#   python -m invdesign.config.schema workflow/schemas/config.schema.yaml\n"
          "# Do not edit by hand: change the classes and regenerate (tests/test_config.py checks the two agree).\n")


def render() -> str:
    return HEADER + yaml.safe_dump(config_schema(), sort_keys=False, width=120, allow_unicode=True)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if argv:
        from ..io import atomic_path

        with atomic_path(argv[0]) as tmp:
            tmp.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
