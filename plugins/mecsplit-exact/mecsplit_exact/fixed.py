"""The fixed-assignment continuous problem, solved exactly by KKT (docs/exact.md §3).

For fixed servers m(n) and splits α_n the problem separates per server, and inside a server into an
edge block (shares fe, budget Σ fe ≤/= F_m) and an uplink block ((p, b), budget Σ b ≤ B_m). Both are
convex (the uplink after the log change of variables) and satisfy Slater, so a budget multiplier
that makes the per-user minimisers use the budget exactly is a KKT point, i.e. the global optimum.
Σ fe(μ) and Σ b(λ) are monotone in the multiplier: a vectorised bracketed root over all servers.
"""

from __future__ import annotations

import numpy as np

from .subproblems import edge_solve, rate, root_inc, uplink_solve


def _bandwidth(D, server):
    """λ_m and the users' (p, b, uplink cost) for the assignment."""
    M = D.M
    cnt = np.bincount(server, minlength=M)
    a = D.a[np.arange(D.N), server]

    def solve_users(lam_user, sel_users):
        _, p, b = uplink_solve(a[sel_users], D.c0[sel_users], D.c1[sel_users], lam_user, D.p_lo[sel_users],
                               D.p_hi[sel_users], D.b_lo, D.B[server[sel_users]])
        return p, b

    def g(y, sel):  # B_m − Σ b(λ = e^y), increasing in y
        sel = act[sel]
        lam = np.zeros(M)
        lam[sel] = np.exp(y)
        us = np.nonzero(np.isin(server, sel))[0]
        _, b = solve_users(lam[server[us]], us)
        tot = np.bincount(server[us], weights=b, minlength=M)
        return D.B[sel] - tot[sel]

    act = np.nonzero(cnt > 0)[0]
    lam = np.zeros(M)
    if act.size:
        y = root_inc(g, np.full(act.size, np.log(1e-30)), np.full(act.size, np.log(1e15)), rtol=0.0, atol=1e-13)
        lam[act] = np.where(y <= np.log(1e-30), 0.0, np.exp(y))
    p, b = solve_users(lam[server], np.arange(D.N))
    tot = np.bincount(server, weights=b, minlength=M)
    over = tot > D.B
    if np.any(over):  # root tolerance: scale onto the budget
        b = b * np.where(over, D.B / np.where(tot > 0, tot, 1.0), 1.0)[server]
    return lam, p, b


def _edge(D, server, k):
    """μ_m and the shares fe for fixed splits (index k into D.alphas)."""
    M, N = D.M, D.N
    rows = np.arange(N)
    w = D.w[k]
    t, e = D.t[rows, server], D.e[rows, server]
    Fm = D.F[server]
    cnt = np.bincount(server, minlength=M)
    big = np.zeros(M)
    np.maximum.at(big, server, w * t / D.fe_lo**2 + 2 * w * e * Fm + 1.0)

    def shares(mu_user, us):
        return edge_solve(w[us], t[us], e[us], mu_user, D.fe_lo, Fm[us])[1]

    def g(mu, sel):  # F_m − Σ fe(μ), increasing in μ
        sel = act[sel]
        mus = np.zeros(M)
        mus[sel] = mu
        us = np.nonzero(np.isin(server, sel))[0]
        tot = np.bincount(server[us], weights=shares(mus[server[us]], us), minlength=M)
        return D.F[sel] - tot[sel]

    act = np.nonzero(cnt > 0)[0]
    mu = np.zeros(M)
    if act.size:
        lo = -big[act] if D.eq_f else np.zeros(act.size)
        mu[act] = root_inc(g, lo, big[act], rtol=1e-15, atol=0.0)
    x = shares(mu[server], rows)
    tot = np.bincount(server, weights=x, minlength=M)
    if D.eq_f:  # exact equality: distribute the root residual proportionally
        x = x * (D.F / np.where(tot > 0, tot, 1.0))[server]
    else:
        over = tot > D.F
        x = x * np.where(over, D.F / np.where(tot > 0, tot, 1.0), 1.0)[server]
    return mu, x


def objective(D, server, k, x, p, b):
    rows = np.arange(D.N)
    w = D.w[k]
    a = D.a[rows, server]
    per = (D.user_part[rows, k] + w * (D.t[rows, server] / x + D.e[rows, server] * x * x)
           + (D.c0 + D.c1 * p) / rate(p, b, a))
    return float(np.sum(per))


def solve_fixed(D, server, k, improve_alpha=True, max_rounds=20):
    """Optimal resources for a fixed assignment; with ``improve_alpha`` the splits are re-chosen
    against the server multipliers until they stop changing (keeps the best). Returns a dict."""
    server = np.asarray(server, int)
    k = np.asarray(k, int).copy()
    if D.eq_f and np.any(np.bincount(server, minlength=D.M) == 0):
        return None
    lam, p, b = _bandwidth(D, server)
    best = None
    seen = set()
    for _ in range(max_rounds):
        mu, x = _edge(D, server, k)
        obj = objective(D, server, k, x, p, b)
        if best is None or obj < best["obj"]:
            best = {"obj": obj, "server": server.copy(), "k": k.copy(), "x": x, "p": p, "b": b, "lam": lam, "mu": mu}
        if not improve_alpha or D.K == 1:
            break
        seen.add(k.tobytes())
        E, _ = edge_solve(D.w[None, :], D.t[np.arange(D.N), server][:, None], D.e[np.arange(D.N), server][:, None],
                          mu[server][:, None], D.fe_lo, D.F[server][:, None])
        kn = np.argmin(D.user_part + E, axis=1)
        if kn.tobytes() in seen:
            break
        k = kn
    return best


def to_solution(D, r):
    return {"server": r["server"].tolist(), "alpha": D.alphas[r["k"]].tolist(), "f_GHz": D.f.tolist(),
            "fe_GHz": r["x"].tolist(), "p_W": r["p"].tolist(), "b_MHz": r["b"].tolist()}
