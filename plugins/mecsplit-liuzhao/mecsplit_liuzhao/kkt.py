"""KKT residual of P3 (fixed association, α relaxed) computed independently of the FP updates.

The gradient comes from central finite differences of the framework's **evaluator** (per-user
ledgers, so one evaluation per perturbed variable gives every user's partial derivative). The
budget multipliers μ_m are estimated per server as the median of −∂H/∂x over the users strictly
inside their box (0 for a slack ≤ budget; ≥ 0 for ≤ budgets). The residual of a variable is its
projected stationarity violation (|g+μ| inside the box, the wrong-signed part at a bound), scaled to
a dimensionless number: residual · x / (H / N) — the relative change of an average user's cost per
relative change of the variable.
"""

from __future__ import annotations

import numpy as np

from mecsplit.evaluate import evaluate

from .model import VARS, pairs, to_solution


def _per_user_objective(variant, inst, sol, om) -> np.ndarray:
    ev = evaluate(variant, inst, sol)
    pu = ev.per_user
    return om["delay"] * np.asarray(pu["delay_s"]) + om["energy"] * np.asarray(pu["energy_J"]) + \
        om["stability"] * np.asarray(pu["stability"])


def gradient(variant, inst, server, x, h=1e-6) -> dict[str, np.ndarray]:
    """∂H/∂x_n for every variable and user, by central differences of the evaluator."""
    om = variant.objective.omega(inst)
    g = {}
    for k in VARS:
        xp = {kk: np.asarray(v, float).copy() for kk, v in x.items()}
        xm = {kk: np.asarray(v, float).copy() for kk, v in x.items()}
        step = h * np.abs(xp[k])
        xp[k] = xp[k] + step
        xm[k] = xm[k] - step
        g[k] = (_per_user_objective(variant, inst, to_solution(server, xp), om)
                - _per_user_objective(variant, inst, to_solution(server, xm), om)) / (2 * step)
    return g


def kkt_residual(variant, inst, server, x, P=None, h=1e-6, bound_rtol=1e-6) -> dict:
    P = P or pairs(variant, inst)
    server = np.asarray(server, int)
    x = {k: np.asarray(x[k], float) for k in VARS}
    g = gradient(variant, inst, server, x, h)
    H_user = _per_user_objective(variant, inst, to_solution(server, x), variant.objective.omega(inst))
    scale = max(float(np.sum(H_user)) / P.N, 1e-300)
    box = {"alpha": (np.full(P.N, P.alpha_lo), np.full(P.N, P.alpha_hi)),
           "f_GHz": (np.full(P.N, P.f_lo), P.f_hi),
           "fe_GHz": (np.full(P.N, P.fe_lo), P.F[server]),
           "p_W": (np.full(P.N, P.p_min), P.p_hi),
           "b_MHz": (np.full(P.N, P.b_lo), P.Bw[server])}
    budgets = {"fe_GHz": (P.F, P.fe_eq), "b_MHz": (P.Bw, P.b_eq)}
    out, mus = {}, {}
    for k in VARS:
        lo, hi = box[k]
        v, gk = x[k], g[k]
        at_lo = v <= lo + bound_rtol * np.maximum(np.abs(lo), 1e-12)
        at_hi = v >= hi - bound_rtol * np.abs(hi)
        mu = np.zeros(P.M)
        if k in budgets:
            cap, eq = budgets[k]
            used = np.bincount(server, weights=v, minlength=P.M)
            for m in range(P.M):
                sel = (server == m) & ~at_lo & ~at_hi
                if not sel.any():  # every user at a bound: the multiplier is only bracketed
                    sel = server == m
                if sel.any():
                    mu[m] = float(np.median(-gk[sel]))
                if not eq:
                    mu[m] = 0.0 if used[m] < cap[m] * (1 - 1e-7) else max(mu[m], 0.0)
            mus[k] = mu
        r = gk + mu[server]
        res = np.where(at_lo, np.maximum(-r, 0), np.where(at_hi, np.maximum(r, 0), np.abs(r)))
        out[k] = float(np.max(res * np.abs(v)) / scale)
    return {"max": max(out.values()), "per_variable": out,
            "multipliers": {k: v.tolist() for k, v in mus.items()}, "scale": scale}
