"""Run any registered solver the same way and verify what it returns.

``solve(variant, instance, solver)`` -> :class:`~mecsplit.result.Result`. The framework, not the
plugin, times the run, records the trace (through :class:`Tracer` and the solve-event hooks), fills
provenance, and runs the independent evaluator on the returned solution. Checks (flags):

* ``infeasible_solution`` — the evaluator finds a constraint violated beyond tolerance;
* ``objective_mismatch`` — reported and evaluated objectives differ by more than 1e-6 relative;
* ``heuristic_claims_optimal`` / ``heuristic_claims_bound`` — a non-exact solver claimed a proof;
* ``bound_above_objective`` — an exact solver's bound exceeds a verified feasible objective.
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

from . import __version__
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
    opts = dict(spec.options)
    for k, v in (options or {}).items():
        if k not in spec.options:
            raise InputError("<option>", f"{spec.name}.{k}", "unknown solver option",
                             ", ".join(f"{n}={d!r}" for n, d in spec.options.items()) or "(this solver has no options)")
        d = spec.options[k]
        if d is not None and not isinstance(v, type(d)) and not (isinstance(d, float) and isinstance(v, int) and not isinstance(v, bool)):
            raise InputError("<option>", f"{spec.name}.{k}", f"got {v!r}", f"a {type(d).__name__} like {d!r}")
        opts[k] = float(v) if isinstance(d, float) else v
    return opts


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


def verify(variant, instance, spec: SolverSpec | None, status: Status, solution, objective, bound) -> tuple[dict, dict]:
    """The evaluator's verdict on a result (shared by ``solve`` and ``mecsplit check``)."""
    flags: list[str] = []
    metrics: dict[str, float] = {}
    ver: dict[str, Any] = {"feasible": None, "max_violation": None, "objective_evaluated": None,
                           "objective_agrees": None, "violations": {}, "flags": flags}
    if solution is not None:
        try:
            ev = evaluate(variant, instance, solution)
        except InputError as e:
            flags.append(f"malformed_solution: {e}")
            ev = None
        if ev is not None:
            metrics = ev.metrics
            agrees = objective is not None and math.isfinite(ev.objective) and \
                abs(ev.objective - objective) <= OBJECTIVE_RTOL * max(1.0, abs(ev.objective))
            ver.update(feasible=ev.feasible, max_violation=ev.max_violation, objective_evaluated=ev.objective,
                       objective_agrees=agrees, violations={k: v for k, v in ev.violations.items() if v > 0})
            if not ev.feasible and status != Status.INFEASIBLE:   # an infeasible claim may show the point it gave up on
                flags.append("infeasible_solution")
            if not agrees:
                flags.append("objective_mismatch")
            if bound is not None and ev.feasible and bound > ev.objective + OBJECTIVE_RTOL * max(1.0, abs(ev.objective)):
                flags.append("bound_above_objective")
    elif status in (Status.OPTIMAL, Status.FEASIBLE):
        flags.append("no_solution")
    if spec is not None and not spec.exact:
        if status == Status.OPTIMAL:
            flags.append("heuristic_claims_optimal")
        if bound is not None:
            flags.append("heuristic_claims_bound")
    ver["verdict"] = "ok" if not flags else "flagged"
    return ver, metrics
