"""Plugin discovery and the registries plugins fill (pluggy project ``mecsplit``).

Discovery, in order (patterns of pytest, tox and datasette):
1. the built-in module :mod:`mecsplit.builtin` (core blocks and generators), registered through the
   same hooks as everything else;
2. entry points in the group ``mecsplit`` (``[project.entry-points.mecsplit] name = "pkg.module"``),
   unless ``MECSPLIT_DISABLE_PLUGIN_AUTOLOAD=1``; ``MECSPLIT_LOAD_PLUGINS=a,b`` is an allow-list
   (empty string: none), ``MECSPLIT_BLOCK_PLUGINS=a,b`` a block-list (option ``--block-plugin``);
3. every ``*.py`` file in ``MECSPLIT_PLUGINS_DIR`` (``os.pathsep``-separated; option ``--plugins-dir``)
   for single-file research plugins.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import pluggy

from . import hookspecs
from .capabilities import Capabilities, from_legacy
from .errors import InputError

hookimpl = pluggy.HookimplMarker("mecsplit")
GROUP = "mecsplit"


@dataclass
class SolverSpec:
    """A registered solver. ``solve(problem, options, tracer) -> Outcome``; ``exact`` solvers return
    valid lower bounds; ``capabilities`` say which variants it takes (:mod:`mecsplit.capabilities`;
    the older ``variants`` names / ``blocks`` required block names still work); ``requires`` lists
    importable modules it needs."""

    name: str
    solve: Callable[..., Any]
    exact: bool
    description: str = ""
    variants: tuple[str, ...] | None = None
    blocks: tuple[str, ...] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    requires: tuple[str, ...] = ()
    plugin: str = ""
    capabilities: Capabilities | None = None

    def __post_init__(self) -> None:
        if self.capabilities is None:
            self.capabilities = from_legacy(self.variants, self.blocks)

    def why_not(self, variant) -> str | None:
        """None if this solver takes ``variant``, else the first feature it lacks."""
        return self.capabilities.why_not(variant)

    def supports(self, variant) -> bool:
        return self.why_not(variant) is None

    def missing_requirements(self) -> list[str]:
        return [mod for mod in self.requires if importlib.util.find_spec(mod) is None]


@dataclass
class StepSpec:
    """A reusable decomposition step (e.g. ``fp-resources``, ``cccp-association``)."""

    name: str
    kind: str  # "resources" | "association" | "split" | "outer" | ...
    fn: Callable[..., Any]
    description: str = ""
    plugin: str = ""


class SolverRegistry:
    def __init__(self, manager: "Manager"):
        self._m = manager

    def add_solver(self, name: str, solve: Callable[..., Any], exact: bool, description: str = "",
                   variants=None, blocks=None, options: dict | None = None, version: str = "",
                   requires=(), capabilities: Capabilities | None = None) -> None:
        if name in self._m.solvers:
            raise ValueError(f"solver {name!r} registered twice ({self._m.solvers[name].plugin} and {self._m.current})")
        self._m.solvers[name] = SolverSpec(name, solve, bool(exact), description,
                                           tuple(variants) if variants is not None else None,
                                           tuple(blocks) if blocks is not None else None,
                                           dict(options or {}), version, tuple(requires), self._m.current,
                                           capabilities)

    def add_step(self, name: str, kind: str, fn: Callable[..., Any], description: str = "") -> None:
        self._m.steps[name] = StepSpec(name, kind, fn, description, self._m.current)


class BlockRegistry:
    def __init__(self, manager: "Manager"):
        self._m = manager

    def add_block(self, cls) -> None:
        self._m.blocks[cls.name] = cls
        self._m.block_origin[cls.name] = self._m.current


class GeneratorRegistry:
    def __init__(self, manager: "Manager"):
        self._m = manager

    def add_generator(self, generator) -> None:
        self._m.generators[generator.name] = generator


class Manager:
    """The pluggy PluginManager plus what the plugins registered."""

    def __init__(self, plugins_dirs: list[str] | None = None, blocked: list[str] | None = None):
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.solvers: dict[str, SolverSpec] = {}
        self.steps: dict[str, StepSpec] = {}
        self.blocks: dict[str, type] = {}
        self.block_origin: dict[str, str] = {}
        self.generators: dict[str, Any] = {}
        self.info: dict[str, dict[str, str]] = {}  # plugin name -> {version, source}
        self.errors: dict[str, str] = {}           # plugins that failed to load
        self.current = ""
        self._discover(plugins_dirs or [], blocked or [])
        self._collect()

    def _discover(self, plugins_dirs: list[str], blocked: list[str]) -> None:
        from . import __version__, builtin

        env_block = [b for b in os.environ.get("MECSPLIT_BLOCK_PLUGINS", "").split(",") if b]
        for name in {*env_block, *blocked}:
            self.pm.set_blocked(name)
        self.pm.register(builtin, name="mecsplit-builtin")
        self.info["mecsplit-builtin"] = {"version": __version__, "source": "built-in"}
        allow = os.environ.get("MECSPLIT_LOAD_PLUGINS")
        allowed = None if allow is None else {a for a in allow.split(",") if a}
        if os.environ.get("MECSPLIT_DISABLE_PLUGIN_AUTOLOAD", "") not in ("1", "true", "yes"):
            for ep in metadata.entry_points(group=GROUP):
                if (allowed is not None and ep.name not in allowed) or self.pm.is_blocked(ep.name):
                    continue
                try:
                    mod = ep.load()
                except Exception as e:  # a broken plugin must not take mecsplit down
                    self.errors[ep.name] = f"{type(e).__name__}: {e}"
                    continue
                self.pm.register(mod, name=ep.name)
                dist = ep.dist
                self.info[ep.name] = {"version": dist.version if dist else "", "source": f"entry point {ep.value}"}
        env_dirs = [d for d in os.environ.get("MECSPLIT_PLUGINS_DIR", "").split(os.pathsep) if d]
        for d in [*env_dirs, *plugins_dirs]:
            self._load_dir(Path(d))

    def _load_dir(self, d: Path) -> None:
        if not d.is_dir():
            raise InputError(str(d), "plugins-dir", "not a directory", "a folder of single-file plugins (*.py)")
        for f in sorted(d.glob("*.py")):
            name = f"dir:{f.stem}"
            if self.pm.is_blocked(f.stem) or self.pm.is_blocked(name):
                continue
            spec = importlib.util.spec_from_file_location(f"mecsplit_dirplugin_{f.stem}", f)
            mod = importlib.util.module_from_spec(spec)
            try:
                sys.modules[spec.name] = mod
                spec.loader.exec_module(mod)
            except Exception as e:
                self.errors[name] = f"{type(e).__name__}: {e}"
                continue
            self.pm.register(mod, name=name)
            self.info[name] = {"version": str(getattr(mod, "__version__", "")), "source": str(f)}

    def _collect(self) -> None:
        """Call the register_* hooks one plugin at a time, so every entry knows its plugin."""
        regs = {"register_blocks": BlockRegistry(self), "register_generators": GeneratorRegistry(self),
                "register_solvers": SolverRegistry(self)}
        for hook, registry in regs.items():
            for impl in getattr(self.pm.hook, hook).get_hookimpls():
                self.current = impl.plugin_name
                try:
                    impl.function(registry)
                except Exception as e:
                    self.errors[impl.plugin_name] = f"{hook}: {type(e).__name__}: {e}"
        self.current = ""

    @property
    def hook(self):
        return self.pm.hook

    def solver(self, name: str) -> SolverSpec:
        if name not in self.solvers:
            raise InputError("<option>", "solver", f"unknown solver {name!r}", ", ".join(sorted(self.solvers)) or "(none installed)")
        return self.solvers[name]


_MANAGER: Manager | None = None


def get_manager(reload: bool = False, plugins_dirs: list[str] | None = None, blocked: list[str] | None = None) -> Manager:
    """The process-wide manager (created on first use; ``reload=True`` re-discovers)."""
    global _MANAGER
    if _MANAGER is None or reload or plugins_dirs or blocked:
        _MANAGER = Manager(plugins_dirs, blocked)
    return _MANAGER
