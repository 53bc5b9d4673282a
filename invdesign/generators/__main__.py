"""Print the README's table of generators, made from the declarations: ``python -m invdesign.generators``."""

from . import markdown_table

print(markdown_table(), end="")
