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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import schema
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

MAX_LIST = 1000      # items in any list of a suite (variants, sizes, solvers, sweep values)
MAX_SEEDS = 10_000   # seeds per group (a list or {count = N})
MAX_CELLS = 100_000  # cells per group, counted before anything is expanded
WHAT = "a suite TOML (docs/benchmarks.md)"


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
    """A suite given as a ``.toml`` path, or by name among :func:`available_suites`."""
    s = os.fspath(name_or_path)
    p = Path(s)
    if p.suffix == ".toml":
        if not schema.is_file(p):
            raise InputError(s, "SUITE", "no such file", "a suite name or a .toml path")
        return p
    suites = available_suites()
    if s not in suites:
        raise InputError("<option>", "SUITE", f"unknown suite {schema.describe(s)}", (", ".join(suites) or "(no suites found)") + ", or a .toml path")
    return suites[s]


def _strings(where: str, f: str, v: Any, allowed: str, min_len: int = 1) -> list[str]:
    v = [v] if isinstance(v, str) else v
    schema.list_of(where, f, v, MAX_LIST, allowed, min_len)
    for i, x in enumerate(v):
        schema.string(where, f"{f}[{i}]", x, allowed=allowed, max_len=1000)
    return list(v)


def _solvers(where: str, f: str, solvers: Any) -> list[SolverEntry] | str:
    if solvers == "*":
        return solvers
    allowed = '"*" or a list of names / {name=, options={}, label=}'
    schema.list_of(where, f, solvers, MAX_LIST, allowed)
    entries = []
    for j, s in enumerate(solvers):
        fj = f"{f}[{j}]"
        if isinstance(s, str):
            entries.append(SolverEntry(s))
            continue
        schema.table(where, fj, s, allowed)
        schema.known_keys(where, fj, s, {"name", "options", "label"})
        name = schema.string(where, f"{fj}.name", s.get("name"), allowed="a solver name", max_len=100)
        options = schema.finite_json(where, f"{fj}.options", schema.table(where, f"{fj}.options", s.get("options", {})))
        label = schema.string(where, f"{fj}.label", s.get("label", ""), allowed="a label of at most 100 characters", max_len=100)
        entries.append(SolverEntry(name, dict(options), label))
    labels = [e.label for e in entries]
    if len(set(labels)) != len(labels):
        raise InputError(where, f, f"duplicate labels {labels}", "distinct labels (set label= when a solver appears twice)")
    return entries


def _group(where: str, raw: dict[str, Any], defaults: dict[str, Any], idx: int) -> Group:
    d = {**DEFAULTS, **defaults, **raw}
    f = f"group[{idx}]"
    name = schema.name(where, f"{f}.name", d.get("name", f"group{idx}"))
    variants = _strings(where, f"{f}.variants", d["variants"], "a list of variant names or .toml paths")
    sizes = []
    for i, sz in enumerate(schema.list_of(where, f"{f}.sizes", d["sizes"], MAX_LIST, "a list of [users, servers] pairs, e.g. [[10, 3]]")):
        if not isinstance(sz, list) or len(sz) != 2:
            raise InputError(where, f"{f}.sizes[{i}]", f"got {schema.describe(sz)}", "a [users, servers] pair, e.g. [10, 3]")
        sizes.append(schema.sizes(where, sz[0], sz[1], f"{f}.sizes[{i}][0]", f"{f}.sizes[{i}][1]"))
    seeds = d["seeds"]
    if isinstance(seeds, dict):  # seeds = {count = 10} -> 1..10
        schema.known_keys(where, f"{f}.seeds", seeds, {"count"})
        seeds = list(range(1, schema.number(where, f"{f}.seeds.count", seeds.get("count"), lo=1, hi=MAX_SEEDS, integer=True) + 1))
    schema.list_of(where, f"{f}.seeds", seeds, MAX_SEEDS, "a list of integers >= 0, or {count = N}")
    seeds = [schema.seed(where, f"{f}.seeds[{i}]", x) for i, x in enumerate(seeds)]
    solvers = _solvers(where, f"{f}.solvers", d["solvers"])
    exclude = _strings(where, f"{f}.exclude", d["exclude"], "a list of solver names", min_len=0)
    ref = schema.string(where, f"{f}.reference", d["reference"], REFERENCE_POLICIES)
    ref_solver = schema.string(where, f"{f}.reference_solver", d["reference_solver"], allowed="a solver name", max_len=100)
    for k in ("overrides", "reference_options", "figure", "sweep"):
        schema.table(where, f"{f}.{k}", d[k])
    schema.finite_json(where, f"{f}.reference_options", d["reference_options"])
    schema.known_keys(where, f"{f}.sweep", d["sweep"], WEIGHT_NAMES, "unknown objective weight")
    sweep = {k: [float(schema.number(where, f"{f}.sweep.{k}[{i}]", v, lo=0.0))
                 for i, v in enumerate(schema.list_of(where, f"{f}.sweep.{k}", vals, MAX_LIST, "a list of weights >= 0"))]
             for k, vals in d["sweep"].items()}
    fig = d["figure"]
    if fig:
        if fig.get("kind") not in FIGURE_KINDS or not set(fig) <= {"kind", "title", "metrics", "log"}:
            raise InputError(where, f"{f}.figure", f"got {schema.describe(fig)}",
                             f"{{kind = {' | '.join(FIGURE_KINDS)}, title = '...', metrics = [...], log = false}}")
        if "title" in fig:
            schema.string(where, f"{f}.figure.title", fig["title"], allowed="a title of at most 200 characters", max_len=200)
        if "metrics" in fig:
            _strings(where, f"{f}.figure.metrics", fig["metrics"], "a list of metric names")
        if "log" in fig:
            schema.boolean(where, f"{f}.figure.log", fig["log"])
        if fig["kind"] == "weights" and not sweep:
            raise InputError(where, f"{f}.figure.kind", "'weights' needs a sweep", "add sweep = {energy = [...]}")
    n_points = max(1, sum(len(v) for v in sweep.values()))
    n_solvers = len(solvers) if solvers != "*" else 100  # "*": at most this many installed solvers
    n_cells = len(variants) * n_points * len(sizes) * len(seeds) * n_solvers
    if n_cells > MAX_CELLS:
        raise InputError(where, f, f"about {n_cells} cells (variants x sweep points x sizes x seeds x solvers)",
                         f"at most {MAX_CELLS} cells per group")
    time_s = dict(lo=0.0, lo_open=True, hi=schema.MAX_TIME_S, unit="s")
    return Group(name=name, variants=variants, sizes=sizes, seeds=seeds, solvers=solvers, exclude=exclude,
                 time_limit_s=float(schema.number(where, f"{f}.time_limit_s", d["time_limit_s"], **time_s)),
                 grace_s=float(schema.number(where, f"{f}.grace_s", d["grace_s"], lo=0.0, hi=schema.MAX_TIME_S, unit="s")),
                 reference=ref, reference_solver=ref_solver,
                 reference_time_limit_s=float(schema.number(where, f"{f}.reference_time_limit_s", d["reference_time_limit_s"], **time_s)),
                 reference_options=dict(d["reference_options"]),
                 epsilon=float(schema.number(where, f"{f}.epsilon", d["epsilon"], lo=0.0)),
                 overrides=dict(d["overrides"]), sweep=sweep, figure=dict(fig))


