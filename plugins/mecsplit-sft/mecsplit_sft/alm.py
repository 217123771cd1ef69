"""Large timescale (SFT §2.4): the augmented Lagrangian method over the split α and the keep ratio ρ.

The large-timescale decisions hold across the T slots and must anticipate the small-timescale response
to each slot's channel. As a sample-average two-stage program (the slots are the samples) that is

    min_{α, ρ, fe_t, b_t, τ_t}  (1/T) Σ_t τ_t
    s.t.  delay_{t,n}(α_n, ρ_n, fe_{t,n}, b_{t,n}) ≤ τ_t,   Σ_{n∈m} fe_{t,n} ≤ F_m,   Σ_{n∈m} b_{t,n} ≤ W_m   (recourse)
          (1/N) Σ_n δ(ρ_n) ≤ δ_max                                           (accuracy, dualised)
          α_n ≤ ᾱ_n  (the memory cap in whole blocks)                         (memory, dualised)
          α ∈ [α_lo, α_box], ρ ∈ [ρ_min, ρ_max]  (α relaxed to real numbers)

The ALM moves the accuracy and memory constraints into the objective with multipliers λ and a penalty c
(Rockafellar's form for inequalities): ψ(g, λ, c) = (max(0, λ + c·g)² − λ²)/(2c); after each inner solve
λ ← max(0, λ + c·g) and c grows ×10 when the violation did not fall below a quarter of the last one.
The inner problem (bounds, epigraphs and budgets only) is solved by CasADi's Ipopt (exact Hessian), built
once per shape with every number a parameter, so one build serves every outer iteration and instance.
Variables are scaled: u = fe/F_m, v = b/W_m, z = τ/D0. ``tied`` shares one (fe, b) across the slots (the
static baseline); fixing any variable is done through its bounds.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

LN2 = math.log(2.0)


@dataclass
class AlmResult:
    alpha: np.ndarray
    rho: np.ndarray
    fe: np.ndarray          # (T, N)
    b: np.ndarray           # (T, N)
    objective: float        # the slot-averaged max delay at the returned point (s), constraints aside
    violation: float        # max of the dualised constraints' violations (accuracy: in δ; memory: in blocks)
    iterations: int         # ALM outer iterations
    inner_iterations: int   # Ipopt iterations, summed
    trace: list = field(default_factory=list)
    time_s: float = 0.0
    multipliers: tuple = ()  # (λ_acc, λ_mem, c, Ipopt's lam_x, lam_g): a warm start for the next call


def _build(N: int, M: int, T: int, server: tuple, tied: bool, tol: float, max_iter: int, warm: bool):
    import casadi as ca

    K = 1 if tied else T
    a, r = ca.SX.sym("alpha", N), ca.SX.sym("rho", N)
    u, v, z = ca.SX.sym("u", K * N), ca.SX.sym("v", K * N), ca.SX.sym("z", T)
    P = ca.SX.sym("p", (7 + T) * N + 8)   # 7 vectors, the T slots' a·p_max, 8 scalars (see solve_alm)
    col = lambda i: P[i * N:(i + 1) * N]     # noqa: E731
    t_dev, e, D, Fn, Wn, lam_mem, a_cap = (col(i) for i in range(7))
    ap = [P[(7 + t) * N:(8 + t) * N] for t in range(T)]
    L, q, c0, eps, dmax, lam_acc, c, D0 = (P[(7 + T) * N + i] for i in range(8))
    h2 = -(r * ca.log(r) + (1 - r) * ca.log(1 - r)) / LN2
    S = (D * (r * q + h2) + c0) / 1e6
    g = []
    for t in range(T):
        k = 0 if tied else t
        ut, vt = u[k * N:(k + 1) * N], v[k * N:(k + 1) * N]
        b = vt * Wn
        rate = b * ca.log1p(ap[t] / b) / LN2
        g.append((a * t_dev + (L - a) * e / (ut * Fn) + S / rate) / D0 - z[t])
    onehot = np.zeros((M, N))
    onehot[list(server), np.arange(N)] = 1.0
    H = ca.DM(onehot)
    for k in range(K):
        g.append(ca.mtimes(H, u[k * N:(k + 1) * N]))
        g.append(ca.mtimes(H, v[k * N:(k + 1) * N]))
    psi = lambda gv, lam: (ca.fmax(0, lam + c * gv) ** 2 - lam ** 2) / (2 * c)   # noqa: E731
    g_acc = ca.sum1(1 - (1 - eps) * r) / N - dmax
    f = ca.sum1(z) / T + psi(g_acc, lam_acc) + ca.sum1(psi((a - a_cap) / L, lam_mem))
    nlp = {"x": ca.vertcat(a, r, u, v, z), "p": P, "f": f, "g": ca.vertcat(*g)}
    ipopt = {"print_level": 0, "sb": "yes", "tol": tol, "max_iter": max_iter}
    if warm:   # from the previous solve's primal-dual point (measured: 8-11 Ipopt iterations instead of ~60)
        ipopt.update(warm_start_init_point="yes", mu_init=1e-6, warm_start_bound_push=1e-9, warm_start_mult_bound_push=1e-9)
    return ca.nlpsol("sft_alm", "ipopt", nlp, {"print_time": False, "ipopt": ipopt})


def solve_alm(d, alpha0, rho0, fe0, b0, *, fix_alpha: bool = False, fix_rho: bool = False, fix_b: bool = False,
              tied: bool = False, max_outer: int = 20, c0: float = 10.0, c_max: float = 1e6, feas_tol: float = 1e-7,
              tol: float = 1e-9, max_inner: int = 500, cache: dict | None = None, deadline: float = math.inf,
              warm: tuple = ()) -> AlmResult:
    """The ALM from (alpha0, rho0, fe0, b0); a fixed variable keeps its start value. ``warm``: the
    ``multipliers`` of an earlier result of the same shape (λ, c and Ipopt's multipliers)."""
    t_start = time.perf_counter()
    N, M, T = d.N, d.M, d.T
    K = 1 if tied else T
    cache = {} if cache is None else cache
    def solver_for(warm_start: bool):   # built once per shape (every number is a parameter)
        key = ("alm", N, M, T, tuple(d.server.tolist()), tied, tol, max_inner, warm_start)
        if key not in cache:
            cache[key] = _build(N, M, T, tuple(d.server.tolist()), tied, tol, max_inner, warm_start)
        return cache[key]

    Fn, Wn = d.F[d.server], d.W[d.server]
    fe0, b0 = np.atleast_2d(fe0), np.atleast_2d(b0)
    u0 = np.clip(fe0 / Fn, d.fe_min / Fn, 1.0)
    v0 = np.clip(b0 / Wn, d.b_min / Wn, 1.0)
    if tied:
        u0, v0 = u0.mean(axis=0, keepdims=True), v0.mean(axis=0, keepdims=True)
    D0 = max(d.objective(alpha0, rho0, u0 * Fn, v0 * Wn), 1e-9)
    acc = d.delta_max is not None
    a_lo, a_hi = (alpha0, alpha0) if fix_alpha else (d.alpha_lo, d.alpha_box_hi)
    r_lo, r_hi = (rho0, rho0) if fix_rho else (np.full(N, d.rho_min), np.full(N, d.rho_max))
    v_lo, v_hi = (v0.ravel(), v0.ravel()) if fix_b else (np.tile(d.b_min / Wn, K), np.ones(K * N))
    lbx = np.concatenate([a_lo, r_lo, np.tile(d.fe_min / Fn, K), v_lo, np.zeros(T)])
    ubx = np.concatenate([a_hi, r_hi, np.ones(K * N), v_hi, np.full(T, np.inf)])
    ubg = np.concatenate([np.zeros(T * N), np.ones(2 * K * M)])
    lbg = np.full(ubg.shape, -np.inf)
    lam_mem, lam_acc, c = np.zeros(N), 0.0, c0
    duals = None
    if warm:   # the ALM's multipliers; Ipopt's too unless they are None (a new primal start)
        lam_acc, lam_mem, c = warm[0], np.asarray(warm[1]).copy(), warm[2]
        duals = (warm[3], warm[4]) if warm[3] is not None else None
    z0 = np.max(d.delays(alpha0, rho0, u0 * Fn, v0 * Wn), axis=1) / D0
    x = np.concatenate([alpha0, rho0, u0.ravel(), v0.ravel(), z0])
    trace, inner, last_viol = [], 0, math.inf
    k = 0
    for k in range(1, max_outer + 1):
        p = np.concatenate([d.t_dev, d.e_edge, d.D, Fn, Wn, lam_mem, d.alpha_hi, d.ap.ravel(),
                            [d.L, d.q_bits, d.c0_bits, d.eps, d.delta_max if acc else 2.0, lam_acc, c, D0]])
        solver = solver_for(duals is not None)
        start = {"x0": x} if duals is None else {"x0": x, "lam_x0": duals[0], "lam_g0": duals[1]}
        sol = solver(**start, p=p, lbx=lbx, ubx=ubx, lbg=lbg, ubg=ubg)
        inner += int(solver.stats().get("iter_count", 0))
        x = np.asarray(sol["x"]).ravel()
        duals = (np.asarray(sol["lam_x"]).ravel(), np.asarray(sol["lam_g"]).ravel())
        a, r = x[:N], x[N:2 * N]
        g_acc = d.distortion_excess(r) if acc else -math.inf
        g_mem = (a - d.alpha_hi) / d.L
        viol = max(max(g_acc, 0.0), float(np.max(g_mem, initial=0.0)))
        # the ALM residual |max(g, −λ/c)|: zero iff feasible and complementary (a slack constraint with λ > 0
        # is not converged: its multiplier must first fall to zero)
        resid = max(abs(max(g_acc, -lam_acc / c)) if acc else 0.0, float(np.max(np.abs(np.maximum(g_mem, -lam_mem / c)))))
        obj = float(np.mean(x[-T:])) * D0
        trace.append({"outer": k, "objective_s": obj, "violation": viol, "residual": resid, "lambda_acc": lam_acc,
                      "lambda_mem_max": float(lam_mem.max()), "c": c, "ipopt": solver.stats().get("return_status", "")})
        if acc:
            lam_acc = max(0.0, lam_acc + c * g_acc)
        lam_mem = np.maximum(0.0, lam_mem + c * g_mem)
        if resid <= feas_tol:
            break
        if resid > 0.25 * last_viol:
            c = min(c * 10, c_max)
        last_viol = resid
        if time.perf_counter() > deadline:
            break
    u = x[2 * N:2 * N + K * N].reshape(K, N)
    v = x[2 * N + K * N:2 * N + 2 * K * N].reshape(K, N)
    fe, b = np.broadcast_to(u * Fn, (T, N)).copy(), np.broadcast_to(v * Wn, (T, N)).copy()
    return AlmResult(x[:N].copy(), x[N:2 * N].copy(), fe, b, d.objective(x[:N], x[N:2 * N], fe, b), trace[-1]["violation"],
                     k, inner, trace, time.perf_counter() - t_start, (lam_acc, lam_mem, c, *duals))
