"""The fixed-assignment continuous problem, solved exactly by KKT (docs/exact.md §3).

For fixed servers m(n) and splits α_n the problem separates per server, and inside a server into an
edge block (shares fe, budget Σ fe ≤/= F_m) and an uplink block ((p, b), budget Σ b ≤ B_m). Both are
convex (the uplink after the log change of variables) and satisfy Slater, so a budget multiplier
that makes the per-user minimisers use the budget exactly is a KKT point, i.e. the global optimum.
Σ fe(μ) and Σ b(λ) are monotone in the multiplier: a vectorised bracketed root over all servers.
"""

from __future__ import annotations

import numpy as np

from .subproblems import edge_solve, rate, root_inc, root_near

WARM = np.log(2.0)   # half-width (in log λ) of the first bracket around a server's last bandwidth price
WARM_USERS = 4       # ... used when the server's set differs from its last one by at most this many users (a swap away from a swap)


def _bandwidth(D, server, nu=None):
    """λ_m and the users' (p, b) for the assignment. Per-server results are memoised on ``D`` (the
    bandwidth block of a server depends only on its user set), so local moves re-solve two servers.
    ``nu`` (N,): deadline multipliers raising the users' delay weights (not memoised)."""
    M = D.M
    memo = nu is None
    cache = D.__dict__.setdefault("_bw_cache", {}) if memo else {}
    last = D.__dict__.setdefault("_bw_last", {})    # server -> (its last user set, that set's price λ)
    nu = np.zeros(D.N) if nu is None else nu
    if len(cache) > 200000:
        cache.clear()
    rows = np.arange(D.N)
    groups = {m: tuple(np.nonzero(server == m)[0].tolist()) for m in range(M)}
    todo = np.array([m for m in range(M) if groups[m] and (m, groups[m]) not in cache], dtype=int)
    if todo.size:
        us_all = np.nonzero(np.isin(server, todo))[0]

        guess = np.zeros(D.N)     # each user's b at the previous price: the next root is near it

        def solve_users(lam_user, us):
            _, p, b = D.uplink(us, server[us], lam_user, nu[us], near=guess[us])
            guess[us] = b
            return p, b

        def g(y, sel):  # B_m − Σ b(λ = e^y), increasing in y
            sel = todo[sel]
            lam = np.zeros(M)
            lam[sel] = np.exp(y)
            us = us_all[np.isin(server[us_all], sel)]
            _, b = solve_users(lam[server[us]], us)
            tot = np.bincount(server[us], weights=b, minlength=M)
            return D.B[sel] - tot[sel]

        # a server whose set is its last one give or take WARM_USERS users (a local-search step) starts near
        # that set's price; any other (no guess: −inf) on the wide bracket
        centre = np.full(todo.size, -np.inf)
        for i, m in enumerate(todo if memo else ()):
            users, lam_m = last.get(int(m), ((), 0.0))
            if lam_m > 0 and len(set(users) ^ set(groups[int(m)])) <= WARM_USERS:
                centre[i] = np.log(lam_m)
        y = root_near(g, np.full(todo.size, np.log(1e-30)), np.full(todo.size, np.log(1e15)), centre, WARM,
                      rtol=0.0, atol=1e-13)
        lam_t = np.zeros(M)
        lam_t[todo] = np.where(y <= np.log(1e-30), 0.0, np.exp(y))
        if memo:
            last.update((int(m), (groups[int(m)], lam_t[m])) for m in todo)
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


def _edge(D, server, k, rows=None, nu=None):
    """μ_m and the shares fe for fixed servers and splits (index k into D.alphas) of the users
    ``rows`` (default: all; ``server``/``k`` are then given for those users only); ``nu``: deadline
    multipliers of those users, raising their delay weights."""
    M = D.M
    rows = np.arange(D.N) if rows is None else np.asarray(rows, int)
    N = rows.size
    w = D.w[k]
    t, e = D.t[rows, server], D.e[rows, server]
    if nu is not None:
        t = t + nu * D.tE[rows, server]
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


def objective(D, server, k, x, p, b, f=None):
    """The weighted-sum objective at a point (f: the users' GPU frequencies, default the closed form)."""
    rows = np.arange(D.N)
    w = D.w[k]
    a = D.a[rows, server]
    user = D.user_part[rows, k] if f is None else (D.user_part[rows, k] - D.alphas[k] * D.A
                                                   + D.alphas[k] * (D.aT / f + D.aE * f * f))
    per = (user + w * (D.t[rows, server] / x + D.e[rows, server] * x * x)
           + (D.c0 + D.c1 * p) / rate(p, b, a))
    return float(np.sum(per))


