"""Run any registered solver the same way and verify what it returns.

``solve(variant, instance, solver)`` -> :class:`~mecsplit.result.Result`. The framework, not the
plugin, times the run, records the trace (through :class:`Tracer` and the solve-event hooks), fills
provenance, and runs the independent evaluator on the returned solution. Checks (flags):

* ``infeasible_solution`` — the evaluator finds a constraint violated beyond tolerance;
* ``objective_mismatch`` — reported and evaluated objectives differ by more than
  ``OBJECTIVE_RTOL`` (1e-6) relative, with an absolute floor of 1e-12 x the objective's scale (its
  value at the instance's reference solution), so an objective of 1e-8 is checked as tightly as one of 1;
* ``heuristic_claims_optimal`` / ``heuristic_claims_bound`` — a non-exact solver claimed a proof;
* ``optimal_without_bound`` / ``optimal_gap_open`` — ``optimal`` needs a finite bound within the
  solver's ``rel_gap`` option (default ``OPTIMAL_RTOL``) of the evaluated objective;
* ``bound_above_objective`` — an exact solver's bound exceeds a verified feasible objective;
* ``bound_not_a_number`` — a NaN bound.

:func:`check_result` (``mecsplit check``) re-derives the rest from the variant and instance alone:
the result's instance hash, variant structure, objective, size, gap and metrics must match, and the
solver named in its provenance must be an installed exact solver for an ``optimal`` status or a
bound to be accepted (``optimal_claim_unverifiable`` / ``bound_claim_unverifiable`` otherwise).
"""

from __future__ import annotations

import functools
import math
import platform
import subprocess
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, schema
from .errors import InputError
from .evaluate import OBJECTIVE_RTOL, evaluate
from .plugins import SolverSpec, get_manager
from .result import Outcome, Result, Status, relative_gap


@dataclass
class RunInfo:
    solver: str
    variant: str
    instance_hash: str
    options: dict[str, Any]


class Tracer:
    """Handed to ``solve``: report incumbents and bounds as they are found; ask how much time is left."""

    def __init__(self, run: RunInfo, time_limit_s: float | None, hook):
        self.run, self.time_limit_s, self._hook = run, time_limit_s, hook
        self.t0 = time.perf_counter()
        self.trace: list[dict[str, float | None]] = []
        self.best_objective: float | None = None
        self.best_solution: dict[str, list] | None = None
        self.best_bound: float | None = None
        self.iterations = 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def time_left(self) -> float:
        return math.inf if self.time_limit_s is None else self.time_limit_s - self.elapsed()

    def out_of_time(self) -> bool:
        return self.time_left() <= 0

    def iteration(self, k: int | None = None) -> None:
        self.iterations = self.iterations + 1 if k is None else k

    def incumbent(self, objective: float, solution: dict[str, Any] | None = None) -> None:
        """A new feasible point (only recorded when it improves)."""
        if self.best_objective is not None and objective >= self.best_objective:
            return
        self.best_objective = float(objective)
        if solution is not None:
            self.best_solution = {k: np.asarray(v).tolist() for k, v in solution.items()}
        t = self.elapsed()
        self.trace.append({"t_s": t, "incumbent": self.best_objective, "bound": self.best_bound, "iteration": self.iterations})
        self._hook.incumbent_found(run=self.run, t_s=t, objective=self.best_objective)

    def bound(self, bound: float) -> None:
        """A new valid lower bound (exact solvers only)."""
        if self.best_bound is not None and bound <= self.best_bound:
            return
        self.best_bound = float(bound)
        t = self.elapsed()
        self.trace.append({"t_s": t, "incumbent": self.best_objective, "bound": self.best_bound, "iteration": self.iterations})
        self._hook.bound_improved(run=self.run, t_s=t, bound=self.best_bound)


@dataclass
class Problem:
    """What a solver receives: the variant, the instance and helpers that keep it on the one path."""

    variant: Any
    instance: Any
    seed: int = 0
    time_limit_s: float | None = None
    warm_start: dict[str, list] | None = None
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng([self.seed, 7919])

    def build_model(self, relax_integers: bool = False):
        from .model import build_model

        return build_model(self.variant, self.instance, relax_integers)

    def extract(self, m) -> dict[str, list[float]]:
        from .model import extract_solution

        return extract_solution(m, self.variant, self.instance)

    def evaluate(self, solution):
        return evaluate(self.variant, self.instance, solution)


def resolve_options(spec: SolverSpec, options: dict[str, Any] | None) -> dict[str, Any]:
    """The solver's defaults overridden by ``options``, each checked against its type and domain."""
    opts = dict(spec.options)
    for k, v in (options or {}).items():
        if k not in spec.options:
            raise InputError("<option>", f"{spec.name}.{k}", "unknown solver option",
                             ", ".join(f"{n}={d!r}" for n, d in spec.options.items()) or "(this solver has no options)")
        opts[k] = check_option(spec, k, v)
    return opts


