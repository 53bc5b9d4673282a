"""Print the table of generators in docs/guide.md, made from the declarations: ``python -m invdesign.generators``."""

from . import markdown_table

print(markdown_table(), end="")
