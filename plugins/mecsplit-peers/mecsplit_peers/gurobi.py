"""Gurobi (``gurobipy`` ≥ 12: global MINLP with general nonlinear constraints) as a peer solver.

Ways to give the problem to Gurobi (option ``formulation``):

* ``auto`` (default) — ``pairs`` for the core problem, ``lean`` when the licence refuses ``pairs`` for
  its size, ``raw`` for a variant beyond the core.
* ``raw`` — any variant: ``problem.build_model()`` through Pyomo's ``gurobi_direct_minlp`` writer.
  Gurobi's bound is a bound on ``m.obj``, the evaluator's objective.
* ``pairs`` and ``lean`` — the core problem (blocks llm, association, user_compute, edge_compute,
  uplink, stability; weighted sum; integer split), written out for Gurobi with the structure the spec
  gives (docs/exact.md §1), every step exact:

  - the user GPU frequency is eliminated: f appears only in α·(ω_t a_T/f + ω_e a_E f²), minimised in
    closed form by f* = (ω_t a_T/(2 ω_e a_E))^{1/3} clipped to its box, whatever α > 0 (spec §1.9);
  - the split enters through w = Υ − α (layers at the edge, integer); the user-compute and stability
    terms (Υ − w)·A + ω_s·2L²Υ/(k w) are a convex function of w taken exactly at every integer w, so
    they are Gurobi's piecewise-linear objective of w (no variable, no nonlinear constraint);
  - edge cost E_n = w·(t/fe + e·fe²) is one nonlinear constraint (y = f(x), Gurobi's form) with t, e
    the user's server's coefficients Σ_m χ_nm·t_nm (exact since Σ_m χ = 1);
  - uplink: the rate r_n = b·log2(1 + a p/b) is a variable fixed by one nonlinear constraint and the
    cost U_n ≥ (c0 + c1 p)/r_n is the bilinear U_n·r_n ≥ c0 + c1 p. (U_n = (c0 + c1 p)/rate as one
    expression found no feasible point in 30 s on 2x1: "unable to solve some node relaxations".)
  - E_n and U_n are in units of their smallest possible value: the raw terms are 1e-5..1e-3 of the
    objective and, at scale 1, Gurobi met U·r ≥ c0 + c1 p (right-hand side ~1e-7) within its absolute
    FeasibilityTol with a U far too small (its bound then exceeded the verified optimum);
  - ``pairs``: per-(user, server) copies fe_nm, b_nm (0 off the user's server) so that the budgets
    Σ_n fe_nm ≤ F_m, Σ_n b_nm ≤ B_m are linear (3·N·M + 7·N variables);
    ``lean``: one fe_n, b_n per user and bilinear budgets Σ_n χ_nm·fe_n ≤ F_m (N·M + 7·N variables),
    for the size-limited licence (200 variables once anything is nonlinear: 10x3 fits ``pairs``,
    18x4 ``lean``, 20x4 neither);
  - valid inequalities Gurobi does not find itself (option ``cuts``): on the uplink term,
    U_n ≥ Σ_m χ_nm·ln2·(c1 + c0/p_max)/a_nm (``hand``: the rate is below a·p/ln2 ≤ a·p_max/ln2 and
    z/ln(1+z) ≥ 1), or the tighter U_n ≥ Σ_m χ_nm·V_nm with V_nm the uplink cost's minimum over p with
    the server's whole band b = B_m (``band``; the rate increases with b, so no user does better);
    with either, on the edge term E_n ≥ w_lo·Σ_m χ_nm·h_nm and E_n ≥ w·min_m h_nm, with
    h_nm = min_fe t/fe + e fe².

The size-limited licence that ships with the pip wheel refuses models above its limits
(GurobiError 10010): reported as an ``InputError`` "unavailable for this size" (one line, exit 2).
Gurobi's log is always off (``OutputFlag`` 0, set before the environment starts, so no licence
banner either). Gurobi's point is mapped back to a per-user solution in model units (integers
rounded, values moved into their boxes, budgets scaled back if Gurobi's tolerance overshot them) and
scored by the evaluator; ``optimal`` only if Gurobi proved optimality *and* the evaluator's value at
the returned point is within ``rel_gap`` of Gurobi's bound.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from mecsplit.errors import InputError
from mecsplit.result import Outcome, Status

LN2 = math.log(2.0)
CORE_BLOCKS = ("llm", "association", "user_compute", "edge_compute", "uplink", "stability")
SIZE_LIMIT_ERRNO = 10010   # GRB_ERROR_SIZE_LIMIT_EXCEEDED
# A relative margin taken off every precomputed cut constant (they are minima located to ~1e-12).
CUT_SAFETY = 1e-9


# --- the core problem's coefficients (model units) ------------------------------------------------
@dataclass
class Core:
    """Per-user / per-(user, server) coefficients of the core problem (docs/exact.md §1), ω included.
    (A local adapter until ``mecsplit.compile`` lands: issue 15.)"""

    N: int
    M: int
    Y: float                 # Υ, layers
    w_lo: int                # smallest number of edge layers Υ − α_max
    w_hi: int                # largest Υ − α_min
    f_star: np.ndarray       # (N,) user GHz minimising the per-layer user cost
    A: np.ndarray            # (N,) per-layer user cost at f*
    stab: np.ndarray         # (N,) ω_s·2L²/k_n (0 without the stability block)
    t: np.ndarray            # (N, M) ω_t·(edge time per layer at 1 GHz)
    e: np.ndarray            # (N, M) ω_e·(edge energy per layer per GHz²)
    fe_lo: float
    F: np.ndarray            # (M,) GHz
    eq_f: bool
    a: np.ndarray            # (N, M) SNR per W per MHz
    c0: np.ndarray           # (N,) ω_t·s (0 without the delay term)
    c1: np.ndarray           # (N,) ω_e·s
    p_lo: float
    p_hi: np.ndarray         # (N,) W
    b_lo: float
    B: np.ndarray            # (M,) MHz
    eq_b: bool

    def user_cost(self, w):
        """(Υ − w)·A + ω_s·2L²Υ/(k·w) per user for integer edge layers w (array (N,) or (N, K))."""
        w = np.asarray(w, float)
        A, st = (self.A, self.stab) if w.ndim == 1 else (self.A[:, None], self.stab[:, None])
        return (self.Y - w) * A + st * self.Y / w


def core_of(variant, inst, where="gurobi.formulation") -> Core:
    if inst.T > 1:
        raise InputError("<option>", where, f"the structured formulations are for the static channel; variant "
                         f"{variant.name!r} has generator.slots = {inst.T}", "'raw' (any variant)")
    names = [b.name for b in variant.blocks]
    other = sorted(set(names) - set(CORE_BLOCKS))
    if other:
        raise InputError("<option>", where, f"the structured formulations cover the core blocks only; variant "
                         f"{variant.name!r} has block {other[0]!r}", "'raw' (any variant)")
    for req in CORE_BLOCKS[:-1]:
        if req not in names:
            raise InputError("<option>", where, f"variant {variant.name!r} has no {req!r} block", "'raw' (any variant)")
    if variant.objective.kind != "weighted_sum":
        raise InputError("<option>", where, f"objective kind {variant.objective.kind!r} is not a weighted sum", "'raw'")
    if variant.constraints or variant.terms:
        raise InputError("<option>", where, f"variant {variant.name!r} adds constraints or objective terms", "'raw'")
    llm, up = inst.block("llm"), inst.block("uplink")
    if llm["split"] != "integer":
        raise InputError("<option>", where, "a continuous split is not covered (w·h(fe) needs integer w here)", "'raw'")
    if up["upload"] == "external":
        raise InputError("<option>", where, "upload = 'external' (another block owns the uplink terms)", "'raw'")
    om = variant.objective.omega(inst)
    wt, we, ws = om["delay"], om["energy"], om["stability"]
    Y = float(llm["layers"])
    has_stab = inst.has_block("stability")
    a_max = Y - 1 if has_stab else Y
    a_lo = math.ceil(float(llm["alpha_min"]) - 1e-9)
    if a_lo > a_max:
        raise InputError("<option>", "blocks.llm.alpha_min", "no integer split in range", f"alpha_min <= {a_max:g}")
    uc, ec = variant.block("user_compute"), variant.block("edge_compute")
    tU, eU = uc.per_layer(inst)                     # per layer: time at 1 GHz, energy per GHz²
    aT, aE = wt * tU, we * eU
    ucd = inst.block("user_compute")
    fmin, fmax = float(ucd["f_min_GHz"]), np.asarray(ucd["f_max_GHz"], float)
    with np.errstate(divide="ignore", invalid="ignore"):
        fs = np.where(aE > 0, np.cbrt(aT / (2 * np.where(aE > 0, aE, 1.0))), np.where(aT > 0, np.inf, fmin))
    f = np.clip(fs, fmin, fmax)
    tE, eE = ec.per_layer(inst)
    ecd = inst.block("edge_compute")
    stab = np.zeros(inst.N)
    if has_stab:
        st = inst.block("stability")
        stab = ws * 2 * float(variant.block("stability").p["lipschitz"]) ** 2 / np.asarray(st["samples"], float)
    s = np.asarray(up["upload_Mbit"], float)
    upb = variant.block("uplink")
    core = Core(N=inst.N, M=inst.M, Y=Y, w_lo=int(round(Y - a_max)), w_hi=int(round(Y - a_lo)), f_star=f,
                A=aT / f + aE * f**2, stab=stab, t=wt * tE, e=we * eE, fe_lo=float(ecd["fe_min_GHz"]),
                F=np.asarray(ecd["F_max_GHz"], float), eq_f=ecd["budget"] == "eq",
                a=np.asarray(up["snr_per_W_MHz"], float), c0=wt * s * (1.0 if upb.p["delay"] else 0.0), c1=we * s,
                p_lo=float(up["p_min_W"]), p_hi=np.asarray(up["p_max_W"], float), b_lo=float(up["b_min_MHz"]),
                B=np.asarray(up["b_max_MHz"], float), eq_b=up["budget"] == "eq")
    if np.any((core.c0 <= 0) & (core.c1 > 0)) and core.p_lo <= 0:
        raise InputError("<option>", "blocks.uplink.p_min_W", "0 with no uplink delay: the optimum is not attained "
                         "(design-notes §3.1)", "p_min_W > 0 or delay = true")
    return core


# --- valid inequalities -----------------------------------------------------------------------------
def _psi_inv(v: float) -> float:
    """z ≥ 0 with (1+z)·ln(1+z) − z = v (increasing in z): bracketed root."""
    from scipy.optimize import brentq

    if v <= 0:
        return 0.0
    psi = lambda z: (1 + z) * math.log1p(z) - z - v
    hi = max(1.0, math.sqrt(2 * v))
    while psi(hi) < 0:
        hi *= 2
    return brentq(psi, 0.0, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)


def uplink_min(a, c0, c1, plo, phi, b) -> float:
    """min over p ∈ [plo, phi] of (c0 + c1 p)/(b·log2(1 + a p/b)) at fixed b: the stationary point solves
    ψ(z) = a·c0/(c1·b), z = a p/b (ψ increasing, so the cost is quasi-convex in p), then clipped."""
    p = phi if c1 <= 0 else min(max(b * _psi_inv(a * c0 / (c1 * b)) / a, plo), phi)
    if p <= 0:
        return math.inf
    return (c0 + c1 * p) / (b * math.log1p(a * p / b) / LN2)


def edge_min(t, e, lo, hi) -> float:
    """min over fe ∈ [lo, hi] of t/fe + e·fe² (convex; stationary point (t/2e)^{1/3})."""
    x = hi if e <= 0 else min(max((t / (2 * e)) ** (1 / 3), lo), hi)
    return t / x + e * x * x


def cut_constants(core: Core, cuts: str):
    """(uplink lower bound per (n, m), edge per-layer minimum per (n, m)), already lowered by CUT_SAFETY."""
    N, M = core.N, core.M
    up = np.zeros((N, M))
    if cuts == "hand":
        up = LN2 * (core.c1[:, None] + core.c0[:, None] / core.p_hi[:, None]) / core.a
    elif cuts == "band":
        for n in range(N):
            for j in range(M):
                up[n, j] = uplink_min(core.a[n, j], core.c0[n], core.c1[n], core.p_lo, core.p_hi[n], core.B[j])
    h = np.array([[edge_min(core.t[n, j], core.e[n, j], core.fe_lo, core.F[j]) for j in range(M)] for n in range(N)])
    return up * (1 - CUT_SAFETY), h * (1 - CUT_SAFETY)


# --- the structured model -----------------------------------------------------------------------------
def build_structured(gp, env, core: Core, form: str, cuts: str):
    """The gurobipy model and its variables (dict). See the module doc."""
    from gurobipy import GRB, nlfunc, quicksum

    N, M, U, S = core.N, core.M, range(core.N), range(core.M)
    band, h = cut_constants(core, "band")
    up_lb = band if cuts == "band" else cut_constants(core, "hand")[0]
    mdl = gp.Model(env=env)
    chi = mdl.addVars(N, M, vtype=GRB.BINARY, name="chi")
    w = mdl.addVars(N, lb=core.w_lo, ub=core.w_hi, vtype=GRB.INTEGER, name="w")
    p = mdl.addVars(N, lb=core.p_lo, ub=core.p_hi.tolist(), name="p")
    fe = mdl.addVars(N, lb=core.fe_lo, ub=float(core.F.max()), name="fe")
    b = mdl.addVars(N, lb=core.b_lo, ub=float(core.B.max()), name="b")
    # E, U are in units of their smallest possible value (sE, sU) so that Gurobi's absolute tolerances
    # are relative ones: the raw terms are ~1e-5 to 1e-3 of the objective, and at scale 1 Gurobi "satisfied"
    # U·r ≥ c0 + c1·p (right-hand side ~1e-7) within FeasibilityTol by a U far too small.
    sE = h.min(axis=1)
    sU = np.where(band.min(axis=1) > 0, band.min(axis=1), 1.0)
    # No upper bounds on E, U: optimality-based ones (from the reference point's objective) spanned ~1e6 in
    # these units and made Gurobi's bound wrong (3x2 seed 0: bound 0.6331585 above the verified 0.6331551).
    E = mdl.addVars(N, lb=0.0, name="E")
    Up = mdl.addVars(N, lb=0.0, name="U")
    mdl.addConstrs((chi.sum(n, "*") == 1 for n in U), name="one_server")
    budget_f = (lambda lhs, j: lhs == float(core.F[j])) if core.eq_f else (lambda lhs, j: lhs <= float(core.F[j]))
    budget_b = (lambda lhs, j: lhs == float(core.B[j])) if core.eq_b else (lambda lhs, j: lhs <= float(core.B[j]))
    amin, amax = core.a.min(axis=1), core.a.max(axis=1)
    r_lo = core.b_lo * np.log1p(amin * core.p_lo / core.b_lo) / LN2
    r_hi = float(core.B.max()) * np.log1p(amax * core.p_hi / float(core.B.max())) / LN2
    rates: list = []
    v = {"chi": chi, "w": w, "p": p, "fe": fe, "b": b, "E": E, "U": Up, "rate": rates}
    if form == "pairs":
        fe2 = mdl.addVars(N, M, lb=0.0, ub=[float(core.F[j]) for n in U for j in S], name="fe_pair")
        b2 = mdl.addVars(N, M, lb=0.0, ub=[float(core.B[j]) for n in U for j in S], name="b_pair")
        for n in U:
            mdl.addConstr(fe[n] == fe2.sum(n, "*"))
            mdl.addConstr(b[n] == b2.sum(n, "*"))
            for j in S:
                mdl.addConstr(fe2[n, j] <= float(core.F[j]) * chi[n, j])
                mdl.addConstr(fe2[n, j] >= core.fe_lo * chi[n, j])
                mdl.addConstr(b2[n, j] <= float(core.B[j]) * chi[n, j])
                mdl.addConstr(b2[n, j] >= core.b_lo * chi[n, j])
        for j in S:
            mdl.addConstr(budget_f(fe2.sum("*", j), j))
            mdl.addConstr(budget_b(b2.sum("*", j), j))
        v.update(fe_pair=fe2, b_pair=b2)
    else:
        for n in U:  # the user's own server's box
            mdl.addConstr(fe[n] <= quicksum(float(core.F[j]) * chi[n, j] for j in S))
            mdl.addConstr(b[n] <= quicksum(float(core.B[j]) * chi[n, j] for j in S))
        for j in S:
            mdl.addQConstr(budget_f(quicksum(chi[n, j] * fe[n] for n in U), j))
            mdl.addQConstr(budget_b(quicksum(chi[n, j] * b[n] for n in U), j))
    for n in U:
        tn = quicksum(float(core.t[n, j]) * chi[n, j] for j in S)
        en = quicksum(float(core.e[n, j]) * chi[n, j] for j in S)
        an = quicksum(float(core.a[n, j]) * chi[n, j] for j in S)
        mdl.addGenConstrNL(E[n], w[n] * (tn / (float(sE[n]) * fe[n]) + en * fe[n] * fe[n] / float(sE[n])))
        # the rate r = b·log2(1 + a p/b) (Mbit/s) as its own variable, and U·r ≥ c0 + c1·p: Gurobi's spatial
        # branch-and-bound handles this bilinear form well; U = (c0 + c1 p)/rate as one expression stalled
        # (no feasible point in 30 s on 2x1, "unable to solve some node relaxations")
        r = mdl.addVar(lb=float(r_lo[n]), ub=float(r_hi[n]), name=f"rate[{n}]")
        mdl.addGenConstrNL(r, b[n] * nlfunc.log(1 + an * p[n] / b[n]) / LN2)
        mdl.addQConstr(Up[n] * r >= float(core.c0[n] / sU[n]) + float(core.c1[n] / sU[n]) * p[n], name=f"uplink[{n}]")
        rates.append(r)
    if cuts != "off":
        for n in U:
            mdl.addConstr(Up[n] >= quicksum(float(up_lb[n, j] / sU[n]) * chi[n, j] for j in S), name=f"uplink_cut[{n}]")
            mdl.addConstr(E[n] >= quicksum(core.w_lo * float(h[n, j] / sE[n]) * chi[n, j] for j in S), name=f"edge_cut[{n}]")
            mdl.addConstr(E[n] >= w[n], name=f"edge_cut_w[{n}]")
    # objective: Σ E + U + PWL_n(w_n), PWL exact at every integer w (convex user+stability part)
    ws = np.arange(core.w_lo, core.w_hi + 1, dtype=float)
    vals = core.user_cost(np.broadcast_to(ws, (N, ws.size)))
    mdl.setObjective(quicksum(float(sE[n]) * E[n] + float(sU[n]) * Up[n] for n in U), GRB.MINIMIZE)
    for n in U:
        if ws.size == 1:
            mdl.addConstr(w[n] == ws[0])
            mdl.ObjCon = mdl.ObjCon + float(vals[n, 0])
        else:
            mdl.setPWLObj(w[n], ws.tolist(), vals[n].tolist())
    return mdl, v


def structured_solution(core: Core, v) -> dict:
    """Gurobi's values as the framework's per-user solution (model units), moved into every box and
    budget: integers rounded, per-server shares scaled down if the sum overshoots (or up to an "eq"
    budget) — each a move of the order of Gurobi's feasibility tolerance."""
    N, M = core.N, core.M
    chi = np.array([[v["chi"][n, j].X for j in range(M)] for n in range(N)])
    server = np.argmax(chi, axis=1)
    w = np.clip(np.rint([v["w"][n].X for n in range(N)]), core.w_lo, core.w_hi)
    p = np.clip([v["p"][n].X for n in range(N)], core.p_lo, core.p_hi)
    fe = np.clip([v["fe"][n].X for n in range(N)], core.fe_lo, core.F[server])
    b = np.clip([v["b"][n].X for n in range(N)], core.b_lo, core.B[server])
    for x, cap, eq in ((fe, core.F, core.eq_f), (b, core.B, core.eq_b)):
        used = np.bincount(server, weights=x, minlength=M)
        for j in range(M):
            if used[j] > 0 and (used[j] > cap[j] or eq):
                x[server == j] *= cap[j] / used[j]
    return {"server": server.tolist(), "alpha": (core.Y - w).tolist(), "f_GHz": core.f_star.tolist(),
            "fe_GHz": fe.tolist(), "p_W": p.tolist(), "b_MHz": b.tolist()}