def check_option(spec: SolverSpec, k: str, v: Any) -> Any:
    """``v`` as option ``k`` of ``spec``: the type of its default, within its declared domain (a tuple
    of choices or :func:`schema.number` bounds); numbers without a declared domain must be ≥ 0."""
    d, dom, field = spec.options[k], spec.domains.get(k), f"{spec.name}.{k}"
    schema.finite_json("<option>", field, v)
    if isinstance(dom, (tuple, list, set, frozenset)):
        if v not in dom or type(v) is not type(d):   # type: True == 1 must not pass for a string choice
            raise InputError("<option>", field, f"got {v!r}", " | ".join(map(repr, dom)))
        return v
    if isinstance(d, (int, float)) and not isinstance(d, bool):
        x = schema.number("<option>", field, v, **({"lo": 0} if dom is None else dom), integer=isinstance(d, int))
        return float(x) if isinstance(d, float) else x
    if d is not None and not isinstance(v, type(d)):
        raise InputError("<option>", field, f"got {v!r}", f"a {type(d).__name__} like {d!r}")
    return v


def solve(variant, instance, solver: str, options: dict[str, Any] | None = None, time_limit_s: float | None = None,
          seed: int = 0, warm_start: dict[str, list] | None = None) -> Result:
    mgr = get_manager()
    spec = mgr.solver(solver)
    reason = spec.why_not(variant)
    if reason is not None:
        raise InputError("<option>", "solver", f"{solver!r} cannot take variant {variant.name!r}: {reason}",
                         ", ".join(n for n, s in sorted(mgr.solvers.items()) if s.supports(variant)) or "(no installed solver)")
    why = mgr.unavailable(spec)
    if why:
        raise InputError("<option>", "solver", f"{solver!r} is not available: {why[0]}", why[1])
    opts = resolve_options(spec, options)
    run = RunInfo(solver, variant.name, instance.hash, opts)
    tracer = Tracer(run, time_limit_s, mgr.hook)
    mgr.hook.solve_started(run=run)
    problem = Problem(variant, instance, seed, time_limit_s, warm_start)
    try:
        out = spec.solve(problem, opts, tracer)
        if not isinstance(out, Outcome):
            raise TypeError(f"solver {solver!r} returned {type(out).__name__}, not mecsplit.result.Outcome")
    except InputError:  # a plugin's own validation of the input: one clear line, exit 2
        raise
    except Exception as e:  # report, with whatever incumbent and bound were traced
        out = Outcome(Status.ERROR, tracer.best_solution, tracer.best_objective, tracer.best_bound, tracer.iterations,
                      f"{type(e).__name__}: {e}", {"traceback": traceback.format_exc(limit=8)})
    wall = tracer.elapsed()
    result = finish(variant, instance, spec, out, wall, tracer, opts, seed)
    mgr.hook.solve_finished(run=run, result=result)
    return result


def finish(variant, instance, spec: SolverSpec, out: Outcome, wall: float, tracer: Tracer, opts, seed) -> Result:
    status = Status(out.status)
    if out.solution is None and tracer.best_solution is not None and status in (Status.TIME_LIMIT, Status.ERROR):
        out.solution, out.objective = tracer.best_solution, tracer.best_objective
    bound = out.bound if out.bound is not None else tracer.best_bound
    verification, metrics = verify(variant, instance, spec, status, out.solution, out.objective, bound)
    checked = set(spec.capabilities.only_checked(variant))
    violated = {k.removeprefix("constraints.") for k in verification["violations"]}
    if status == Status.FEASIBLE and not verification["feasible"] and violated and violated <= checked:
        # a heuristic that does not model these constraints found no point meeting them (capabilities.checked)
        status = Status.INFEASIBLE
        out.message = (f"no feasible point found: the point found violates {', '.join(sorted(violated))} "
                       f"(taken but not modelled by {spec.name}); the point is kept for inspection")
        verification, metrics = verify(variant, instance, spec, status, out.solution, out.objective, bound)
    if tracer.trace and tracer.trace[-1].get("incumbent") != out.objective and out.objective is not None:
        tracer.trace.append({"t_s": wall, "incumbent": out.objective, "bound": bound, "iteration": out.iterations})
    prov = {"solver": spec.name, "solver_version": spec.version, "plugin": spec.plugin, "exact": spec.exact,
            "options": opts, "seed": seed, "instance_hash": instance.hash, "instance_seed": instance.seed,
            "variant": variant.name, "variant_structure": variant.structure_hash(),
            "objective_spec": {"kind": variant.objective.kind, "weights": dict(variant.objective.weights)},
            "size": [instance.N, instance.M], "mecsplit_version": __version__, **code_revision(),
            "python": platform.python_version(), "platform": platform.platform()}
    return Result(status=status, objective=out.objective, bound=bound, gap=relative_gap(out.objective, bound),
                  wall_time_s=wall, iterations=out.iterations or tracer.iterations, solution=out.solution,
                  metrics=metrics, trace=tracer.trace, provenance=prov, verification=verification,
                  message=out.message, extra=out.extra)


