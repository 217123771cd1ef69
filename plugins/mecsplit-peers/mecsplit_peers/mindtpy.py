"""Pyomo MindtPy outer approximation on any variant's model: HiGHS (``appsi_highs``) for the MILP main
problems, Ipopt for the NLP subproblems through mecsplit's ASL-free bridge (``mecsplit.ipopt`` takes over
Pyomo's ``cyipopt`` name when PyNumero's ASL is missing).

A heuristic here: OA cuts of nonconvex functions can cut off feasible points, so MindtPy's "lower bound"
is not valid (feasibility.md Q2 measured LB > UB on 4×2). MindtPy's LB/UB go to ``extra`` only.
"""

from __future__ import annotations

import io
import logging
import math
import time

import pyomo.environ as pyo
from pyomo.common.log import LoggingIntercept

from mecsplit import quiet
from mecsplit.result import Outcome, Status

from .common import model_objective, sync_epigraphs, verified_point



def solve_mindtpy(problem, options, tracer):
    import mecsplit.ipopt  # noqa: F401  registers cyipopt_direct and (without ASL) the ``cyipopt`` name
    from pyomo.contrib.mindtpy.MindtPy import MindtPySolver  # noqa: F401  (registers 'mindtpy')

    mecsplit.ipopt.register()
    strategy, init = options["strategy"], options["init_strategy"]
    m = problem.build_model()
    if problem.warm_start:
        from mecsplit.model import load_solution
        load_solution(m, problem.variant, problem.instance, problem.warm_start)
    kw = dict(strategy=strategy, init_strategy=init, mip_solver="appsi_highs", nlp_solver="cyipopt",
              iteration_limit=int(options["iteration_limit"]), add_no_good_cuts=bool(options["no_good_cuts"]),
              heuristic_nonconvex=bool(options["heuristic_nonconvex"]),
              absolute_bound_tolerance=1e-6, relative_bound_tolerance=float(options["rel_gap"]),
              nlp_solver_args={"options": {"print_level": 0, "tol": 1e-8}})
    if problem.time_limit_s is not None:
        kw["time_limit"] = max(1, int(math.floor(tracer.time_left())))
    t0 = time.perf_counter()
    extra = {"strategy": strategy, "init_strategy": init}
    buf, solver_log = io.StringIO(), []
    try:
        # Pyomo's warnings from inside MindtPy (e.g. a DEPRECATED transform argument) and what HiGHS prints
        # itself (appsi_highs adds cut rows with the console log on: "HighsSparseMatrix ... ignored") go to
        # extra, not to the terminal (unless --verbose)
        with LoggingIntercept(buf, "pyomo", level=logging.WARNING), quiet.silenced(solver_log):
            res = pyo.SolverFactory("mindtpy").solve(m, **kw)
    except Exception as e:  # MindtPy raises on some failed subproblems
        extra["mindtpy_error"] = f"{type(e).__name__}: {e}"
        extra["pyomo_log"] = buf.getvalue()[-2000:]
        extra["solver_log"] = "".join(solver_log)[-2000:]
        return Outcome(Status.ERROR, message=f"MindtPy failed: {type(e).__name__}: {e}", extra=extra)
    extra["pyomo_log"] = buf.getvalue()[-2000:]
    extra["solver_log"] = "".join(solver_log)[-2000:]
    extra.update(mindtpy_time_s=time.perf_counter() - t0,
                 termination=str(res.solver.termination_condition),
                 mindtpy_lb=_num(res.problem.lower_bound), mindtpy_ub=_num(res.problem.upper_bound),
                 iterations=_num(getattr(res.solver, "iterations", None)))
    if any(v.value is None for v in m.component_data_objects(pyo.Var, active=True)
           if v.name.startswith(("alpha", "chi"))):
        return Outcome(Status.INFEASIBLE if "infeasible" in extra["termination"] else Status.ERROR,
                       message=f"MindtPy returned no point ({extra['termination']})", extra=extra)
    sync_epigraphs(m)
    extra["model_objective"] = model_objective(m)
    sol, ev = verified_point(problem, m)
    extra["max_violation"] = ev.max_violation
    it = int(extra["iterations"] or 0)
    if not ev.feasible:   # a heuristic here: its violating point is kept for inspection, never called feasible
        return Outcome(Status.INFEASIBLE, solution=sol, objective=ev.objective, iterations=it,
                       message=f"no feasible point found: MindtPy's point violates a constraint by {ev.max_violation:.3g}",
                       extra=extra)
    tracer.incumbent(ev.objective, sol)
    st = Status.TIME_LIMIT if "maxTimeLimit" in extra["termination"] else Status.FEASIBLE
    return Outcome(st, solution=sol, objective=ev.objective, iterations=it,
                   message=f"MindtPy {strategy} ({extra['termination']}); a heuristic on this nonconvex model", extra=extra)


def _num(x):
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None