# --- the solver -----------------------------------------------------------------------------------------
def gurobi_env(gp):
    env = gp.Env(empty=True)
    env.setParam("OutputFlag", 0)      # before start(): no licence banner, no log
    env.setParam("LogToConsole", 0)
    env.start()
    return env


_LIMITED: list[bool] = []


def size_limited_licence() -> bool:
    """Whether this Gurobi licence refuses a nonlinear model above 200 variables (the pip licence);
    probed once per process by building such a model."""
    if not _LIMITED:
        import gurobipy as gp

        env = gurobi_env(gp)
        try:
            m = gp.Model(env=env)
            x = m.addVars(201, lb=1.0, ub=2.0)
            y = m.addVar(lb=-1.0)
            m.addGenConstrNL(y, gp.nlfunc.log(x[0]))
            m.setObjective(y + x.sum())
            m.optimize()
            _LIMITED.append(False)
        except gp.GurobiError as e:
            _LIMITED.append(e.errno == 10010)
        finally:
            env.dispose()
    return _LIMITED[0]


def licence_refuses(variant, n_users: int, n_servers: int) -> str | None:
    """The reason a size-limited licence will refuse this size, from a lower bound on the variables of
    the smallest formulation that applies (never refuses a size that would fit)."""
    N, M = n_users, n_servers
    core = not (set(b.name for b in variant.blocks) - set(CORE_BLOCKS)) and variant.objective.kind == "weighted_sum" \
        and not variant.constraints and not variant.terms
    # 'lean' has N·M + 7·N variables; the variant's own model at least one per user and decision, χ per pair
    nvars = N * M + 7 * N if core else N * M + N * sum(1 for v in variant.variables(None) if v.name != "server")
    if nvars <= 200 or not size_limited_licence():
        return None
    return f"the licence's 200-variable limit for nonlinear models (at least {nvars} variables here)"


