"""Per-option subproblems with the user's deadline, for the weighted-sum objective (docs/exact.md §7b).

For option o = (n, m, k) at budget prices (λ, μ) the user's own problem gains the constraint
delay_n = α tU/f + w tE/fe + s/r(p, b) ≤ D_n (the delay ledger, unweighted). With a multiplier ν ≥ 0
its Lagrangian is the same problem with the delay weight raised — aT + ν tU, t + ν tE, c0 + ν s — minus
ν D_n, so for fixed ν the closed forms / monotone roots of subproblems.py apply unchanged:

    g_o(ν) = min_x [cost_o(x) + μ fe + λ b + ν (delay(x) − D_n)]      concave in ν, g'(ν) = delay(x_ν) − D_n.

The per-option problem is convex (in f, fe and (log p, log b)) with a Slater point whenever D_n exceeds
the option's least delay (Data.possible), so max_ν g_o(ν) is its exact minimum; the maximiser is the
root of the decreasing delay(x_ν) − D_n, found in log ν. **Every g_o(ν) is a lower bound** on the
option's minimum (weak duality), so what is returned as the option's value is g_o at the ν found —
valid even where the root is inexact — and x_ν its minimiser (exactly on the deadline at the root).
"""

from __future__ import annotations

import numpy as np

from .subproblems import edge_solve, rate, root_inc, uplink_solve


def _at(D, P, nu, sel):
    """Minimisers and pieces at multipliers nu for the options ``sel`` of the prepared set P."""
    aT = P["aT"][sel] + nu * P["tU"][sel]
    aE = P["aE"][sel]
    with np.errstate(divide="ignore", invalid="ignore"):
        fs = np.where(aE > 0, np.cbrt(aT / (2 * np.where(aE > 0, aE, 1.0))), np.inf)
    f = np.clip(fs, D.f_min, P["fmax"][sel])
    al, w = P["al"][sel], P["w"][sel]
    Ev, fe = edge_solve(w, P["t"][sel] + nu * P["tE"][sel], P["e"][sel], P["mu"][sel], D.fe_lo, P["F"][sel])
    Uv, p, b = uplink_solve(P["a"][sel], P["c0"][sel] + nu * P["s"][sel], P["c1"][sel], P["lam"][sel], P["plo"][sel],
                            P["phi"][sel], P["blo"][sel], P["B"][sel], P["rmin"][sel])
    with np.errstate(divide="ignore", invalid="ignore"):
        up_t = np.where(P["s"][sel] > 0, P["s"][sel] / rate(p, b, P["a"][sel]), 0.0)
    delay = al * P["tU"][sel] / f + w * P["tE"][sel] / fe + up_t
    val = al * (aT / f + aE * f * f) + P["stab"][sel] + Ev + Uv - nu * P["dl"][sel]
    return val, delay, f, fe, p, b


def joint(D, n, m, k, lam, mu):
    """Options (n, m, k) (index arrays, broadcast with lam, mu) with their users' deadlines: returns
    (value, f, fe, p, b, nu, delay) flat. value = g_o(ν) ≥ nothing above the option's true minimum;
    +inf for impossible options (Data.possible)."""
    arrs = np.broadcast_arrays(n, m, k, lam, mu)
    n, m, k, lam, mu = (np.ascontiguousarray(v).ravel() for v in arrs)
    lam, mu = lam.astype(float), mu.astype(float)
    al = D.alphas[k]
    P = {"aT": D.aT[n], "aE": D.aE[n], "tU": D.tU[n], "fmax": D.f_max[n], "al": al, "w": D.w[k],
         "t": D.t[n, m], "e": D.e[n, m], "tE": D.tE[n, m], "mu": mu, "F": D.F[m], "a": D.a[n, m], "c0": D.c0[n],
         "c1": D.c1[n], "s": D.s_delay[n], "lam": lam, "plo": D.p_lo[n], "phi": D.p_hi[n], "blo": D.b_floor[n, m],
         "B": D.B[m], "rmin": D.rmin[n], "dl": D.deadline_s[n],
         "stab": D.user_part_free[n, k] - al * D.A[n]}
    ok = D.possible[n, m, k]
    P["dl"] = np.where(np.isfinite(P["dl"]), P["dl"], 0.0)
    all_ = np.arange(n.size)
    nu = np.zeros(n.size)
    val, delay, f, fe, p, b = _at(D, P, nu, all_)
    late = np.nonzero(ok & np.isfinite(D.deadline_s[n]) & (delay > D.deadline_s[n]))[0]
    if late.size:
        # ν's natural scale: the option's cost per second of delay at ν = 0
        scale = np.log(np.maximum(np.abs(val[late]), 1e-300) / np.maximum(D.deadline_s[n[late]], 1e-300))
        g = lambda y, i: P["dl"][late[i]] - _at(D, P, np.exp(y), late[i])[1]
        y = root_inc(g, scale - 30.0, scale + 30.0, rtol=0.0, atol=1e-13, bisect=3)
        nu[late] = np.exp(y)
        out = _at(D, P, nu[late], late)
        val[late], delay[late], f[late], fe[late], p[late], b[late] = out
    val = np.where(ok, val, np.inf)
    return val, f, fe, p, b, nu, delay


def deadline_options(D, lam, mu, allowed=None, klo=None, khi=None):
    """Every possible option of the users with a deadline (inside the node's ``allowed`` servers and
    split ranges) with its joint value at the servers' prices: (n, m, k, value, fe, b)."""
    users = np.nonzero(np.isfinite(D.deadline_s))[0]
    mask = D.possible[users].copy()
    if allowed is not None:
        mask &= allowed[users][:, :, None]
    if klo is not None:
        kk = np.arange(D.K)
        mask &= (kk[None, :] >= klo[users][:, None])[:, None, :] & (kk[None, :] <= khi[users][:, None])[:, None, :]
    i, m, k = np.nonzero(mask)
    n = users[i]
    val, _, fe, _, b, _, _ = joint(D, n, m, k, lam[m], mu[m])
    return n, m, k, val, fe, b
