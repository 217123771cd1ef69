"""SCIP through Pyomo's ``scip_direct`` (pyomo.contrib.solver) on any variant's Pyomo model.

Always ``display/verblevel = 0``: Pyomo runs ``optimize()`` under ``capture_output(capture_fd=True)``
while holding the GIL, so with SCIP's log on the pipe fills and SCIP stalls 100–300 s past its time
limit (feasibility.md Q3). Incumbent and dual bound are reported through the tracer during the solve
(a SCIP event handler on BESTSOLFOUND / DUALBOUNDIMPROVED) and at the end.

Feasibility tolerance (option ``feastol``, SCIP ``numerics/feastol``): 1e-8 by default instead of SCIP's 1e-6.
Measured with 1e-6: on ``sft-2025`` 2x1 SCIP certified 0.402047 while 0.399651 is verified feasible, and on
``hardware-2024`` 2x1 it scored a point with p = -2.4e-10 W at 2.0247 (true optimum 2.666108); with 1e-8 both
come out right (docs/peers.md), at up to ~2x the time on the instances that were already right.

Formulations (option ``formulation``):

* ``raw`` — the model exactly as ``problem.build_model()`` builds it (Pyomo adds one epigraph variable
  for the nonlinear objective). SCIP's bound is a bound on ``m.obj``, i.e. on the evaluator's objective.
* ``perspective`` — the same optimisation problem written for SCIP: an explicit rate variable
  ``r[n,m] ≤ b·log2(1 + g·p/b)`` (the perspective of the concave ``log2(1+g·p)``) replaces the rate
  expression, bounded by its values at the box corners (r is increasing in p and b), and every nonlinear
  summand of a weighted-sum objective gets its own epigraph variable ``t_i ≥ term_i ≥ 0``. Replacing
  ``r = rate`` by ``r ≤ rate`` is exact because the rate enters only the upload energy ``p·s/r`` and
  delay ``s/r`` (decreasing in r, with nonnegative weights): any point with slack is dominated by raising
  r to the rate. So the optimum and every valid bound are the same as the raw model's. Only variants
  whose uplink owns its terms (``upload != "external"``) are accepted.
"""

from __future__ import annotations

import math
import time

import pyomo.environ as pyo

from mecsplit.errors import InputError
from mecsplit.result import Outcome, Status

from .common import model_objective, sync_epigraphs, verified_point

LN2 = math.log(2.0)
# The evaluator's objective at SCIP's point (moved into the bounds) may exceed SCIP's own score by at most
# this relative tolerance, else SCIP's claims are dropped. SCIP's feasibility tolerance (1e-6 on
# constraints such as r <= rate) alone explains differences up to ~1e-5.
TRUST_RTOL = 1e-4


# --- reformulation -----------------------------------------------------------------------------------
def apply_perspective(m, problem) -> dict:
    """Rewrite ``m`` in place (see module doc). Returns counts for the result's ``extra``."""
    v, inst = problem.variant, problem.instance
    if inst.T > 1:
        raise InputError("<option>", "scip.formulation", f"'perspective' is for the static channel (variant {v.name!r} "
                         f"has generator.slots = {inst.T})", "'raw'")
    if not (v.has_block("uplink") and hasattr(m, "rate")):
        raise InputError("<option>", "scip.formulation", f"'perspective' needs the uplink block (variant {v.name!r} has none)",
                         "'raw'")
    up = inst.block("uplink")
    if str(up.get("upload", "")) == "external" or _uplink_param(v, "upload") == "external":
        raise InputError("<option>", "scip.formulation",
                         f"'perspective' is only exact when the uplink block owns the rate terms (variant {v.name!r} has upload = 'external')",
                         "'raw'")
    a = up["snr_per_W_MHz"]

    def rate_at(n, j, p, b):
        return b * math.log1p(a[n, j] * p / b) / LN2

    r_lo, ub = _rate_floor(problem)

    def bounds(m_, n, j):
        plo, phi = m.p[n].bounds
        blo, bhi = m.b[n, j].bounds
        hi = rate_at(n, j, phi, bhi)
        return (min(rate_at(n, j, plo, blo), hi), hi)

    m.peer_r = pyo.Var(m.U, m.S, bounds=bounds, initialize=lambda m_, n, j: min(max(_safe_value(m.rate[n, j]), bounds(m_, n, j)[0]), bounds(m_, n, j)[1]))
    m.peer_rate_def = pyo.Constraint(
        m.U, m.S, rule=lambda m_, n, j: m.peer_r[n, j] <= m.b[n, j] * pyo.log(1 + float(a[n, j]) * m.p[n] / m.b[n, j]) / LN2)
    if ub is not None and hasattr(m, "chi"):
        # only on the user's own server (χ = 1): the shared p[n] must not be forced up by far servers
        m.peer_rate_floor = pyo.Constraint(
            m.U, m.S, rule=lambda m_, n, j: m.peer_r[n, j] >= float(r_lo[n]) * m.chi[n, j])
    for n in m.U:
        for j in m.S:
            m.rate[n, j].set_value(m.peer_r[n, j])
    n_epi = 0
    if v.objective.kind == "weighted_sum":
        expr = m.obj.expr
        terms = list(expr.args) if type(expr).__name__ in ("SumExpression", "LinearExpression", "NPV_SumExpression") else [expr]
        lin, nonlin = [], []
        for t in terms:
            (lin if t.polynomial_degree() in (0, 1) else nonlin).append(t)
        if len(nonlin) > 0:
            m.peer_T = pyo.RangeSet(0, len(nonlin) - 1)
            m.peer_t = pyo.Var(m.peer_T, bounds=(0, None), initialize=lambda m_, i: max(0.0, _safe_value(nonlin[i])))
            m.peer_epi = pyo.Constraint(m.peer_T, rule=lambda m_, i: nonlin[i] <= m.peer_t[i])
            m.obj.deactivate()
            m.peer_obj = pyo.Objective(expr=sum(m.peer_t[i] for i in m.peer_T) + sum(lin))
            n_epi = len(nonlin)
    return {"rate_vars": len(m.U) * len(m.S), "epigraph_vars": n_epi, "rate_floor_from_ub": ub,
            "rate_floor_min": float(min(r_lo)) if len(r_lo) else None}