def _size_refusal(e, nvars: int, form: str):
    return InputError("<option>", "gurobi", f"unavailable for this size: Gurobi refused the {form!r} model "
                      f"({nvars} variables) with its licence: {e}",
                      "an instance within the licence's limits (the pip licence: 200 variables once anything is "
                      "nonlinear; formulation 'lean' is the smallest), or a full Gurobi licence")


def _params(mdl, opts, limit):
    mdl.Params.OutputFlag = 0
    mdl.Params.Threads = int(opts["threads"])
    mdl.Params.MIPGap = float(opts["rel_gap"])
    mdl.Params.MIPGapAbs = 1e-12
    mdl.Params.FeasibilityTol = float(opts["feastol"])
    # Gurobi's bound on this problem depends on its numerics (docs/peers.md): with its defaults it exceeded the
    # verified optimum by 1e-5 relative on default 4x2 seed 0, with OptimalityTol 1e-9 alone on 4x2 seed 2;
    # NumericFocus 2 with OptimalityTol 1e-9 kept every measured bound within 1e-7 of it.
    mdl.Params.OptimalityTol = 1e-9
    mdl.Params.NumericFocus = int(opts["numeric_focus"])
    if limit is not None:
        mdl.Params.TimeLimit = max(0.01, limit)


def _callback(tracer):
    from gurobipy import GRB

    def cb(model, where):
        if where == GRB.Callback.MIPSOL:
            val = model.cbGet(GRB.Callback.MIPSOL_OBJ)
            tracer.incumbent(val)       # Gurobi's own score (unverified); the final result carries the verified point
        elif where == GRB.Callback.MIP:
            bnd = model.cbGet(GRB.Callback.MIP_OBJBND)
            if math.isfinite(bnd) and abs(bnd) < GRB.INFINITY:
                tracer.bound(bnd)
    return cb


