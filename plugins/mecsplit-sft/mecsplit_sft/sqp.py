"""Small timescale (SFT §2.4): in every slot, the spectrum and the server's GPU share for fixed (α, ρ).

    min τ   s.t.   A_n + E_n/fe_n + S_n/r_{t,n}(b_n) ≤ τ  ∀n,   Σ_{n∈m} fe_n ≤ F_m,  Σ_{n∈m} b_n ≤ W_m  ∀m

(A_n = α_n·t_n device time, E_n = (Υ − α_n)·e_n edge work in s·GHz, S_n = S_n(ρ_n) Mbit.) It is convex:
E/fe and S/r(b) are convex and decreasing. Variables are scaled to budget fractions u = fe/F_m,
v = b/W_m and τ to the slot's starting delay. Two interchangeable methods, both warm-started:

* ``slsqp`` — sequential quadratic programming, the paper's method: scipy's SLSQP (BFGS Hessian, dense
  least-squares QP subproblems) with analytic gradients;
* ``ipopt`` — CasADi's Ipopt (interior point, exact Hessian) on the same problem, built once per shape and
  reused. Measured about 100× faster than SLSQP at 50 devices for the same optimum (docs/sft.md §3), so
  it is the default. (CasADi's own ``sqpmethod`` with the qrqp QP solver was tried: slower still, and it
  stopped away from the optimum.)

``fix_b`` keeps the bandwidth at the given values (the equal-bandwidth baseline).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

LN2 = math.log(2.0)
METHODS = ("ipopt", "slsqp")   # CasADi Ipopt | scipy SLSQP (docs/sft.md §3 has the measured ratio)


@dataclass
class SlotResult:
    fe: np.ndarray      # (N,) GHz
    b: np.ndarray       # (N,) MHz
    tau: float          # s, the slot's max delay at (fe, b)
    iterations: int
    ok: bool
    time_s: float


def _rate_and_slope(b, ap):
    """r(b) = b log2(1 + ap/b) and dr/db = log2(1 + x) − x/((1 + x) ln 2), x = ap/b."""
    x = ap / b
    return b * np.log1p(x) / LN2, np.log1p(x) / LN2 - x / ((1 + x) * LN2)


def solve_slot(d, t: int, alpha, rho, fe0, b0, method: str = "slsqp", fix_b: bool = False,
               tol: float = 1e-10, max_iter: int = 200, cache: dict | None = None) -> SlotResult:
    t0 = time.perf_counter()
    A = alpha * d.t_dev
    E = (d.L - alpha) * d.e_edge
    S = d.size_Mbit(rho)
    ap = d.ap[t]
    Fn, Wn = d.F[d.server], d.W[d.server]
    u_lo, v_lo = d.fe_min / Fn, d.b_min / Wn
    u0 = np.clip(fe0 / Fn, u_lo, 1.0)
    v0 = np.clip(b0 / Wn, v_lo, 1.0)
    D0 = float(np.max(A + E / (u0 * Fn) + S / _rate_and_slope(v0 * Wn, ap)[0]))
    if method not in METHODS:
        raise ValueError(f"unknown small-timescale method {method!r} ({', '.join(METHODS)})")
    solve = _slsqp if method == "slsqp" else _ipopt
    u, v, it, ok = solve(d, A, E, S, ap, Fn, Wn, u_lo, v_lo, u0, v0, D0, fix_b, tol, max_iter, cache, method)
    fe, b = u * Fn, v * Wn
    r = _rate_and_slope(b, ap)[0]
    tau = float(np.max(A + E / fe + S / r))
    return SlotResult(fe, b, tau, it, ok, time.perf_counter() - t0)


def _slsqp(d, A, E, S, ap, Fn, Wn, u_lo, v_lo, u0, v0, D0, fix_b, tol, max_iter, cache, method):
    from scipy.optimize import minimize   # imported on use: listing plugins loads no solver stack
    N, M, srv = d.N, d.M, d.server
    onehot = np.zeros((M, N))
    onehot[srv, np.arange(N)] = 1.0

    def delay(x):
        u, v = x[:N], x[N:2 * N]
        r = _rate_and_slope(v * Wn, ap)[0]
        return (A + E / (u * Fn) + S / r) / D0

    def cons(x):
        u, v = x[:N], x[N:2 * N]
        return np.concatenate([x[-1] - delay(x), 1 - onehot @ u, 1 - onehot @ v])

    def cons_jac(x):
        u, v = x[:N], x[N:2 * N]
        r, dr = _rate_and_slope(v * Wn, ap)
        J = np.zeros((N + 2 * M, 2 * N + 1))
        idx = np.arange(N)
        J[idx, idx] = E / (Fn * u**2) / D0                  # −∂delay/∂u
        J[idx, N + idx] = S / r**2 * dr * Wn / D0            # −∂delay/∂v
        J[:N, -1] = 1.0
        J[N:N + M, :N] = -onehot
        J[N + M:, N:2 * N] = -onehot
        return J

    x0 = np.concatenate([u0, v0, [1.0]])
    x0[-1] = float(np.max(delay(x0)))
    bounds = [(lo, 1.0) for lo in u_lo] + ([(v, v) for v in v0] if fix_b else [(lo, 1.0) for lo in v_lo]) + [(0.0, None)]
    res = minimize(lambda x: x[-1], x0, jac=lambda x: np.eye(1, 2 * N + 1, 2 * N)[0], method="SLSQP", bounds=bounds,
                   constraints=[{"type": "ineq", "fun": cons, "jac": cons_jac}],
                   options={"ftol": tol, "maxiter": max_iter})
    x = res.x if np.all(np.isfinite(res.x)) else x0
    return np.clip(x[:N], u_lo, 1.0), np.clip(x[N:2 * N], v_lo, 1.0), int(res.nit), bool(res.success)


def _ipopt(d, A, E, S, ap, Fn, Wn, u_lo, v_lo, u0, v0, D0, fix_b, tol, max_iter, cache, method):
    import casadi as ca

    N, M, srv = d.N, d.M, d.server
    key = (method, N, M, tuple(srv), tol, max_iter)
    cache = {} if cache is None else cache
    if key not in cache:
        u, v, z = ca.SX.sym("u", N), ca.SX.sym("v", N), ca.SX.sym("z")
        P = ca.SX.sym("p", 6 * N + 1)     # A, E, S, ap, Fn, Wn, D0
        pA, pE, pS, pap, pF, pW = (P[i * N:(i + 1) * N] for i in range(6))
        b = v * pW
        r = b * ca.log1p(pap / b) / LN2
        delay = (pA + pE / (u * pF) + pS / r) / P[-1]
        onehot = np.zeros((M, N))
        onehot[srv, np.arange(N)] = 1.0
        g = ca.vertcat(delay - z, ca.mtimes(ca.DM(onehot), u), ca.mtimes(ca.DM(onehot), v))
        nlp = {"x": ca.vertcat(u, v, z), "p": P, "f": z, "g": g}
        cache[key] = ca.nlpsol("slot", "ipopt", nlp, {"print_time": False, "ipopt": {
            "print_level": 0, "sb": "yes", "tol": tol, "max_iter": max_iter}})
    solver = cache[key]
    x0 = np.concatenate([u0, v0, [float(np.max((A + E / (u0 * Fn) + S / _rate_and_slope(v0 * Wn, ap)[0]) / D0))]])
    lbx = np.concatenate([u_lo, v0 if fix_b else v_lo, [0.0]])
    ubx = np.concatenate([np.ones(N), v0 if fix_b else np.ones(N), [np.inf]])
    lbg = np.concatenate([np.full(N, -np.inf), np.full(2 * M, -np.inf)])
    ubg = np.concatenate([np.zeros(N), np.ones(2 * M)])
    p = np.concatenate([A, E, S, ap, Fn, Wn, [D0]])
    sol = solver(x0=x0, p=p, lbx=lbx, ubx=ubx, lbg=lbg, ubg=ubg)
    st = solver.stats()
    x = np.asarray(sol["x"]).ravel()
    return (np.clip(x[:N], u_lo, 1.0), np.clip(x[N:2 * N], v_lo if not fix_b else v0, 1.0 if not fix_b else v0),
            int(st.get("iter_count", 0)), bool(st.get("success", False)))


def solve_slots(d, alpha, rho, fe, b, method: str = "slsqp", fix_b: bool = False, cache: dict | None = None,
                **kw) -> tuple[np.ndarray, np.ndarray, list[SlotResult]]:
    """Every slot's SQP (warm-started from fe, b of shape (T, N)); returns the new (fe, b) and the per-slot results."""
    out = [solve_slot(d, t, alpha, rho, fe[t], b[t], method, fix_b, cache=cache, **kw) for t in range(d.T)]
    return np.stack([r.fe for r in out]), np.stack([r.b for r in out]), out