def _rate_floor(problem):
    """Optimality-based lower bound on every user's rate (Mbit/s), valid for every point at least as good
    as a known feasible one (objective ≤ UB): with the uplink delay in the objective, ω_t·s_n/r_n ≤ UB for a
    weighted sum of nonnegative terms, and s_n/r_n ≤ delay_n ≤ τ ≤ UB for max_delay — imposed as
    r[n,m] ≥ r_lo[n]·χ[n,m] (the floor holds on the user's own server only). UB is the evaluator's
    value at the instance's reference point (or the warm start). The optimum and any bound below UB are
    unchanged; it keeps SCIP away from r ≈ 0, where s/r blows up and its tolerances mislead it."""
    import numpy as np

    v, inst = problem.variant, problem.instance
    zero = np.zeros(inst.N)
    if not _uplink_param(v, "delay"):
        return zero, None
    cands = [inst.reference_solution()] + ([problem.warm_start] if problem.warm_start else [])
    ub = None
    for c in cands:
        try:
            ev = problem.evaluate(c)
        except Exception:  # noqa: BLE001 - a malformed warm start just gives no UB
            continue
        if ev.feasible and math.isfinite(ev.objective) and ev.objective > 0:
            ub = ev.objective if ub is None else min(ub, ev.objective)
    if ub is None:
        return zero, None
    s = np.asarray(inst.block("uplink")["upload_Mbit"], float)
    if v.objective.kind == "weighted_sum":
        w = v.objective.omega(inst)["delay"]
        if w <= 0 or any(wt < 0 for wt in v.objective.omega(inst).values()):
            return zero, None
        return w * s / ub, ub
    if v.objective.kind == "max_delay":
        return s / ub, ub
    return zero, None


def _uplink_param(v, name):
    for b in v.blocks:
        if b.name == "uplink":
            return b.p.get(name)
    return None


def _safe_value(e) -> float:
    try:
        return float(pyo.value(e))
    except (ValueError, ZeroDivisionError, OverflowError):
        return 0.0


def clip_to_bounds(m) -> float:
    """Move every variable into its bounds (SCIP accepts bound violations up to its feasibility
    tolerance); return the largest move."""
    worst = 0.0
    for x in m.component_data_objects(pyo.Var, active=True, descend_into=True):
        if x.value is None or x.fixed:
            continue
        lo, hi = x.bounds
        y = x.value
        if lo is not None and y < lo:
            y = lo
        if hi is not None and y > hi:
            y = hi
        if y != x.value:
            worst = max(worst, abs(y - x.value))
            x.set_value(y, skip_validation=True)
    return worst