@functools.cache
def code_revision() -> dict[str, Any]:
    """``git_commit`` and ``git_dirty`` (tracked files changed) of the checkout the running mecsplit
    package comes from; both None when it is not a git checkout's tracked file (e.g. a wheel install)."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    if not git("ls-files", "--", "__init__.py"):
        return {"git_commit": None, "git_dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": git("rev-parse", "HEAD"), "git_dirty": None if status is None else bool(status)}


OPTIMAL_RTOL = 1e-4      # gap an ``optimal`` claim may leave when the solver has no rel_gap option
OBJECTIVE_FLOOR = 1e-6   # x the objective's scale: below this |objective| the tolerance stops shrinking


def objective_scale(variant, instance) -> float:
    """|objective| at the instance's reference solution (spec §1.11 [I]) — the size of a typical
    objective value, re-derived from variant and instance alone (1.0 if not finite or zero)."""
    ref = {k: v.tolist() for k, v in instance.reference_solution().items()}
    try:
        val = abs(evaluate(variant, instance, ref).objective)
    except InputError:
        return 1.0
    return val if math.isfinite(val) and val > 0 else 1.0


def objective_tolerance(value: float, scale: float) -> float:
    return OBJECTIVE_RTOL * max(abs(value), OBJECTIVE_FLOOR * scale)


def verify(variant, instance, spec: SolverSpec | None, status: Status, solution, objective, bound,
           rel_gap: float | None = None) -> tuple[dict, dict]:
    """The evaluator's verdict on a result (shared by ``solve`` and ``mecsplit check``)."""
    flags: list[str] = []
    metrics: dict[str, float] = {}
    ver: dict[str, Any] = {"feasible": None, "max_violation": None, "objective_evaluated": None,
                           "objective_agrees": None, "violations": {}, "flags": flags}
    if bound is not None and math.isnan(bound):
        flags.append("bound_not_a_number")
        bound = None
    if solution is not None:
        try:
            ev = evaluate(variant, instance, solution)
        except InputError as e:
            flags.append(f"malformed_solution: {e}")
            ev = None
        if ev is not None:
            metrics = ev.metrics
            tol = objective_tolerance(ev.objective, objective_scale(variant, instance)) if math.isfinite(ev.objective) else 0.0
            agrees = objective is not None and math.isfinite(ev.objective) and abs(ev.objective - objective) <= tol
            ver.update(feasible=ev.feasible, max_violation=ev.max_violation, objective_evaluated=ev.objective,
                       objective_agrees=agrees, violations={k: v for k, v in ev.violations.items() if v > 0})
            if not ev.feasible and status != Status.INFEASIBLE:   # an infeasible claim may show the point it gave up on
                flags.append("infeasible_solution")
            if not agrees:
                flags.append("objective_mismatch")
            if bound is not None and ev.feasible and bound > ev.objective + tol:
                flags.append("bound_above_objective")
            if status == Status.OPTIMAL and bound is not None and math.isfinite(bound) and agrees:
                allowed = (OPTIMAL_RTOL if rel_gap is None else rel_gap) * abs(ev.objective) + tol
                if ev.objective - bound > allowed:
                    flags.append("optimal_gap_open")
    elif status in (Status.OPTIMAL, Status.FEASIBLE):
        flags.append("no_solution")
    if status == Status.OPTIMAL and (bound is None or not math.isfinite(bound)):
        flags.append("optimal_without_bound")
    if spec is not None and not spec.exact:
        if status == Status.OPTIMAL:
            flags.append("heuristic_claims_optimal")
        if bound is not None:
            flags.append("heuristic_claims_bound")
    ver["verdict"] = "ok" if not flags else "flagged"
    return ver, metrics


RESULT_WHAT = "a result JSON written by 'mecsplit solve -o' (docs/formats.md)"
RESULT_KEYS = {"schema", "status", "objective", "bound", "gap", "wall_time_s", "iterations", "solution", "metrics",
               "trace", "provenance", "verification", "message", "extra"}
METRICS_RTOL = 1e-6


