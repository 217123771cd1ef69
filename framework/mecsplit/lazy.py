"""Deferred imports, so that listing variants or plugins does not import Pyomo, SciPy or a solver.

``pyo = lazy_module("pyomo.environ")`` at a module's top stands for the module and imports it on the
first attribute access (after that, attributes are plain lookups). ``LazyRef("pkg.mod:attr")`` is a
callable that imports ``pkg.mod`` on its first call and forwards to ``attr`` — what a plugin passes to
``registry.add_solver(solve=...)`` / ``add_step(fn=...)`` so that registering costs no import.
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class _LazyModule(types.ModuleType):
    def __getattr__(self, attr: str) -> Any:
        mod = importlib.import_module(self.__name__)
        self.__dict__.update(vars(mod))  # later accesses never come back here
        return getattr(mod, attr)


def lazy_module(name: str) -> types.ModuleType:
    """A stand-in for ``import name`` that imports on first use."""
    return _LazyModule(name)


class LazyRef:
    """``"package.module:attribute"`` resolved on first call (``attribute`` may be dotted)."""

    def __init__(self, target: str):
        if ":" not in target:
            raise ValueError(f"lazy reference {target!r}: expected 'package.module:attribute'")
        self.target = target
        self._obj: Any = None

    def resolve(self) -> Any:
        if self._obj is None:
            mod_name, attr = self.target.split(":", 1)
            obj: Any = importlib.import_module(mod_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
            self._obj = obj
        return self._obj

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"LazyRef({self.target!r})"
