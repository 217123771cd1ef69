"""``mecsplit bench``: declarative benchmark suites, isolated execution, an SQLite store and reports.

Modules: :mod:`.suite` (TOML suite files), :mod:`.cells` (cell expansion and content hashes),
:mod:`.runner` (persistent worker pool with a hard per-cell kill; Dask executor), :mod:`.store`
(SQLite), :mod:`.profiles` (Dolan–Moré profiles, shifted geometric means), :mod:`.report`
(markdown/HTML + PNG plots), :mod:`.cli` (the ``bench`` subcommands). See docs/benchmarks.md.
"""
