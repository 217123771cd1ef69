"""Expand a suite into cells and give each a content hash.

A cell = one (variant + overrides, instance size, instance seed, solver + options, time limit) solve.
Its content hash (``cell_hash``) covers the instance hash, the variant's name, structure hash and
overrides, the solver, its resolved options, the seed, the time limit, and the versions of mecsplit,
the solver and its plugin, so a re-run skips exactly the cells whose answer cannot have changed.
Reference cells (``role = "reference"``: the reference solver on each distinct instance + objective)
come first; a reference cell and an ordinary cell with the same content share one hash and one row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import InputError
from .suite import Group, SolverEntry, Suite, variant_ref


@dataclass
class Cell:
    suite: str
    group: str
    role: str  # "cell" | "reference"
    variant: str
    overrides: dict[str, Any]
    sweep_param: str | None
    sweep_value: float | None
    n_users: int
    n_servers: int
    seed: int
    solver: str
    label: str
    options: dict[str, Any]
    time_limit_s: float
    grace_s: float
    instance_hash: str = ""
    ref_key: str = ""
    cell_hash: str = ""
    skip_reason: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    variant_path: str = ""  # the variant file, absolute: workers load it from there (a path works from any cwd)

    def payload(self) -> dict[str, Any]:
        """What a worker needs (plain data, picklable)."""
        return asdict(self)


def _h(obj: Any, n: int = 20) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


def ref_key(instance_hash: str, variant_name: str, structure: str, overrides: dict[str, Any]) -> str:
    """Identity of an optimisation problem: instance + objective (a weight sweep changes the optimum)."""
    return _h({"instance": instance_hash, "variant": variant_name, "structure": structure, "overrides": overrides}, 16)


class Expander:
    """Caches variants and instances while expanding (a weight sweep reuses the same instances)."""

    def __init__(self, manager=None):
        from ..plugins import get_manager

        self.mgr = manager or get_manager()
        self._variants: dict[str, Any] = {}
        self._instances: dict[tuple, Any] = {}

    def variant(self, name: str, overrides: dict[str, Any]):
        from ..variant import load_variant

        key = json.dumps([name, overrides], sort_keys=True)
        if key not in self._variants:
            self._variants[key] = load_variant(name, overrides=overrides or None)
        return self._variants[key]

    def instance_hash(self, v, n: int, m: int, seed: int) -> str:
        from ..instance import generate

        key = (v.name, v.structure_hash(), n, m, seed)
        if key not in self._instances:
            self._instances[key] = generate(v, n, m, seed).hash
        return self._instances[key]

    def solver_entries(self, g: Group, v) -> list[SolverEntry]:
        if g.solvers == "*":
            names = sorted(n for n, s in self.mgr.solvers.items() if s.supports(v) and n not in g.exclude)
            return [SolverEntry(n) for n in names]
        return list(g.solvers)

    def make(self, suite: Suite, g: Group, role: str, v, overrides, sweep, n, m, seed, entry: SolverEntry,
             time_limit_s: float) -> Cell:
        from ..solve import resolve_options

        c = Cell(suite.name, g.name, role, v.name, overrides, sweep[0], sweep[1], n, m, seed, entry.name,
                 entry.label, dict(entry.options), time_limit_s, g.grace_s, variant_path=str(Path(v.path).resolve()))
        c.instance_hash = self.instance_hash(v, n, m, seed)
        c.ref_key = ref_key(c.instance_hash, v.name, v.structure_hash(), overrides)
        spec = self.mgr.solvers.get(entry.name)
        if spec is None:
            c.skip_reason = str(self.mgr.unknown_solver(entry.name)) if self.mgr.errors else \
                f"solver {entry.name!r} is not installed (installed: {', '.join(sorted(self.mgr.solvers)) or 'none'})"
        elif not spec.supports(v):
            c.skip_reason = f"solver {entry.name!r} does not support variant {v.name!r}"
        elif why := self.mgr.unavailable(spec):
            c.skip_reason = f"solver {entry.name!r} is not available: {why[0]} ({why[1]})"
        elif why_size := spec.capabilities.why_not_size(v, n, m):
            c.skip_reason = f"solver {entry.name!r} is unavailable for {n}x{m}: {why_size}"
        else:
            c.options = resolve_options(spec, entry.options)  # InputError on a bad option
            c.versions = {"mecsplit": __version__, "solver": spec.version,
                          "plugin": self.mgr.info.get(spec.plugin, {}).get("version", "")}
        c.cell_hash = _h({"instance": c.instance_hash, "variant": v.name, "structure": v.structure_hash(),
                          "overrides": overrides, "solver": entry.name, "options": c.options, "seed": seed,
                          "time_limit_s": time_limit_s, "versions": c.versions})
        return c


def expand(suite: Suite, manager=None) -> list[Cell]:
    """All cells of a suite, reference cells first (deduplicated by content hash within the suite)."""
    from ..variant import deep_merge

    ex = Expander(manager)
    refs: dict[str, Cell] = {}
    cells: list[Cell] = []
    for g in suite.groups:
        points: list[tuple[str | None, float | None]] = [(k, w) for k, ws in g.sweep.items() for w in ws] or [(None, None)]
        for vname in g.variants:
            for sweep in points:
                overrides = dict(g.overrides)
                if sweep[0] is not None:
                    overrides = deep_merge(overrides, {"objective": {"weights": {sweep[0]: sweep[1]}}})
                v = ex.variant(variant_ref(suite, vname), overrides)
                entries = ex.solver_entries(g, v)
                if not entries:
                    raise InputError(str(suite.path), f"{g.name}.solvers", f"no installed solver supports {vname!r}",
                                     "install a solver plugin (mecsplit plugins)")
                for n, m in g.sizes:
                    for seed in g.seeds:
                        if g.reference == "exact":
                            rc = ex.make(suite, g, "reference", v, overrides, sweep, n, m, seed,
                                         SolverEntry(g.reference_solver, dict(g.reference_options)), g.reference_time_limit_s)
                            refs.setdefault(rc.cell_hash, rc)
                        for e in entries:
                            if g.reference == "exact" and e.name == g.reference_solver and g.solvers == "*":
                                # the reference run is this solver's cell: same limit and options, one row
                                e = SolverEntry(e.name, dict(g.reference_options))
                                cells.append(ex.make(suite, g, "cell", v, overrides, sweep, n, m, seed, e, g.reference_time_limit_s))
                                continue
                            cells.append(ex.make(suite, g, "cell", v, overrides, sweep, n, m, seed, e, g.time_limit_s))
    return [*refs.values(), *cells]
