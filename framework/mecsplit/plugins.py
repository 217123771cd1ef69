"""Plugin discovery and the registries plugins fill (pluggy project ``mecsplit``).

Discovery, in order (patterns of pytest, tox and datasette):
1. the built-in module :mod:`mecsplit.builtin` (core blocks and generators), registered through the
   same hooks as everything else;
2. entry points in the group ``mecsplit`` (``[project.entry-points.mecsplit] name = "pkg.module"``),
   unless ``MECSPLIT_DISABLE_PLUGIN_AUTOLOAD=1``; ``MECSPLIT_LOAD_PLUGINS=a,b`` is an allow-list
   (empty string: none), ``MECSPLIT_BLOCK_PLUGINS=a,b`` a block-list (option ``--block-plugin``);
3. every ``*.py`` file in ``MECSPLIT_PLUGINS_DIR`` (``os.pathsep``-separated; option ``--plugins-dir``)
   for single-file research plugins.

Registering is cheap: a plugin module imports only what registration needs and hands heavy code over
as :class:`~mecsplit.lazy.LazyRef` (``solve="pkg.module:function"`` is accepted too), imported on the
first solve. Availability (:meth:`Manager.unavailable`) is decided from the plugin's import, its
declared requirements and the modules a solver ``requires``, never by solving (the real probe is
:mod:`mecsplit.probe`, ``mecsplit plugins --probe``). A plugin that fails to load is recorded with the
file and line of the failure and named when one of its solvers is asked for.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import pluggy

from . import hookspecs, schema
from .capabilities import Capabilities, from_legacy
from .errors import InputError
from .lazy import LazyRef

hookimpl = hookspecs.hookimpl
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
    domains: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.capabilities is None:
            self.capabilities = from_legacy(self.variants, self.blocks)

    def why_not(self, variant) -> str | None:
        """None if this solver takes ``variant``, else the first feature it lacks."""
        return self.capabilities.why_not(variant)

    def supports(self, variant) -> bool:
        return self.why_not(variant) is None

    def missing_requirements(self) -> list[str]:
        return [mod for mod in self.requires if not _importable(mod)]

    def preload(self) -> None:
        """Import what the first solve would (before forking bench workers, so each need not)."""
        for mod in self.requires:
            importlib.import_module(mod)
        if isinstance(self.solve, LazyRef):
            self.solve.resolve()


def _importable(mod: str) -> bool:
    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):  # a parent package that is missing or broken
        return False


def _lazy(fn):
    return LazyRef(fn) if isinstance(fn, str) else fn


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
                   requires=(), capabilities: Capabilities | None = None, domains: dict | None = None) -> None:
        """``options``: name → default. ``domains``: name → what a value may be, a tuple of choices or
        the keyword arguments of :func:`mecsplit.schema.number` (``{"lo": 0, "lo_open": True}``); a
        numeric option without one must be ≥ 0 (:func:`mecsplit.solve.resolve_options`)."""
        if name in self._m.solvers:
            raise ValueError(f"solver {name!r} registered twice ({self._m.solvers[name].plugin} and {self._m.current})")
        self._m.solvers[name] = SolverSpec(name, _lazy(solve), bool(exact), description,
                                           tuple(variants) if variants is not None else None,
                                           tuple(blocks) if blocks is not None else None,
                                           dict(options or {}), version, tuple(requires), self._m.current,
                                           capabilities, dict(domains or {}))

    def add_step(self, name: str, kind: str, fn: Callable[..., Any], description: str = "") -> None:
        self._m.steps[name] = StepSpec(name, kind, _lazy(fn), description, self._m.current)


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
        self.info: dict[str, dict[str, str]] = {}  # plugin name -> {version, source, dist}
        self.errors: dict[str, str] = {}           # plugins that failed to load: name -> what happened
        self.error_at: dict[str, tuple[str, int | None, str]] = {}  # name -> (file, line, error) of the failure
        self.current = ""
        self._unavailable: dict[str, tuple[str, str] | None] = {}
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
                    self._failed(ep.name, e, _module_file(ep.module))
                    continue
                self.pm.register(mod, name=ep.name)
                dist = ep.dist
                self.info[ep.name] = {"version": dist.version if dist else "", "source": f"entry point {ep.value}",
                                      "dist": dist.name if dist else ""}
        env_dirs = [d for d in os.environ.get("MECSPLIT_PLUGINS_DIR", "").split(os.pathsep) if d]
        for d in [*env_dirs, *plugins_dirs]:
            self._load_dir(Path(d))

    def _load_dir(self, d: Path) -> None:
        if not schema.is_dir(d):
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
                self._failed(name, e, str(f))
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
                    self._failed(impl.plugin_name, e, getattr(impl.plugin, "__file__", None), f"{hook}: ")
        self.current = ""

    def _failed(self, name: str, e: BaseException, file: str | None, prefix: str = "") -> None:
        """Record a plugin that failed, with the file and line where it failed (for a syntax error the
        offending line; else the innermost frame of the traceback that is not import machinery)."""
        line = None
        if isinstance(e, SyntaxError) and e.filename:
            file, line = e.filename, e.lineno
        else:
            frames = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith("<frozen")]
            if frames:
                file, line = frames[-1].filename, frames[-1].lineno
        text = f"{type(e).__name__}: {e.msg if isinstance(e, SyntaxError) else e}"
        self.errors[name] = prefix + text + (f" ({file}, line {line})" if file and line else "")
        self.error_at[name] = (file or name, line, prefix + text)

    @property
    def hook(self):
        return self.pm.hook

    def solver(self, name: str) -> SolverSpec:
        if name not in self.solvers:
            raise self.unknown_solver(name)
        return self.solvers[name]

    def unknown_solver(self, name: str) -> InputError:
        """The error for a solver name nobody registered. If plugins failed to load, the one named like
        the solver (``nearest`` for ``nearest.py`` or entry point ``nearest``) is blamed at its file and
        line; otherwise every failed plugin is named, as any of them may be the one meant."""
        installed = ", ".join(sorted(self.solvers)) or "(none installed)"
        same = [p for p in self.errors if p.removeprefix("dir:") in (name, name.split("-")[0])]
        if len(same) == 1:
            file, line, err = self.error_at[same[0]]
            return InputError(file, f"line {line}" if line else "<plugin>",
                              f"solver {name!r} is not registered: plugin {same[0]!r} failed to load: {err}",
                              f"fix the plugin (`mecsplit plugins` shows every plugin's state); registered: {installed}")
        if self.errors:
            failed = "; ".join(f"{p}: {err}" for p, err in self.errors.items())
            return InputError("<option>", "solver", f"unknown solver {name!r} (plugins that failed to load, one of "
                              f"which may register it: {failed})", installed)
        return InputError("<option>", "solver", f"unknown solver {name!r}", installed)

    def unavailable(self, spec: SolverSpec) -> tuple[str, str] | None:
        """(why ``spec`` cannot run here, the install command that fixes it); None if it can. Cheap: looks at the
        plugin distribution's declared requirements (the core's version bound among them) and at the
        modules the solver ``requires``; does not import them."""
        if spec.name not in self._unavailable:
            self._unavailable[spec.name] = self._check(spec)
        return self._unavailable[spec.name]

    def _check(self, spec: SolverSpec) -> tuple[str, str] | None:
        dist = _distribution(self.info.get(spec.plugin, {}).get("dist", ""))
        unmet = _unmet_requirements(dist) if dist is not None else []
        missing = spec.missing_requirements()
        if not unmet and not missing:
            return None
        why = [f"needs {r} (installed: {v or 'none'})" for r, v in unmet]
        if missing:
            why.append(f"missing module(s) {', '.join(missing)}")
        extras = _extras_providing(dist, missing) if dist is not None else []
        if extras:
            fix = f"pip install '{dist.name}[{','.join(extras)}]'"
        else:
            fix = "pip install " + " ".join(dict.fromkeys([str(r) for r, _ in unmet] + [m.split(".")[0] for m in missing]))
        return "; ".join(why), fix

    def preload(self, names) -> None:
        for n in names:
            if n in self.solvers and not self.unavailable(self.solvers[n]):
                self.solvers[n].preload()


def _module_file(module: str) -> str | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None else None


def _distribution(name: str):
    if not name:
        return None
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _unmet_requirements(dist) -> list[tuple[Any, str]]:
    """The distribution's unconditional requirements that are not installed at an allowed version."""
    from packaging.requirements import Requirement

    out = []
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            out.append((req, ""))
            continue
        if req.specifier and not req.specifier.contains(have, prereleases=True):
            out.append((req, have))
    return out


def _extras_providing(dist, modules: list[str]) -> list[str]:
    """Extras of ``dist`` that declare a distribution named like one of the missing modules."""
    from packaging.requirements import Requirement

    want = {_norm(m.split(".")[0]) for m in modules}
    extras = []
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is None or _norm(req.name) not in want:
            continue
        for extra in dist.metadata.get_all("Provides-Extra") or []:
            if req.marker.evaluate({"extra": extra}) and extra not in extras:
                extras.append(extra)
    return extras


_MANAGER: Manager | None = None


def get_manager(reload: bool = False, plugins_dirs: list[str] | None = None, blocked: list[str] | None = None) -> Manager:
    """The process-wide manager (created on first use; ``reload=True`` re-discovers)."""
    global _MANAGER
    if _MANAGER is None or reload or plugins_dirs or blocked:
        _MANAGER = Manager(plugins_dirs, blocked)
    return _MANAGER
