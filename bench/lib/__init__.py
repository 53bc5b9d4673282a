"""Code shared by the bench scripts: :mod:`.common` (running a script, its parsers, provenance, the campaign a
study ran on), :mod:`.stats` (intervals and tests of hit counts, the DFT confirmation rule) and :mod:`.crystals`
(the bench's crystal campaign, its CHGNet oracle and the novelty of relaxed hits)."""