def _opt_number(where: str, field: str, v: Any, **kw) -> float | None:
    return None if v is None else float(schema.number(where, field, v, **kw))


def check_result(variant, instance, d: Any, where: str) -> tuple[dict, Any]:
    """``mecsplit check``: validate a result file (InputError if malformed) and verify every claim it
    makes against what can be re-derived from ``variant`` and ``instance``. Returns the verdict and
    the evaluation of its solution (None without one)."""
    from .result import SCHEMA, relative_gap

    schema.table(where, "<root>", d, RESULT_WHAT)
    schema.known_keys(where, "", d, RESULT_KEYS)
    if "schema" in d and d["schema"] != SCHEMA:
        raise InputError(where, "schema", f"got {schema.describe(d['schema'])}", repr(SCHEMA))
    status = Status(schema.string(where, "status", d.get("status", "feasible"), [s.value for s in Status]))
    if "solution" not in d:
        raise InputError(where, "solution", "missing", "a 'solution' table (null only for infeasible / time_limit / error)")
    solution = d["solution"]
    if solution is None and status in (Status.OPTIMAL, Status.FEASIBLE):
        raise InputError(where, "solution", f"null with status {status.value!r}", "a solution table")
    if isinstance(solution, dict):  # a variable the variant does not have: a solution of another problem
        schema.known_keys(where, "solution", solution, [v.name for v in variant.variables(instance)],
                          "not a decision variable of the variant")
        for k, values in solution.items():  # numbers only: true or "1.5" would pass numpy's float conversion
            schema.numeric_array(where, f"solution.{k}", values, (instance.N,))
    ev = None if solution is None else evaluate(variant, instance, solution, where=where)
    objective = _opt_number(where, "objective", d.get("objective"))
    bound = _opt_number(where, "bound", d.get("bound"))
    gap = _opt_number(where, "gap", d.get("gap"), lo=0.0)
    for k in ("wall_time_s", "iterations"):
        _opt_number(where, k, d.get(k), lo=0.0, integer=k == "iterations")
    for k, kind in (("message", str), ("trace", list), ("extra", dict), ("metrics", dict), ("provenance", dict),
                    ("verification", dict)):
        if d.get(k) is not None and not isinstance(d[k], kind):
            raise InputError(where, k, f"got {schema.describe(d[k])}", f"a {kind.__name__} or null")
    prov = d.get("provenance") or {}
    for k, kind in (("solver", str), ("exact", bool), ("instance_hash", str), ("variant_structure", str),
                    ("objective_spec", dict), ("size", list), ("options", dict)):
        if prov.get(k) is not None and not isinstance(prov[k], kind):
            raise InputError(where, f"provenance.{k}", f"got {schema.describe(prov[k])}", f"a {kind.__name__} or null")
    opts = prov.get("options") or {}
    rel_gap = opts.get("rel_gap")
    rel_gap = float(rel_gap) if isinstance(rel_gap, (int, float)) and not isinstance(rel_gap, bool) and 0 <= rel_gap < 1 else None
    spec = get_manager().solvers.get(prov.get("solver")) if isinstance(prov.get("solver"), str) else None
    ver, _ = verify(variant, instance, spec, status, solution, objective, bound, rel_gap)
    flags = ver["flags"]
    if spec is None and status == Status.OPTIMAL:
        flags.append("optimal_claim_unverifiable")  # no installed exact solver stands behind it
    if spec is None and bound is not None:
        flags.append("bound_claim_unverifiable")
    if spec is not None and isinstance(prov.get("exact"), bool) and prov["exact"] != spec.exact:
        flags.append("provenance_exact_mismatch")
    claims = {"instance_hash": instance.hash, "variant_structure": variant.structure_hash(),
              "objective_spec": {"kind": variant.objective.kind, "weights": dict(variant.objective.weights)},
              "size": [instance.N, instance.M]}
    for k, actual in claims.items():
        if k in prov and not schema.same_value(prov[k], actual):
            flags.append(f"{k}_mismatch")
    if gap is not None and not (objective is not None and bound is not None and
                                abs(gap - relative_gap(objective, bound)) <= 1e-9 * max(1.0, gap)):
        flags.append("gap_mismatch")
    if ev is not None:
        for k, claimed in (d.get("metrics") or {}).items():
            actual = ev.metrics.get(k)
            if actual is None or not math.isfinite(actual):
                continue
            if isinstance(claimed, bool) or not isinstance(claimed, (int, float)) or \
                    abs(claimed - actual) > METRICS_RTOL * max(abs(actual), 1e-300):
                flags.append("metrics_mismatch")
                break
    ver["verdict"] = "ok" if not flags else "flagged"
    return ver, ev
