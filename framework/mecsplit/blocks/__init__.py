"""Model building blocks that variant files compose (see :mod:`mecsplit.blocks.base`).

Every module in this package that defines a module-level ``BLOCKS`` tuple contributes those block
classes to the built-in plugin (``mecsplit.builtin``). Third-party blocks register through the
``register_blocks`` hook instead."""

from __future__ import annotations

import importlib
import pkgutil

from .base import Block, Ledger, Param, VarSpec, Violations


def builtin_blocks() -> tuple[type[Block], ...]:
    out: list[type[Block]] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: (i.name != "core", i.name)):
        if info.name == "base":
            continue
        out.extend(getattr(importlib.import_module(f"{__name__}.{info.name}"), "BLOCKS", ()))
    return tuple(out)


__all__ = ["Block", "Ledger", "Param", "VarSpec", "Violations", "builtin_blocks"]