def solve_gurobi(problem, options, tracer):
    import gurobipy as gp
    from gurobipy import GRB

    form, cuts = options["formulation"], options["cuts"]
    rel_gap = float(options["rel_gap"])
    t0 = time.perf_counter()
    if form == "raw":
        return _solve_raw(problem, options, tracer)
    try:
        core = core_of(problem.variant, problem.instance)
    except InputError as e:
        if form != "auto":
            raise
        out = _solve_raw(problem, options, tracer)   # "auto" on a variant beyond the core: its own model
        out.extra["why_raw"] = e.problem
        return out
    env = gurobi_env(gp)
    try:
        # "auto": the per-pair form (faster where both fit), else the lean one the size-limited licence takes
        for f in (("pairs", "lean") if form == "auto" else (form,)):
            mdl, v = build_structured(gp, env, core, f, cuts)
            mdl.update()
            extra = {"formulation": f, "cuts": cuts, "variables": mdl.NumVars, "constraints": mdl.NumConstrs,
                     "nl_constraints": mdl.NumGenConstrs, "gurobi_version": ".".join(map(str, gp.gurobi.version())),
                     "build_s": time.perf_counter() - t0}
            limit = None if problem.time_limit_s is None else tracer.time_left() - 0.05
            _params(mdl, options, limit)
            try:
                mdl.optimize(_callback(tracer))
                break
            except gp.GurobiError as e:
                if e.errno != SIZE_LIMIT_ERRNO:
                    raise
                refusal = _size_refusal(e, mdl.NumVars, f)
                mdl.dispose()
        else:
            raise refusal
        return _outcome(problem, tracer, mdl, extra, rel_gap, lambda: structured_solution(core, v))
    finally:
        env.dispose()