def variant_ref(suite: Suite, vname: str) -> str:
    """A variant named by a relative path is looked up next to the suite file first."""
    p = Path(vname)
    if (p.suffix == ".toml" or len(p.parts) > 1) and not p.is_absolute() and (Path(suite.path).parent / p).is_file():
        return str(Path(suite.path).parent / p)
    return vname


def _check_variants(suite: Suite, f: str, g: Group) -> None:
    """Every variant of the group loads with the group's overrides at every sweep point (cheap: no
    instance is generated), so `bench list` and `bench run` refuse a bad suite before any work."""
    from ..variant import deep_merge, load_variant

    where = str(suite.path)

    points = [{"objective": {"weights": {k: w}}} for k, ws in g.sweep.items() for w in ws] or [{}]
    for j, vname in enumerate(g.variants):
        for pt in points:
            try:
                load_variant(variant_ref(suite, vname), overrides=deep_merge(g.overrides, pt) or None)
            except InputError as e:
                raise InputError(where, f"{f}.variants[{j}]", f"variant {schema.describe(vname)} with the group's "
                                 f"overrides: {e.where}: field '{e.field}': {e.problem}", e.allowed) from None


def load_suite(name_or_path: str | os.PathLike) -> Suite:
    path = find_suite(name_or_path)
    return parse_suite(schema.read_toml(path, WHAT), path)


def parse_suite(raw: dict[str, Any], path: Path) -> Suite:
    where = str(path)
    bad = set(raw) - TOP_KEYS
    if bad:
        raise InputError(where, sorted(bad)[0], "unknown top-level key", ", ".join(sorted(TOP_KEYS)))
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict):
        raise InputError(where, "defaults", f"got {schema.describe(defaults)}", "a table")
    bad = set(defaults) - (GROUP_KEYS - {"name"})
    if bad:
        raise InputError(where, f"defaults.{sorted(bad)[0]}", "unknown key", ", ".join(sorted(GROUP_KEYS - {'name'})))
    groups_raw = raw.get("group", [{}])
    schema.list_of(where, "group", groups_raw, MAX_LIST, "one or more [[group]] tables")
    groups = []
    for i, g in enumerate(groups_raw):
        if not isinstance(g, dict):
            raise InputError(where, f"group[{i}]", f"got {schema.describe(g)}", "a table")
        bad = set(g) - GROUP_KEYS
        if bad:
            raise InputError(where, f"group[{i}].{sorted(bad)[0]}", "unknown key", ", ".join(sorted(GROUP_KEYS)))
        groups.append(_group(where, g, defaults, i))
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise InputError(where, "group.name", f"duplicate group names {names}", "distinct names")
    name = schema.name(where, "name", raw.get("name", path.stem))  # becomes a folder of the report
    description = schema.string(where, "description", raw.get("description", ""), allowed="a one-line string")
    suite = Suite(name=name, description=description, path=path, groups=groups)
    for i, g in enumerate(groups):
        _check_variants(suite, f"group[{i}]", g)
    return suite
