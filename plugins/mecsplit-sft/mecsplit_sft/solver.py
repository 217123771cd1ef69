"""The SFT two-timescale decomposition as steps, and the solvers built from them (docs/sft.md §2).

A **step** is ``fn(ctx, state, **options) -> State`` (registered with ``registry.add_step``):

* ``sft-alm-large``    — large timescale: ALM over (α, ρ) with the slots' recourse (alm.py); α relaxed,
                          or fixed (``fix_alpha``) after rounding;
* ``sft-round-split``  — α to whole blocks (nearest, within every bound incl. the memory cap);
* ``sft-sqp-small``    — small timescale: per slot, spectrum and server share for fixed (α, ρ) (sqp.py).

``sft-alm`` runs: ALM (α relaxed) → round → ALM (α fixed, multipliers warm) → SQP per slot, then
alternates {ALM over ρ with the SQP's allocation as its start, SQP per slot} until the expected delay
stops improving. Every point handed to the tracer is made exactly feasible first (``SftData.repair``).
The baselines are the same loop with one decision held (PLANS).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mecsplit.errors import InputError
from mecsplit.result import Outcome, Status

from .alm import solve_alm
from .data import SftData
from .sqp import METHODS, solve_slots

OPTIONS = {"small": "ipopt", "max_alternations": 3, "rho_restart": True, "alm_max_outer": 20, "alm_c0": [10.0, 100.0], "alm_feas_tol": 1e-7,
           "ipopt_tol": 1e-9, "improve_rtol": 1e-7}
# checked by the framework before a solve (mecsplit.solve.check_option); other numbers must be ≥ 0
DOMAINS = {"small": METHODS, "max_alternations": {"lo": 1}, "alm_max_outer": {"lo": 1},
           **{k: {"lo": 0, "lo_open": True} for k in ("alm_feas_tol", "ipopt_tol")}}

# name -> (what is held, where the baseline comes from)
PLANS: dict[str, dict[str, Any]] = {
    "sft-alm": {},
    "sft-no-compression": {"rho": "max"},
    "sft-fixed-split": {"alpha": "half"},
    "sft-equal-bandwidth": {"bandwidth": "equal"},
    "sft-static": {"tied": True},
}
DESCRIPTIONS = {
    "sft-alm": "SFT two-timescale decomposition (Zhang et al. 2025): ALM over split + keep ratio with the slots' "
               "recourse, SQP (Ipopt by default) over spectrum + server share per slot, alternated",
    "sft-no-compression": "baseline: no activation compression (ρ = ρ_max, SFT §2.5's uncompressed split fine-tuning); "
                          "split and resources optimised as in sft-alm",
    "sft-fixed-split": "baseline: fixed split, half the blocks on the device (⌊Υ/2⌋ within the memory cap; the "
                       "fixed-cut SL/SFL benchmark); compression and resources optimised",
    "sft-equal-bandwidth": "baseline: equal spectrum shares in every slot (no spectrum allocation); split, compression "
                           "and server shares optimised",
    "sft-static": "baseline: single timescale — one spectrum/server allocation held in every slot (no per-slot "
                  "adaptation), everything optimised jointly over the slots",
}


_CACHE: dict = {}


@dataclass
class State:
    alpha: np.ndarray
    rho: np.ndarray
    fe: np.ndarray     # (T, N) GHz
    b: np.ndarray      # (T, N) MHz
    objective: float = math.inf
    warm: tuple = ()   # the last ALM's multipliers


@dataclass
class Context:
    d: SftData
    plan: dict
    options: dict
    tracer: Any = None
    deadline: float = math.inf
    cache: dict = field(default_factory=lambda: _CACHE)   # CasADi solvers by shape, kept for the process
    log: list = field(default_factory=list)
    best: State | None = None

    def offer(self, st: State) -> State:
        """Repair ``st`` to an exactly feasible point, keep it if it is the best so far, report it."""
        a, r, fe, b = self.d.repair(st.alpha, st.rho, st.fe, st.b)
        if self.plan.get("rho") == "max":
            r = np.full(self.d.N, self.d.rho_max)
        obj = self.d.objective(a, r, fe, b)
        out = replace(st, alpha=a, rho=r, fe=fe, b=b, objective=obj)
        if self.best is None or obj < self.best.objective:
            self.best = out
            if self.tracer is not None:
                self.tracer.incumbent(obj, self.d.solution(a, r, fe, b))
        return out


# --- steps -----------------------------------------------------------------------------------------
def alm_large_step(ctx: Context, st: State, fix_alpha: bool = False, c0: float | None = None) -> State:
    o, p = ctx.options, ctx.plan
    c0 = float(max(o["alm_c0"])) if c0 is None else float(c0)
    r = solve_alm(ctx.d, st.alpha, st.rho, st.fe, st.b, fix_alpha=fix_alpha or p.get("alpha") == "half",
                  fix_rho=p.get("rho") == "max", fix_b=p.get("bandwidth") == "equal", tied=bool(p.get("tied")),
                  max_outer=o["alm_max_outer"], c0=c0, feas_tol=o["alm_feas_tol"], tol=o["ipopt_tol"],
                  cache=ctx.cache, deadline=ctx.deadline, warm=st.warm)
    ctx.log.append({"step": "sft-alm-large", "fix_alpha": fix_alpha, "c0": c0, "objective_s": r.objective, "violation": r.violation,
                    "outer": r.iterations, "ipopt_iterations": r.inner_iterations, "time_s": r.time_s, "trace": r.trace})
    if ctx.tracer is not None:
        ctx.tracer.iteration()
    return State(r.alpha, r.rho, r.fe, r.b, r.objective, r.multipliers)


def round_split_step(ctx: Context, st: State) -> State:
    a = np.clip(np.rint(st.alpha), ctx.d.alpha_lo, ctx.d.alpha_hi)
    ctx.log.append({"step": "sft-round-split", "moved": int(np.sum(np.abs(a - st.alpha) > 1e-6)),
                    "max_move": float(np.max(np.abs(a - st.alpha), initial=0.0))})
    return replace(st, alpha=a)


def sqp_small_step(ctx: Context, st: State) -> State:
    """Every slot from the equal split (Ipopt, an interior-point method, needs 12 iterations from there and
    50-130 from the previous optimum — measured) or, for SLSQP, from the previous allocation."""
    d = ctx.d
    fixed_b = ctx.plan.get("bandwidth") == "equal"
    fe0, b0 = d.equal_shares() if ctx.options["small"] == "ipopt" else (st.fe, st.b)
    fe, b, res = solve_slots(d, st.alpha, st.rho, fe0, st.b if fixed_b else b0, ctx.options["small"],
                             fix_b=fixed_b, cache=ctx.cache)
    ctx.log.append({"step": "sft-sqp-small", "method": ctx.options["small"], "iterations": [r.iterations for r in res],
                    "converged": int(sum(r.ok for r in res)), "time_s": float(sum(r.time_s for r in res)),
                    "objective_s": d.objective(st.alpha, st.rho, fe, b)})
    return replace(st, fe=fe, b=b, objective=d.objective(st.alpha, st.rho, fe, b))


STEPS = {"sft-alm-large": ("large", alm_large_step), "sft-round-split": ("split", round_split_step),
         "sft-sqp-small": ("resources", sqp_small_step)}


# --- the decomposition -----------------------------------------------------------------------------
def initial_state(d: SftData, plan: dict) -> State:
    a = np.clip(np.full(d.N, float(d.L // 2)), d.alpha_lo, d.alpha_hi)
    r = np.full(d.N, d.rho_max if plan.get("rho") == "max" else d.rho_uniform())
    fe, b = d.equal_shares()
    return State(a, r, fe, b, d.objective(a, r, fe, b))


def rate_ordered_rho(d: SftData, st: State) -> np.ndarray:
    """ρ meeting the distortion budget with ρ_max on the devices with the fastest uplinks (slot-average rate
    at the current allocation) first, one device in between, ρ_min on the rest."""
    rho = np.full(d.N, d.rho_min)
    extra = d.N * (d.rho_uniform() - d.rho_min)
    for n in np.argsort(-np.mean(d.rate(st.b), axis=0), kind="stable"):
        add = min(d.rho_max - d.rho_min, max(extra, 0.0))
        rho[n] += add
        extra -= add
    return rho


def decompose(ctx: Context) -> State:
    st = ctx.offer(initial_state(ctx.d, ctx.plan))
    tied = bool(ctx.plan.get("tied"))
    if ctx.plan.get("alpha") != "half":
        # α relaxed, from each penalty start (the ALM's path picks among ρ's local optima; docs/sft.md §2)
        runs = [alm_large_step(ctx, st, c0=c0) for c0 in ctx.options["alm_c0"]]
        st = round_split_step(ctx, min(runs, key=lambda r: r.objective))
    st = alm_large_step(ctx, st, fix_alpha=True)     # α whole: ρ and the recourse again, multipliers warm
    ctx.offer(st)
    if ctx.options["rho_restart"] and ctx.plan.get("rho") != "max":
        # S(ρ) is concave with its maximum at ρ = 1/(1 + 2^-q) < 1: the optimal ρ sits at its bounds but for
        # one device, and which devices keep ρ_max is combinatorial (local optima 0.6 % apart on 3×1 seed 1,
        # 14 % on 4×1 seed 5). Restart from the uniform budget ρ and from the rate-ordered fill.
        for rho in (np.full(ctx.d.N, ctx.d.rho_uniform()), rate_ordered_rho(ctx.d, st)):
            other = alm_large_step(ctx, replace(st, rho=rho, warm=(*st.warm[:3], None, None)), fix_alpha=True)
            if ctx.offer(other).objective < st.objective:
                st = other
    for _ in range(ctx.options["max_alternations"]):
        if time.perf_counter() > ctx.deadline:
            break
        if not tied:                                 # static: one allocation for every slot, nothing per slot
            st = ctx.offer(sqp_small_step(ctx, st))
        before = ctx.best.objective
        st = ctx.offer(alm_large_step(ctx, st, fix_alpha=True))
        if tied or ctx.best.objective > before * (1 - ctx.options["improve_rtol"]):
            break
    return ctx.best


def solver_fn(name: str):
    plan = PLANS[name]

    def solve(problem, options, tracer) -> Outcome:
        c0 = options["alm_c0"]
        if not c0 or not all(isinstance(c, (int, float)) and not isinstance(c, bool) and 0 < c < 1e9 for c in c0):
            raise InputError("<option>", f"{name}.alm_c0", f"got {c0!r}", "a non-empty list of penalty starts > 0, e.g. [10, 100]")
        d = SftData.of(problem.variant, problem.instance)
        none = d.infeasible()
        if none is not None:
            return none
        left = tracer.time_left()
        ctx = Context(d, plan, options, tracer, time.perf_counter() + (left if math.isfinite(left) else math.inf))
        best = decompose(ctx)
        status = Status.TIME_LIMIT if tracer.out_of_time() else Status.FEASIBLE
        extra = {"plan": plan, "steps": ctx.log, "T": d.T, "N": d.N,
                 "alm_time_s": float(sum(s["time_s"] for s in ctx.log if s["step"] == "sft-alm-large")),
                 "sqp_time_s": float(sum(s["time_s"] for s in ctx.log if s["step"] == "sft-sqp-small"))}
        return Outcome(status, d.solution(best.alpha, best.rho, best.fe, best.b), best.objective,
                       iterations=tracer.iterations, extra=extra)

    return solve
