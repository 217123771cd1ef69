"""The Liu–Zhao decomposition as a composition of steps (spec §1.7: alternate Step A and Step B
until the P2 objective stops decreasing).

A **step** is ``fn(ctx, state, **options) -> State``; the plugin registers each one with
``registry.add_step`` (kinds "resources", "association", "split"), and :func:`decompose` runs any
initial steps once, then a cycle of steps until the objective (evaluated after each cycle, which must
end on a feasible point) stops decreasing. Recombining steps takes a few lines::

    from mecsplit.plugins import get_manager
    from mecsplit_liuzhao.decomposition import Context, decompose, initial_state
    steps = get_manager().steps
    ctx = Context.of(variant, inst, rng)
    st = decompose(ctx, initial_state(ctx),
                   init=[steps["greedy-association"].fn, steps["fp-resources"].fn],
                   cycle=[steps["random-association"].fn, steps["fp-resources"].fn])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

import numpy as np

from mecsplit.evaluate import FEASIBILITY_TOL, evaluate

from .cccp import cccp_association, load_moves
from .fp import fp_resources
from .model import Coefs, Pairs, best_alpha, equal_shares, pairs, to_solution
from .rules import greedy_association, random_alpha, random_association, random_resources, random_weights


@dataclass
class Context:
    variant: Any
    inst: Any
    rng: np.random.Generator
    P: Pairs
    log: list = field(default_factory=list)      # one record per step
    cache: dict = field(default_factory=dict)    # e.g. the random-resource weights
    tracer: Any = None

    @classmethod
    def of(cls, variant, inst, rng, tracer=None) -> "Context":
        return cls(variant, inst, rng, pairs(variant, inst), tracer=tracer)


@dataclass
class State:
    server: np.ndarray
    x: dict                      # alpha, f_GHz, fe_GHz, p_W, b_MHz (one value per user)
    objective: float | None = None

    def solution(self) -> dict:
        return to_solution(self.server, self.x)


def initial_state(ctx: Context, server=None) -> State:
    server = greedy_association(ctx.P) if server is None else np.asarray(server, int)
    return State(server, equal_shares(ctx.P, server))


def _with(st: State, **x) -> State:
    nx = {k: np.asarray(v, float).copy() for k, v in st.x.items()}
    nx.update({k: np.asarray(v, float) for k, v in x.items()})
    return State(st.server.copy(), nx)


# --- steps -----------------------------------------------------------------------------------------
def fp_resources_step(ctx: Context, st: State, fix_alpha: bool = False, rounding: str = "nearest",
                      tol: float = 1e-9, max_iter: int = 300, kkt: bool = False,
                      alpha_starts: tuple = ("given",)) -> State:
    """Step A: FP resources (α relaxed then rounded unless ``fix_alpha``), warm-started from ``st``."""
    r = fp_resources(ctx.variant, ctx.inst, st.server, st.x["alpha"], start=st.x, fix_alpha=fix_alpha,
                     rounding=rounding, tol=tol, max_iter=max_iter, kkt=kkt,
                     alpha_starts=alpha_starts, P=ctx.P)
    ctx.log.append({"step": "fp-resources", "fp_iterations": r.iterations, "converged": r.converged,
                    "objective": r.objective, "relaxed_objective": r.relaxed_objective,
                    **({"kkt_residual": r.kkt["max"]} if r.kkt else {})})
    return State(st.server.copy(), r.x, r.objective)


def cccp_association_step(ctx: Context, st: State, starts: int = 3, rho0: float = 0.01, rho_growth: float = 10.0,
                          max_iter: int = 60, tentative: str = "share") -> State:
    """Step B: CCCP association for the resources of ``st``; moved users get tentative b, f_e."""
    r = cccp_association(ctx.variant, ctx.inst, st.server, st.x, ctx.rng, starts=starts, rho0=rho0,
                         rho_growth=rho_growth, max_iter=max_iter, tentative=tentative, P=ctx.P)
    if ctx.tracer is not None:   # the association iterations drive the framework's iteration counter
        for _ in range(r.lp_solves):
            ctx.tracer.iteration()
    ctx.log.append({"step": "cccp-association", "lp_solves": r.lp_solves, "G_before": r.G_start, "G_after": r.G,
                    "moved": int(np.sum(r.server != st.server)), "starts": r.starts, "iterations": r.iterations})
    out = _with(st, b_MHz=r.b_MHz, fe_GHz=r.fe_GHz)
    out.server = np.asarray(r.server, int).copy()
    return out


def load_association_step(ctx: Context, st: State, max_moves: int | None = None) -> State:
    """Improved Step B (not in the paper): single-user moves priced at the loads they create
    (:func:`mecsplit_liuzhao.cccp.load_moves`); every user gets the equal shares of the new loads."""
    r = load_moves(ctx.P, st.server, st.x, max_moves=max_moves)
    ctx.log.append({"step": "load-association", "moves": len(r.moves), "G_before": r.G_start, "G_after": r.G,
                    "moved": int(np.sum(r.server != st.server))})
    if ctx.tracer is not None:
        for _ in r.moves:
            ctx.tracer.iteration()
    if not r.moves:
        return st
    out = _with(st, b_MHz=r.b_MHz, fe_GHz=r.fe_GHz)
    out.server = np.asarray(r.server, int).copy()
    return out


def _reassociate(ctx: Context, st: State, server, name: str) -> State:
    x = equal_shares(ctx.P, server)
    x["alpha"] = st.x["alpha"].copy()
    ctx.log.append({"step": name, "moved": int(np.sum(server != st.server))})
    return State(np.asarray(server, int), x)


def greedy_association_step(ctx: Context, st: State, capped: bool = True) -> State:
    """Greedy association (highest rate at the equal share; at most ⌈N/M⌉ users per server unless
    ``capped=False``); resources reset to equal shares."""
    return _reassociate(ctx, st, greedy_association(ctx.P, capped), "greedy-association")


def random_association_step(ctx: Context, st: State) -> State:
    """Random association within bandwidth (ctx.rng); resources reset to equal shares."""
    return _reassociate(ctx, st, random_association(ctx.P, ctx.rng), "random-association")


def exact_alpha_step(ctx: Context, st: State) -> State:
    """Exact split step: per user the best α (integer when the variant says so) for fixed resources."""
    a = best_alpha(Coefs.of(ctx.P, st.server), st.x, integer=ctx.P.integer)
    out = _with(st, alpha=a)
    out.objective = Coefs.of(ctx.P, st.server).H(out.x)
    ctx.log.append({"step": "exact-alpha", "objective": out.objective})
    return out


def random_resources_step(ctx: Context, st: State) -> State:
    """Resources from random weights drawn once per run (ctx.rng) for the current association."""
    if "random_weights" not in ctx.cache:
        ctx.cache["random_weights"] = random_weights(ctx.P, ctx.rng)
    out = _with(st, **random_resources(ctx.P, st.server, ctx.cache["random_weights"]))
    out.objective = Coefs.of(ctx.P, st.server).H(out.x)
    ctx.log.append({"step": "random-resources", "objective": out.objective})
    return out


def random_alpha_step(ctx: Context, st: State) -> State:
    """α uniform at random (ctx.rng) in its range."""
    out = _with(st, alpha=random_alpha(ctx.P, ctx.rng))
    ctx.log.append({"step": "random-alpha"})
    return out


def fixed_alpha_step(value: str) -> Callable:
    """α = α_min ("min", edge-only) or α_max ("max", local-only; Υ−1 with the stability block)."""
    def step(ctx: Context, st: State) -> State:
        a = ctx.P.alpha_lo if value == "min" else ctx.P.alpha_hi
        if ctx.P.integer:
            a = np.ceil(a - 1e-9) if value == "min" else np.floor(a + 1e-9)
        ctx.log.append({"step": f"alpha-{value}"})
        return _with(st, alpha=np.full(ctx.P.N, float(a)))
    return step


STEPS = {  # name -> (kind, fn)
    "fp-resources": ("resources", fp_resources_step),
    "fp-resources-fixed-alpha": ("resources", partial(fp_resources_step, fix_alpha=True)),
    "random-resources": ("resources", random_resources_step),
    "cccp-association": ("association", cccp_association_step),
    "load-association": ("association", load_association_step),
    "greedy-association": ("association", greedy_association_step),
    "random-association": ("association", random_association_step),
    "exact-alpha": ("split", exact_alpha_step),
    "random-alpha": ("split", random_alpha_step),
    "alpha-min": ("split", fixed_alpha_step("min")),
    "alpha-max": ("split", fixed_alpha_step("max")),
}


# --- the outer loop --------------------------------------------------------------------------------
def evaluate_state(ctx: Context, st: State):
    return evaluate(ctx.variant, ctx.inst, st.solution())


def decompose(ctx: Context, st: State, init=(), cycle=(), max_outer: int = 20, tol: float = 1e-7) -> State:
    """Run ``init`` once, then ``cycle`` until the objective stops decreasing (relative ``tol``) or
    ``max_outer`` cycles; returns the best feasible state (objective = the evaluator's)."""
    for fn in init:
        st = fn(ctx, st)
    best = _record(ctx, st, 0)
    for k in range(1, max_outer + 1 if cycle else 1):
        if ctx.tracer is not None and ctx.tracer.out_of_time():
            ctx.log.append({"step": "stop", "reason": "time limit"})
            break
        for fn in cycle:
            st = fn(ctx, st)
        cand = _record(ctx, st, k)
        if cand is None or best is None or cand.objective >= best.objective * (1 - tol):
            if cand is not None and (best is None or cand.objective < best.objective):
                best = cand
            break
        best = st = cand
    if best is None:
        raise RuntimeError("the decomposition never reached a feasible point")
    return best


def _record(ctx: Context, st: State, k: int) -> State | None:
    ev = evaluate_state(ctx, st)
    ctx.log.append({"step": "outer", "cycle": k, "objective": ev.objective, "feasible": ev.feasible,
                    "max_violation": ev.max_violation})
    # feasible for P2; constraints a variant adds (deadlines, ...) are not modelled here: a point that
    # violates only those is kept, and the framework reports it as "no feasible point found"
    if any(v > FEASIBILITY_TOL for k2, v in ev.violations.items() if not k2.startswith("constraints.")):
        return None
    st = State(st.server.copy(), {k2: v.copy() for k2, v in st.x.items()}, ev.objective)
    if ctx.tracer is not None and ev.feasible:
        ctx.tracer.incumbent(ev.objective, st.solution())
    return st