def polish(problem, m):
    """Fix the (rounded) integer variables, restart the continuous ones from the model's initial values
    and solve the NLP with Ipopt; return the verified (solution, evaluation) or (None, None)."""
    try:
        from mecsplit.ipopt import solve_nlp
    except ImportError:
        return None, None
    from .common import integer_vars, round_integers

    round_integers(m)
    ints = integer_vars(m)
    init = problem.build_model()
    for x in m.component_data_objects(pyo.Var, active=True, descend_into=True):
        if x.fixed or x.is_integer() or x.is_binary():
            continue
        x0 = init.find_component(x.name)
        if x0 is not None and x0.value is not None:
            x.set_value(x0.value, skip_validation=True)
    for x in ints:
        x.fix()
    try:
        r = solve_nlp(m, options={"print_level": 0, "tol": 1e-9})
    except Exception:  # noqa: BLE001 - a failed polish just means no point
        return None, None
    finally:
        for x in ints:
            x.unfix()
    if r.status not in ("optimal", "max_iter"):
        return None, None
    sync_epigraphs(m)
    return verified_point(problem, m)


# --- the solver ---------------------------------------------------------------------------------------
def _scip_class():
    import pyomo.environ  # noqa: F401  (the new-API factory is empty until pyomo.environ is imported)
    from pyomo.contrib.solver.solvers.scip.scip_direct import ScipDirect

    class TracedScip(ScipDirect):
        """``scip_direct`` plus an event handler that forwards incumbents and dual bounds to the tracer."""

        tracer = None
        log: list
        live_bounds = True
        deadline = None   # time.perf_counter() after which the event handler interrupts SCIP
        watchdog: dict

        def _create_solver_model(self, model, config):
            out = super()._create_solver_model(model, config)
            if self.tracer is not None:
                _attach_events(out[0], self.tracer, self.log, self.live_bounds, self.deadline, self.watchdog)
            return out

    return TracedScip


def _attach_events(scip_model, tracer, log, live_bounds=True, deadline=None, watchdog=None):
    from pyscipopt import SCIP_EVENTTYPE, Eventhdlr

    class Events(Eventhdlr):
        def eventinit(self):
            self.model.catchEvent(SCIP_EVENTTYPE.BESTSOLFOUND, self)
            self.model.catchEvent(SCIP_EVENTTYPE.DUALBOUNDIMPROVED, self)
            if deadline is not None:
                self.model.catchEvent(SCIP_EVENTTYPE.NODESOLVED, self)

        def eventexit(self):
            self.model.dropEvent(SCIP_EVENTTYPE.BESTSOLFOUND, self)
            self.model.dropEvent(SCIP_EVENTTYPE.DUALBOUNDIMPROVED, self)
            if deadline is not None:
                self.model.dropEvent(SCIP_EVENTTYPE.NODESOLVED, self)

        def eventexec(self, event):
            mdl = self.model
            et = event.getType()
            if deadline is not None and time.perf_counter() > deadline and not watchdog["fired"]:
                watchdog["fired"] = True  # SCIP overran limits/time (seen: > 60 s past it); stop it here
                log.append(("watchdog", mdl.getSolvingTime(), None))
                mdl.interruptSolve()
            if et == SCIP_EVENTTYPE.BESTSOLFOUND:
                pb = mdl.getPrimalbound()
                if math.isfinite(pb) and abs(pb) < mdl.infinity():
                    log.append(("incumbent", mdl.getSolvingTime(), pb))
                    tracer.incumbent(pb)
            elif et == SCIP_EVENTTYPE.DUALBOUNDIMPROVED:
                db = mdl.getDualbound()
                if math.isfinite(db) and abs(db) < mdl.infinity():
                    log.append(("bound", mdl.getSolvingTime(), db))
                    if live_bounds:
                        tracer.bound(db)

    scip_model.includeEventhdlr(Events(), "mecsplit_trace", "forward incumbent/bound to the mecsplit tracer")


