"""The built-in plugin: core blocks and instance generators, registered through the same hooks as
any third-party plugin (solvers live in the distributions under ``plugins/``)."""

from __future__ import annotations

from .blocks import builtin_blocks
from .generators import BUILTIN_GENERATORS
from .hookspecs import hookimpl


@hookimpl
def register_blocks(registry):
    for cls in builtin_blocks():
        registry.add_block(cls)


@hookimpl
def register_generators(registry):
    for g in BUILTIN_GENERATORS:
        registry.add_generator(g)
