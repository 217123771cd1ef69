"""Suite files (TOML): what to run. Format (every key optional unless said; docs/benchmarks.md)::

    name = "default"                    # default: the file's stem
    description = "..."
    [defaults]                          # applied to every [[group]] (a group may override any key)
    variants = ["default"]              # variant names or paths
    sizes = [[4, 2], [6, 2]]            # [users, servers]
    seeds = [1, 2]                      # instance seeds (the solver's seed is the same number)
    solvers = "*"                       # "*" = every installed solver supporting the variant, or a list of
                                        #   names / {name=, options={}, label=}
    exclude = []                        # solver names dropped from "*"
    time_limit_s = 10.0                 # passed to the solver (s)
    grace_s = 10.0                      # hard kill at time_limit_s + grace_s (s)
    reference = "exact"                 # "exact" | "best-known" | "none"
    reference_solver = "exact"          # the solver that certifies optima for reference = "exact"
    reference_time_limit_s = 60.0       # its time limit (s)
    reference_options = {}
    epsilon = 1e-4                      # "solved" in quality profiles: relative gap to reference <= epsilon
    overrides = {}                      # variant overrides, deep-merged (e.g. {objective = {normalise = false}})
    sweep = {}                          # objective-weight sweeps {energy = [1, 2, ...], ...}: each weight swept
                                        #   on its own, the others at the variant's value
    figure = {}                         # {kind = "weights" | "users" | "bars", title = "..."} seed-figure plots
    [[group]]
    name = "small"
    ...
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError

GROUP_KEYS = {
    "name", "variants", "sizes", "seeds", "solvers", "exclude", "time_limit_s", "grace_s", "reference",
    "reference_solver", "reference_time_limit_s", "reference_options", "epsilon", "overrides", "sweep", "figure",
}
TOP_KEYS = {"name", "description", "defaults", "group"}
REFERENCE_POLICIES = ("exact", "best-known", "none")
FIGURE_KINDS = ("weights", "users", "bars", "convergence")
WEIGHT_NAMES = ("delay", "energy", "stability")
DEFAULTS: dict[str, Any] = {
    "variants": ["default"], "sizes": [[4, 2]], "seeds": [1], "solvers": "*", "exclude": [],
    "time_limit_s": 10.0, "grace_s": 10.0, "reference": "best-known", "reference_solver": "exact",
    "reference_time_limit_s": 60.0, "reference_options": {}, "epsilon": 1e-4, "overrides": {}, "sweep": {},
    "figure": {},
}


@dataclass
class SolverEntry:
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    def __post_init__(self) -> None:
        self.label = self.label or self.name


@dataclass
class Group:
    name: str
    variants: list[str]
    sizes: list[tuple[int, int]]
    seeds: list[int]
    solvers: list[SolverEntry] | str  # "*" or entries
    exclude: list[str]
    time_limit_s: float
    grace_s: float
    reference: str
    reference_solver: str
    reference_time_limit_s: float
    reference_options: dict[str, Any]
    epsilon: float
    overrides: dict[str, Any]
    sweep: dict[str, list[float]]
    figure: dict[str, Any]


@dataclass
class Suite:
    name: str
    description: str
    path: Path
    groups: list[Group]


SHIPPED = Path(__file__).resolve().parents[1] / "data" / "suites"  # package data (in the repo: benchmarks/suites)


def suite_dirs() -> list[Path]:
    """Where suite names are looked up: $MECSPLIT_SUITES (os.pathsep-separated), ./benchmarks/suites,
    and the suites shipped with mecsplit."""
    extra = [Path(p) for p in os.environ.get("MECSPLIT_SUITES", "").split(os.pathsep) if p]
    out: list[Path] = []
    for d in [*extra, Path.cwd() / "benchmarks" / "suites", SHIPPED]:
        if d.is_dir() and d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def available_suites() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for d in reversed(suite_dirs()):
        out.update({p.stem: p for p in sorted(d.glob("*.toml"))})
    return dict(sorted(out.items()))


def find_suite(name_or_path: str | os.PathLike) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise InputError(str(p), "SUITE", "no such file", "a suite name or a .toml path")
        return p
    suites = available_suites()
    if str(name_or_path) not in suites:
        raise InputError("<option>", "SUITE", f"unknown suite {str(name_or_path)!r}", ", ".join(suites) or "(no suites found)")
    return suites[str(name_or_path)]


def _num(where, f, v, lo=0.0, integer=False, positive=False):
    ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    if ok and integer:
        ok = isinstance(v, int)
    if ok:
        ok = v > lo if positive else v >= lo
    if not ok:
        raise InputError(where, f, f"got {v!r}", f"{'an integer' if integer else 'a number'} {'>' if positive else '>='} {lo:g}")
    return v


def _group(where: str, raw: dict[str, Any], defaults: dict[str, Any], idx: int) -> Group:
    d = {**DEFAULTS, **defaults, **raw}
    f = f"group[{idx}]"
    name = d.get("name", f"group{idx}")
    if not isinstance(name, str) or not name:
        raise InputError(where, f"{f}.name", f"got {name!r}", "a non-empty string")
    variants = d["variants"]
    if isinstance(variants, str):
        variants = [variants]
    if not isinstance(variants, list) or not variants or not all(isinstance(v, str) for v in variants):
        raise InputError(where, f"{f}.variants", f"got {variants!r}", "a list of variant names or paths")
    sizes = d["sizes"]
    if not isinstance(sizes, list) or not sizes or not all(isinstance(s, list) and len(s) == 2 for s in sizes):
        raise InputError(where, f"{f}.sizes", f"got {sizes!r}", "a list of [users, servers] pairs, e.g. [[10, 3]]")
    for s in sizes:
        _num(where, f"{f}.sizes", s[0], 1, True)
        _num(where, f"{f}.sizes", s[1], 1, True)
    seeds = d["seeds"]
    if isinstance(seeds, dict) and set(seeds) == {"count"}:  # seeds = {count = 10} -> 1..10
        seeds = list(range(1, _num(where, f"{f}.seeds.count", seeds["count"], 1, True) + 1))
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise InputError(where, f"{f}.seeds", f"got {seeds!r}", "a list of integers >= 0, or {count = N}")
    solvers = d["solvers"]
    if solvers != "*":
        if not isinstance(solvers, list) or not solvers:
            raise InputError(where, f"{f}.solvers", f"got {solvers!r}", '"*" or a list of names / {name=, options=, label=}')
        entries = []
        for j, s in enumerate(solvers):
            if isinstance(s, str):
                entries.append(SolverEntry(s))
            elif isinstance(s, dict) and isinstance(s.get("name"), str) and set(s) <= {"name", "options", "label"} \
                    and isinstance(s.get("options", {}), dict) and isinstance(s.get("label", ""), str):
                entries.append(SolverEntry(s["name"], dict(s.get("options", {})), s.get("label", "")))
            else:
                raise InputError(where, f"{f}.solvers[{j}]", f"got {s!r}", "a name or {name=, options={...}, label=}")
        labels = [e.label for e in entries]
        if len(set(labels)) != len(labels):
            raise InputError(where, f"{f}.solvers", f"duplicate labels {labels}", "distinct labels (set label= when a solver appears twice)")
        solvers = entries
    exclude = d["exclude"]
    if not isinstance(exclude, list) or not all(isinstance(x, str) for x in exclude):
        raise InputError(where, f"{f}.exclude", f"got {exclude!r}", "a list of solver names")
    ref = d["reference"]
    if ref not in REFERENCE_POLICIES:
        raise InputError(where, f"{f}.reference", f"got {ref!r}", ", ".join(REFERENCE_POLICIES))
    for k in ("overrides", "reference_options", "figure", "sweep"):
        if not isinstance(d[k], dict):
            raise InputError(where, f"{f}.{k}", f"got {d[k]!r}", "a table")
    sweep = d["sweep"]
    for k, vals in sweep.items():
        if k not in WEIGHT_NAMES:
            raise InputError(where, f"{f}.sweep.{k}", "unknown objective weight", ", ".join(WEIGHT_NAMES))
        if not isinstance(vals, list) or not vals:
            raise InputError(where, f"{f}.sweep.{k}", f"got {vals!r}", "a non-empty list of weights >= 0")
        for v in vals:
            _num(where, f"{f}.sweep.{k}", v, 0.0)
    fig = d["figure"]
    if fig:
        if fig.get("kind") not in FIGURE_KINDS or not set(fig) <= {"kind", "title", "metrics", "log"}:
            raise InputError(where, f"{f}.figure", f"got {fig!r}", f"{{kind = {' | '.join(FIGURE_KINDS)}, title = '...', metrics = [...], log = false}}")
        if fig["kind"] == "weights" and not sweep:
            raise InputError(where, f"{f}.figure.kind", "'weights' needs a sweep", "add sweep = {energy = [...]}")
    return Group(name=name, variants=list(variants), sizes=[(int(a), int(b)) for a, b in sizes], seeds=list(seeds),
                 solvers=solvers, exclude=list(exclude),
                 time_limit_s=float(_num(where, f"{f}.time_limit_s", d["time_limit_s"], 0.0, positive=True)),
                 grace_s=float(_num(where, f"{f}.grace_s", d["grace_s"], 0.0)),
                 reference=ref, reference_solver=str(d["reference_solver"]),
                 reference_time_limit_s=float(_num(where, f"{f}.reference_time_limit_s", d["reference_time_limit_s"], 0.0, positive=True)),
                 reference_options=dict(d["reference_options"]),
                 epsilon=float(_num(where, f"{f}.epsilon", d["epsilon"], 0.0)),
                 overrides=dict(d["overrides"]), sweep={k: [float(x) for x in v] for k, v in sweep.items()}, figure=dict(fig))


def load_suite(name_or_path: str | os.PathLike) -> Suite:
    path = find_suite(name_or_path)
    where = str(path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise InputError(where, "<toml>", f"not valid TOML: {e}", "see docs/benchmarks.md for the suite format")
    return parse_suite(raw, path)


def parse_suite(raw: dict[str, Any], path: Path) -> Suite:
    where = str(path)
    bad = set(raw) - TOP_KEYS
    if bad:
        raise InputError(where, sorted(bad)[0], "unknown top-level key", ", ".join(sorted(TOP_KEYS)))
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict):
        raise InputError(where, "defaults", f"got {defaults!r}", "a table")
    bad = set(defaults) - (GROUP_KEYS - {"name"})
    if bad:
        raise InputError(where, f"defaults.{sorted(bad)[0]}", "unknown key", ", ".join(sorted(GROUP_KEYS - {'name'})))
    groups_raw = raw.get("group", [{}])
    if not isinstance(groups_raw, list) or not groups_raw:
        raise InputError(where, "group", f"got {groups_raw!r}", "one or more [[group]] tables")
    groups = []
    for i, g in enumerate(groups_raw):
        if not isinstance(g, dict):
            raise InputError(where, f"group[{i}]", f"got {g!r}", "a table")
        bad = set(g) - GROUP_KEYS
        if bad:
            raise InputError(where, f"group[{i}].{sorted(bad)[0]}", "unknown key", ", ".join(sorted(GROUP_KEYS)))
        groups.append(_group(where, g, defaults, i))
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise InputError(where, "group.name", f"duplicate group names {names}", "distinct names")
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise InputError(where, "name", f"got {name!r}", "a non-empty string")
    return Suite(name=name, description=str(raw.get("description", "")), path=path, groups=groups)