def _outcome(problem, tracer, mdl, extra, rel_gap, read_solution):
    """Status, verified point and bound from a finished Gurobi model (shared by every formulation)."""
    from gurobipy import GRB

    st = mdl.Status
    nodes = int(mdl.NodeCount) if mdl.IsMIP else 0
    bound = float(mdl.ObjBound) if mdl.IsMIP else None
    bound = bound if bound is not None and math.isfinite(bound) and abs(bound) < GRB.INFINITY else None
    extra.update(gurobi_status=int(st), gurobi_bound=bound, nodes=nodes, gurobi_time_s=float(mdl.Runtime),
                 gurobi_incumbent=float(mdl.ObjVal) if mdl.SolCount > 0 else None)
    if mdl.SolCount == 0:
        if st == GRB.INFEASIBLE:
            return Outcome(Status.INFEASIBLE, iterations=nodes, message="Gurobi proved the model infeasible", extra=extra)
        limit_hit = st in (GRB.TIME_LIMIT, GRB.NODE_LIMIT, GRB.INTERRUPTED, GRB.ITERATION_LIMIT, GRB.SOLUTION_LIMIT)
        if bound is not None:
            tracer.bound(bound)
        return Outcome(Status.TIME_LIMIT if limit_hit else Status.ERROR, bound=bound, iterations=nodes,
                       message=f"Gurobi status {st}: no feasible point", extra=extra)
    sol = read_solution()
    ev = problem.evaluate(sol)
    obj = ev.objective
    extra["max_violation"] = ev.max_violation
    if not (ev.feasible and math.isfinite(obj)):
        return Outcome(Status.ERROR, bound=bound, iterations=nodes, extra=extra,
                       message=f"Gurobi's point (status {st}) fails the evaluator (max violation {ev.max_violation:.3g})")
    tracer.incumbent(obj, sol)
    if bound is not None:
        tracer.bound(bound)
    gap = max(0.0, obj - bound) / max(abs(obj), 1e-10) if bound is not None else math.inf
    extra["evaluator_gap"] = gap
    if st == GRB.OPTIMAL and gap <= rel_gap * (1 + 1e-9) + 1e-12:
        return Outcome(Status.OPTIMAL, solution=sol, objective=obj, bound=bound, iterations=nodes, extra=extra,
                       message=f"Gurobi proved optimality (rel_gap {rel_gap:g}; evaluator's gap {gap:.2e})")
    why = {GRB.OPTIMAL: f"Gurobi reported optimal but the evaluator's value at its point leaves gap {gap:.2e} > {rel_gap:g}",
           GRB.TIME_LIMIT: "time limit"}.get(st, f"Gurobi status {st}")
    return Outcome(Status.TIME_LIMIT, solution=sol, objective=obj, bound=bound, iterations=nodes, extra=extra,
                   message=f"Gurobi stopped: {why}")