def solve_fixed(D, server, k, improve_alpha=True, max_rounds=20):
    """Optimal resources for a fixed assignment; with ``improve_alpha`` the splits are re-chosen
    against the server multipliers until they stop changing (keeps the best). Returns a dict."""
    server = np.asarray(server, int)
    k = np.asarray(k, int).copy()
    if not assignment_possible(D, server, k):
        return None
    if D.has_deadline and np.isfinite(D.deadline_s).any():
        return _with_deadlines(D, server, k)
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


def _with_deadlines(D, server, k, max_rounds=60):
    """The fixed-assignment problem with per-user deadlines (docs/exact.md §7b). For deadline multipliers
    ν the problem separates again into the edge and uplink blocks with raised delay weights (joint.py),
    solved exactly above. KKT: ν_n ≥ 0, delay_n(ν) ≤ D_n, ν_n (delay_n − D_n) = 0. Each user's delay
    falls as its own ν rises, so every late user's log ν is moved by a secant step on log(delay/D)
    (started from its best response at the blocks' prices, joint.joint), safeguarded by a bracket.
    None when the servers cannot meet the deadlines at all (timing.Timing.check) or no point meeting
    them is reached."""
    from .joint import joint
    from .timing import Timing

    ex = Timing(D).check(server, k, D.deadline_s)[0]
    if np.any(ex > 0):
        return None
    rows = np.arange(D.N)
    al = D.alphas[k]
    dl = D.deadline_s
    us = np.nonzero(np.isfinite(dl))[0]

    def blocks(nu):
        lam, p, b = _bandwidth(D, server, nu)
        mu, x = _edge(D, server, k, nu=nu)
        aT = D.aT + nu * D.tU
        with np.errstate(divide="ignore", invalid="ignore"):
            fs = np.where(D.aE > 0, np.cbrt(aT / (2 * np.where(D.aE > 0, D.aE, 1.0))), np.inf)
        f = np.clip(fs, D.f_min, D.f_max)
        with np.errstate(divide="ignore"):
            up_t = np.where(D.s_delay > 0, D.s_delay / rate(p, b, D.a[rows, server]), 0.0)
        delay = al * D.tU / f + D.w[k] * D.tE[rows, server] / x + up_t
        return {"lam": lam, "p": p, "b": b, "mu": mu, "x": x, "f": f, "delay": delay}

    nu = np.zeros(D.N)
    st = blocks(nu)
    best = None
    # per user: log ν bracket [lo, hi] (delay > D at lo, ≤ D at hi) and the previous secant point
    lo, hi = np.full(us.size, -np.inf), np.full(us.size, np.inf)
    prev = None
    for _ in range(max_rounds):
        d = st["delay"][us]
        res = np.log(d / dl[us])                       # > 0: late
        late = res > 1e-11
        if not late.any():
            obj = objective(D, server, k, st["x"], st["p"], st["b"], st["f"])
            if best is None or obj < best["obj"]:
                best = dict(st, obj=obj, server=server.copy(), k=k.copy(), nu=nu.copy())
            # settled when every user with ν > 0 sits on its deadline (complementary slackness)
            if np.all((nu[us] <= 0) | (res > -1e-11)):
                break
        y = np.log(np.maximum(nu[us], 1e-300))
        on = nu[us] > 0
        lo = np.where(on & (res > 0), np.maximum(lo, y), lo)
        hi = np.where(on & (res <= 0), np.minimum(hi, y), hi)
        if prev is None:   # first step: every late user's best response at these prices
            _, _, _, _, _, br, _ = joint(D, us, server[us], k[us], st["lam"][server[us]], st["mu"][server[us]])
            ynew = np.where(br > 0, np.log(np.maximum(br, 1e-300)), y)
        else:              # secant in ν on log(delay/D), steps capped at ×20 in ν
            py, pres = prev
            v, pv = np.exp(y), np.exp(py)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                slope = (res - pres) / (v - pv)
                vs = v - res / slope
                ynew = np.where((slope < 0) & (vs > 0), np.log(np.where(vs > 0, vs, 1.0)), y + np.where(res > 0, 3.0, -3.0))
            ynew = np.clip(ynew, y - 3.0, y + 3.0)
        # safeguard: stay strictly inside the bracket (bisect in log ν when the step leaves it)
        with np.errstate(invalid="ignore"):
            both = np.isfinite(lo) & np.isfinite(hi)
            out = both & ((ynew <= lo) | (ynew >= hi))
            ynew = np.where(out, 0.5 * (np.where(both, lo, 0.0) + np.where(both, hi, 0.0)), ynew)
        # users on time with ν = 0 stay at 0
        keep0 = (~on) & (res <= 0)
        prev = (y, res)
        nu[us] = np.where(keep0, 0.0, np.exp(ynew))
        st = blocks(nu)
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
    return {"server": r["server"].tolist(), "alpha": D.alphas[r["k"]].tolist(), "f_GHz": r.get("f", D.f).tolist(),
            "fe_GHz": r["x"].tolist(), "p_W": r["p"].tolist(), "b_MHz": r["b"].tolist()}
