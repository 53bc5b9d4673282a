"""The measurements behind docs/benchmarks.md, one script a module, run from the repository root as
``python -m bench.<script> ...``. What the scripts share lives in :mod:`bench.lib`; no script imports another."""
