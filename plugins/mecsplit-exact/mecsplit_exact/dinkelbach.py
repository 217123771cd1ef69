"""Dinkelbach on the exact core for the ratio objective ``cost_per_quality`` (DASHF, spec §2.2;
docs/exact.md §6).

With integer splits and an α-dependent quality, U(x) = Σ_n U_{n,k_n} is a constant per option, so
for a price λ the problem  F(λ) = min_x C(x) − λU(x)  is the weighted-sum core with the option
constants shifted by −λU_{nk}: the exact solver (bnb.py) certifies it. Dinkelbach: λ ← C(x)/U(x)
of the best x found, until F(λ) ≥ 0 within the tolerance.

The bound on the optimal ratio r* from any step: the sub-solver's bound L satisfies C(x) − λU(x) ≥ L
for every x, so C(x)/U(x) ≥ λ + L/U(x) ≥ λ + L/U_min if L < 0 (λ + L/U_max if L ≥ 0), with
U_min, U_max the least and largest total quality over all options. Every step's bound is valid; the
best is kept.
"""

from __future__ import annotations

import time

import numpy as np

from .bnb import QuietTracer
from .fixed import to_solution


STEP_REL = 0.3   # a step's tolerance relative to |F(λ)| (the absolute one, step_abs, takes over as F → 0)


def solve_ratio(D, tracer, make_solver, rel_gap, abs_gap, time_limit_s, warm=None, log=None, max_steps=50):
    """Minimise C(x)/U(x). ``make_solver(D, tracer, rel_gap, abs_gap, time_limit_s)`` builds the exact
    weighted-sum solver on the data it is given (here D with the option constants shifted by −λU).
    Returns (incumbent with the ratio as "obj", bound, status, stats)."""
    rows = np.arange(D.N)
    u_min, u_max = float(D.Q.min(axis=1).sum()), float(D.Q.max(axis=1).sum())
    t0 = time.perf_counter()
    deadline = t0 + (time_limit_s if time_limit_s is not None else 1e18)
    best, bound, lam, status = None, -np.inf, 0.0, "time_limit"
    stats = {"dinkelbach_steps": 0, "lambdas": [], "inner": []}
    for _ in range(max_steps):
        left = deadline - time.perf_counter()
        if left <= 0 and best is not None:   # the first step always runs (it supplies the incumbent)
            break
        # tolerance of the step: an error ε in F(λ) moves the ratio bound by ε/U_min
        step_abs = max(0.5 * rel_gap * lam * u_min, 0.5 * abs_gap * u_min, 1e-300)
        # inexact steps: a step only has to supply a better λ until F(λ) nears 0, so it stops once its
        # incumbent is within STEP_REL of its bound (relative to |F|); near r* the absolute tolerance rules
        inner = make_solver(D.shifted(-lam * D.Q), QuietTracer(), 1e-3 if lam == 0 else STEP_REL, step_abs, left)
        inc, lb, st = inner.run(warm)
        stats["dinkelbach_steps"] += 1
        stats["lambdas"].append(lam)
        stats["inner"].append({"status": st, "oa_rounds": inner.stats["oa_rounds"], "fixed_solves": inner.stats["fixed_solves"]})
        tracer.iteration()
        q = float(D.Q[rows, inc["k"]].sum())
        ratio = (inc["obj"] + lam * q) / q
        if best is None or ratio < best["obj"]:
            best = dict(inc, obj=ratio)
            tracer.incumbent(ratio, to_solution(D, best))
            warm = {"server": inc["server"], "alpha": D.alphas[inc["k"]]}
        bound = max(bound, lam + lb / (u_min if lb < 0 else u_max))
        tracer.bound(min(bound, best["obj"]))
        if log:
            log(f"dinkelbach λ {lam:.12g}: F ≥ {lb:.3e} ({st}), ratio {ratio:.12g}, bound {bound:.12g}")
        if best["obj"] - bound <= max(abs_gap, rel_gap * abs(best["obj"])):
            status = "optimal"
            break
        if st in ("time_limit", "node_limit"):   # the step stopped at a limit: its bound is all there is
            status = st
            break
        if best["obj"] >= lam and lam > 0:   # no progress: the step's own tolerance was not reached
            status = "stalled"
            break
        lam = best["obj"]
    else:
        status = "stalled"
    bound = min(bound, best["obj"]) if best is not None else bound
    return best, bound, status, stats
