"""The fixed-assignment continuous problem, solved exactly by KKT (docs/exact.md §3).

For fixed servers m(n) and splits α_n the problem separates per server, and inside a server into an
edge block (shares fe, budget Σ fe ≤/= F_m) and an uplink block ((p, b), budget Σ b ≤ B_m). Both are
convex (the uplink after the log change of variables) and satisfy Slater, so a budget multiplier
that makes the per-user minimisers use the budget exactly is a KKT point, i.e. the global optimum.
Σ fe(μ) and Σ b(λ) are monotone in the multiplier: a vectorised bracketed root over all servers.
"""

from __future__ import annotations

import numpy as np

from .subproblems import edge_solve, rate, root_inc


def _bandwidth(D, server):
    """λ_m and the users' (p, b) for the assignment. Per-server results are memoised on ``D`` (the
    bandwidth block of a server depends only on its user set), so local moves re-solve two servers."""
    M = D.M
    cache = D.__dict__.setdefault("_bw_cache", {})
    if len(cache) > 200000:
        cache.clear()
    rows = np.arange(D.N)
    groups = {m: tuple(np.nonzero(server == m)[0].tolist()) for m in range(M)}
    todo = np.array([m for m in range(M) if groups[m] and (m, groups[m]) not in cache], dtype=int)
    if todo.size:
        us_all = np.nonzero(np.isin(server, todo))[0]

        def solve_users(lam_user, us):
            _, p, b = D.uplink(us, server[us], lam_user)
            return p, b

        def g(y, sel):  # B_m − Σ b(λ = e^y), increasing in y
            sel = todo[sel]
            lam = np.zeros(M)
            lam[sel] = np.exp(y)
            us = us_all[np.isin(server[us_all], sel)]
            _, b = solve_users(lam[server[us]], us)
            tot = np.bincount(server[us], weights=b, minlength=M)
            return D.B[sel] - tot[sel]

        y = root_inc(g, np.full(todo.size, np.log(1e-30)), np.full(todo.size, np.log(1e15)), rtol=0.0, atol=1e-13)
        lam_t = np.zeros(M)
        lam_t[todo] = np.where(y <= np.log(1e-30), 0.0, np.exp(y))
        p, b = solve_users(lam_t[server[us_all]], us_all)
        tot = np.bincount(server[us_all], weights=b, minlength=M)
        over = tot > D.B
        b = b * np.where(over, D.B / np.where(tot > 0, tot, 1.0), 1.0)[server[us_all]]   # root tolerance
        for m in todo:
            sel = server[us_all] == m
            cache[(int(m), groups[int(m)])] = (lam_t[m], p[sel], b[sel])
    lam, p, b = np.zeros(M), np.zeros(D.N), np.zeros(D.N)
    for m in range(M):
        if groups[m]:
            lm, pm, bm = cache[(m, groups[m])]
            idx = np.array(groups[m])
            lam[m], p[idx], b[idx] = lm, pm, bm
    return lam, p, b


def _edge(D, server, k, rows=None):
    """μ_m and the shares fe for fixed servers and splits (index k into D.alphas) of the users
    ``rows`` (default: all; ``server``/``k`` are then given for those users only)."""
    M = D.M
    rows = np.arange(D.N) if rows is None else np.asarray(rows, int)
    N = rows.size
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
    x = shares(mu[server], np.arange(N))
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
    if not assignment_possible(D, server, k):
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


def assignment_possible(D, server, k):
    """The checks an assignment must pass before its continuous problem is solved: every option
    possible (split cap, rate floor and deadline reachable, Data.possible), no server above its user
    cap, no empty server under an "eq" frequency budget, the rate floors' bandwidth within each budget."""
    rows = np.arange(D.N)
    cnt = np.bincount(server, minlength=D.M)
    if not np.all(D.possible[rows, server, k]) or np.any(cnt > D.user_cap) or (D.eq_f and np.any(cnt == 0)):
        return False
    return bool(np.all(np.bincount(server, weights=D.b_floor[rows, server], minlength=D.M) <= D.B))


def to_solution(D, r):
    return {"server": r["server"].tolist(), "alpha": D.alphas[r["k"]].tolist(), "f_GHz": D.f.tolist(),
            "fe_GHz": r["x"].tolist(), "p_W": r["p"].tolist(), "b_MHz": r["b"].tolist()}
