"""Helpers shared by the peer solvers: read a verified per-user solution out of a solved model."""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo


def integer_vars(m) -> list:
    """Every free (not fixed) integer or binary variable of the model, in a stable order."""
    out = []
    for v in m.component_data_objects(pyo.Var, active=True, descend_into=True, sort=True):
        if not v.fixed and (v.is_integer() or v.is_binary()):
            out.append(v)
    return out


def round_integers(m) -> float:
    """Snap integer/binary variables to the nearest integer; return the largest move."""
    worst = 0.0
    for v in integer_vars(m):
        if v.value is None:
            continue
        r = float(round(v.value))
        worst = max(worst, abs(r - v.value))
        v.set_value(r, skip_validation=True)
    return worst


def verified_point(problem, m):
    """(solution, evaluation) of the model's current values, integers rounded.

    The solution is what the framework verifies; the reported objective is the evaluator's value at
    that point, so it matches by construction when the point is feasible.
    """
    round_integers(m)
    sol = problem.extract(m)
    ints = {v.name for v in problem.variant.variables(problem.instance) if v.integer}
    for k in ints:
        if k in sol:
            sol[k] = [float(round(x)) for x in sol[k]]
    if "server" in sol:
        sol["server"] = [int(x) for x in sol["server"]]
    ev = problem.evaluate(sol)
    return sol, ev


def model_objective(m) -> float:
    import io

    from pyomo.common.log import LoggingIntercept

    try:
        with LoggingIntercept(io.StringIO(), "pyomo"):
            return float(pyo.value(m.obj))
    except (ValueError, ZeroDivisionError, OverflowError):
        return math.nan


def sync_epigraphs(m) -> None:
    """After loading a point: set τ (max_delay's epigraph) to its tight value, so value(m.obj) reads right."""
    from mecsplit.model import tighten_tau

    tighten_tau(m)


def as_list(x) -> list:
    return np.asarray(x).tolist()