def solve_scip(problem, options, tracer):
    form = options["formulation"]
    rel_gap = float(options["rel_gap"])
    t0 = time.perf_counter()
    m = problem.build_model()
    extra = {"formulation": form, "feastol": float(options["feastol"])}
    if form == "perspective":
        extra.update(apply_perspective(m, problem))
    build_s = time.perf_counter() - t0
    limit = problem.time_limit_s
    if limit is not None:
        limit = max(0.05, tracer.time_left() - 0.05)
    Solver = _scip_class()
    opt = Solver()
    opt.tracer, opt.log, opt.live_bounds = tracer, [], form == "raw"
    opt.watchdog = {"fired": False}
    if limit is not None:
        opt.deadline = time.perf_counter() + limit + float(options["watchdog_grace_s"])
    feastol = float(options["feastol"])
    solver_options = {"display/verblevel": 0,  # NEVER on (see module doc)
                      "numerics/feastol": feastol}
    if options["threads"]:
        solver_options["lp/threads"] = int(options["threads"])
    res = opt.solve(m, time_limit=limit, rel_gap=rel_gap, load_solutions=False, solver_options=solver_options,
                    raise_exception_on_nonoptimal_result=False)
    scip_model = opt._solver_model
    scip_status = scip_model.getStatus()
    nodes = int(scip_model.getNNodes())
    bound = res.objective_bound
    bound = float(bound) if bound is not None and math.isfinite(bound) else None
    inc = res.incumbent_objective
    extra.update(scip_status=scip_status, scip_incumbent=inc, scip_bound=bound, nodes=nodes,
                 build_s=build_s, scip_time_s=float(scip_model.getSolvingTime()), events=len(opt.log),
                 scip_version=".".join(map(str, opt.version())), watchdog_fired=opt.watchdog["fired"])
    has_sol = res.solution_loader.get_number_of_solutions() > 0
    if not has_sol:
        if scip_status == "infeasible":
            return Outcome(Status.INFEASIBLE, iterations=nodes, message="SCIP proved the model infeasible", extra=extra)
        st = Status.TIME_LIMIT if scip_status in ("timelimit", "userinterrupt", "nodelimit", "memlimit") else Status.ERROR
        if form != "raw":
            extra["untrusted_bound"], bound = bound, None
        if bound is not None:
            tracer.bound(bound)
        return Outcome(st, bound=bound, iterations=nodes, message=f"SCIP status {scip_status}: no feasible point", extra=extra)
    res.solution_loader.load_vars()
    clipped = clip_to_bounds(m)
    extra["clipped_max"] = clipped
    sync_epigraphs(m)
    extra["model_objective"] = model_objective(m)
    sol, ev = verified_point(problem, m)
    extra["max_violation"] = ev.max_violation
    obj = ev.objective
    if ev.feasible:
        tracer.incumbent(obj, sol)
    proven = scip_status in ("optimal", "gaplimit")
    # one-sided: SCIP may score its point above the evaluator (a slack objective epigraph at a limit, or
    # the perspective form's t_i), which is harmless; scoring it *below* means its tolerances fooled it.
    agrees = inc is not None and math.isfinite(obj) and obj <= inc + TRUST_RTOL * max(1.0, abs(obj))
    extra["scip_incumbent_agrees"] = agrees
    if not agrees or not ev.feasible:
        # SCIP's point, moved into the variable bounds, is not the point SCIP scored (its feasibility
        # tolerance let it exploit e.g. p slightly below 0 where s/r changes sign): SCIP's numerics were
        # fooled, so neither its optimality claim nor its bound is trusted.
        msg = (f"SCIP ({scip_status}) scored its point {inc!r} but the evaluator gives {obj!r} at it "
               f"(max violation {ev.max_violation:.3g}); bound dropped, not certified")
        extra["untrusted_bound"] = bound
        if not (ev.feasible and math.isfinite(obj)):
            sol2, ev2 = polish(problem, m)  # SCIP's integers, continuous part re-solved by Ipopt
            extra["polished"] = ev2 is not None and ev2.feasible
            if ev2 is not None and ev2.feasible and math.isfinite(ev2.objective):
                sol, ev, obj = sol2, ev2, ev2.objective
                tracer.incumbent(obj, sol)
                msg += f"; Ipopt re-solve at SCIP's integer assignment gives the verified point {obj!r}"
        # bound = -inf: the trivial bound, overriding whatever the live events put in the tracer
        if ev.feasible and math.isfinite(obj):
            return Outcome(Status.TIME_LIMIT, solution=sol, objective=obj, bound=-math.inf, iterations=nodes,
                           message=msg, extra=extra)
        return Outcome(Status.ERROR, bound=-math.inf, iterations=nodes, message=msg, extra=extra)
    if form == "perspective":
        # Measured (docs/peers.md): on default 3x2 SCIP 'proved' 0.630764 on this formulation while the
        # raw model's 0.630155 is verified feasible, and that point is feasible in this formulation too.
        # Until the cause is found its certificates are not passed on: incumbent only.
        extra["untrusted_bound"] = bound
        return Outcome(Status.TIME_LIMIT, solution=sol, objective=obj, bound=-math.inf, iterations=nodes,
                       message=f"SCIP {scip_status} on the perspective formulation: incumbent only "
                               f"(its certificates were seen to be wrong; SCIP bound {bound!r} not reported)",
                       extra=extra)
    if bound is not None:
        tracer.bound(bound)
    if proven:
        status, msg = Status.OPTIMAL, f"SCIP proved optimality (status {scip_status}, rel_gap {rel_gap:g})"
    else:
        status, msg = Status.TIME_LIMIT, f"SCIP stopped: {scip_status}"
    return Outcome(status, solution=sol, objective=obj, bound=bound, iterations=nodes, message=msg, extra=extra)
