"""Brute force for tiny instances: every assignment of the model's integer/binary variables, each
continuous NLP solved by Ipopt (``mecsplit.ipopt.solve_nlp``), the best verified point kept.

Generic: it reads the integer variables from the Pyomo model, whatever blocks the variant has.
Assignments that violate a constraint containing only integer variables (e.g. Σ_m χ[n,m] = 1) are
pruned during a depth-first walk before any NLP is solved. No bound: with the integers fixed, the NLP
is still nonconvex in the raw (p, b) variables, so Ipopt's optimum is local (``starts`` > 1 adds
random restarts drawn from ``problem.rng``).
"""

from __future__ import annotations

import math
import time

import pyomo.environ as pyo
from pyomo.core.expr.visitor import identify_variables

from mecsplit.errors import InputError
from mecsplit.result import Outcome, Status

from .common import integer_vars, sync_epigraphs

FEAS_TOL = 1e-9


def _domain(v) -> list[float]:
    lo, hi = v.bounds
    if v.is_binary():
        lo, hi = max(0, lo if lo is not None else 0), min(1, hi if hi is not None else 1)
    if lo is None or hi is None:
        raise InputError("<model>", v.name, "integer variable without finite bounds", "bounded integer variables")
    return [float(k) for k in range(int(math.ceil(lo - 1e-9)), int(math.floor(hi + 1e-9)) + 1)]


def _integer_only_constraints(m, ints):
    """Constraints whose variables are all integer: checkable as soon as those are assigned.
    Returns {position of the last of its vars in ``ints``: [constraint, ...]}."""
    pos = {id(v): i for i, v in enumerate(ints)}
    checks: dict[int, list] = {}
    for c in m.component_data_objects(pyo.Constraint, active=True, descend_into=True):
        vs = [v for v in identify_variables(c.body, include_fixed=False)]
        if vs and all(id(v) in pos for v in vs):
            checks.setdefault(max(pos[id(v)] for v in vs), []).append(c)
    return checks


def _satisfied(c) -> bool:
    body = pyo.value(c.body)
    lo, hi = pyo.value(c.lower), pyo.value(c.upper)
    return (lo is None or body >= lo - FEAS_TOL) and (hi is None or body <= hi + FEAS_TOL)


def assignments(m, max_assignments: int):
    """All integer assignments that pass the integer-only constraints (list of value tuples)."""
    ints = integer_vars(m)
    doms = [_domain(v) for v in ints]
    raw = math.prod(len(d) for d in doms)
    checks = _integer_only_constraints(m, ints)
    out: list[tuple[float, ...]] = []
    limit_walk = max(1_000_000, 100 * max_assignments)
    if raw > limit_walk:
        raise InputError("<option>", "enumerate.max_assignments",
                         f"{raw} raw integer assignments ({len(ints)} integer variables) — far too many to enumerate",
                         "a tiny instance (e.g. 2 users x 2 servers, few layers)")
    saved = [v.value for v in ints]
    cur: list[float] = []

    def walk(i):
        if i == len(ints):
            out.append(tuple(cur))
            if len(out) > max_assignments:
                raise InputError("<option>", "enumerate.max_assignments",
                                 f"more than {max_assignments} feasible integer assignments (raw product {raw})",
                                 "a smaller instance, or raise max_assignments")
            return
        for val in doms[i]:
            ints[i].set_value(val, skip_validation=True)
            if all(_satisfied(c) for c in checks.get(i, ())):
                cur.append(val)
                walk(i + 1)
                cur.pop()

    try:
        walk(0)
    finally:
        for v, s in zip(ints, saved):
            v.set_value(s, skip_validation=True)
    return ints, out, raw


def solve_enumerate(problem, options, tracer):
    from mecsplit.ipopt import solve_nlp

    from .common import verified_point

    max_a = int(options["max_assignments"])
    starts = int(options["starts"])
    m = problem.build_model()
    ints, combos, raw = assignments(m, max_a)
    conts = [v for v in m.component_data_objects(pyo.Var, active=True, descend_into=True, sort=True)
             if not v.fixed and not (v.is_integer() or v.is_binary())]
    x0 = [v.value for v in conts]
    for v in ints:
        v.fix()
    best = None
    n_nlp = n_ok = 0
    statuses: dict[str, int] = {}
    truncated = False
    ipopt_opts = {"tol": float(options["tol"]), "max_iter": int(options["max_iter"]), "print_level": 0}
    t_nlp = 0.0
    for combo in combos:
        for v, val in zip(ints, combo):
            v.set_value(val, skip_validation=True)
        for s in range(starts):
            if tracer.out_of_time():
                truncated = True
                break
            for v, val in zip(conts, x0):
                v.set_value(val, skip_validation=True)
            if s > 0:  # random restart inside the box (finite bounds only)
                for v in conts:
                    lo, hi = v.bounds
                    if lo is not None and hi is not None:
                        v.set_value(float(problem.rng.uniform(lo, hi)), skip_validation=True)
            t1 = time.perf_counter()
            r = solve_nlp(m, options=ipopt_opts)
            t_nlp += time.perf_counter() - t1
            n_nlp += 1
            statuses[r.status] = statuses.get(r.status, 0) + 1
            if r.status not in ("optimal", "max_iter", "time_limit"):
                continue
            sync_epigraphs(m)
            sol, ev = verified_point(problem, m)
            if not ev.feasible or not math.isfinite(ev.objective):
                continue
            n_ok += 1
            if best is None or ev.objective < best[0]:
                best = (ev.objective, sol, combo)
                tracer.incumbent(ev.objective, sol)
        tracer.iteration()
        if truncated:
            break
    extra = {"integer_vars": len(ints), "raw_assignments": raw, "assignments": len(combos), "nlp_solves": n_nlp,
             "verified_points": n_ok, "nlp_status": statuses, "nlp_time_s": t_nlp, "starts": starts}
    if best is None:
        st = Status.TIME_LIMIT if truncated else Status.INFEASIBLE
        return Outcome(st, iterations=len(combos), message="no verified feasible point", extra=extra)
    msg = f"best of {n_ok} verified points over {len(combos)} integer assignments"
    if truncated:
        return Outcome(Status.TIME_LIMIT, solution=best[1], objective=best[0], iterations=len(combos),
                       message="time limit reached before every assignment was solved; " + msg, extra=extra)
    return Outcome(Status.FEASIBLE, solution=best[1], objective=best[0], iterations=len(combos), message=msg, extra=extra)