def _solve_raw(problem, options, tracer):
    """The variant's own Pyomo model, translated by Pyomo's gurobi_direct_minlp writer."""
    import gurobipy as gp
    import pyomo.environ as pyo
    from pyomo.common.tee import capture_output
    from pyomo.contrib.solver.solvers.gurobi.gurobi_direct_minlp import GurobiMINLPWriter

    from .common import model_objective, sync_epigraphs, verified_point
    from .scip import clip_to_bounds

    t0 = time.perf_counter()
    m = problem.build_model()
    # the writer builds its model in gurobipy's default environment, whose start prints the licence banner
    with capture_output(capture_fd=True):
        grb, var_map, _obj, _cons, _pcons = GurobiMINLPWriter().write(m)
    try:
        extra = {"formulation": "raw", "variables": grb.NumVars, "constraints": grb.NumConstrs,
                 "nl_constraints": grb.NumGenConstrs, "gurobi_version": ".".join(map(str, gp.gurobi.version())),
                 "build_s": time.perf_counter() - t0}
        limit = None if problem.time_limit_s is None else tracer.time_left() - 0.05
        _params(grb, options, limit)
        try:
            grb.optimize(_callback(tracer))
        except gp.GurobiError as e:
            if e.errno == SIZE_LIMIT_ERRNO:
                raise _size_refusal(e, grb.NumVars, "raw") from None
            raise

        def read():
            for pv, gv in var_map.items():
                if not pv.fixed:
                    pv.set_value(gv.X, skip_validation=True)
            extra["clipped_max"] = clip_to_bounds(m)
            sync_epigraphs(m)
            extra["model_objective"] = model_objective(m)
            return verified_point(problem, m)[0]

        return _outcome(problem, tracer, grb, extra, float(options["rel_gap"]), read)
    finally:
        grb.dispose()
