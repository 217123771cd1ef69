"""Local search for incumbents: moves of one user to another server and swaps of two users, screened
in one vectorised pass over every candidate and confirmed by the exact fixed-assignment solve.

Why (docs/exact.md §2b): with the tokens upload the problem is close to a multiway number
partitioning, whose bound is reached by a well *balanced* assignment; the MILP's heuristics find
balanced ones slowly. A move changes two servers' user sets only, so its effect is

    Δ = Δ user part + [E_m2(S2 + n) − E_m2(S2)] + [E_m1(S1 − n) − E_m1(S1)] + uplink terms,

with E_m(S) = max_μ Σ_S e_n(μ) − μ F_m (strong duality, oa.py). Every candidate set's E is evaluated
by a few Newton steps on μ from the server's current price, all candidates at once; any μ gives a
lower bound on E. The uplink terms use the servers' current bandwidth prices (a lower bound too, exact
to first order: the bandwidth is nearly free with the tokens upload). So a prediction is never above
the true change, and a candidate predicted not to improve does not. Every candidate tried is solved
exactly (fixed.py, through the caller's ``offer``).
"""

from __future__ import annotations

import numpy as np

from .lagrangian import DualEval
from .subproblems import edge_solve, root_inc

NEWTON = 4            # Newton steps on each candidate set's frequency price
MAX_PAIRS = 50_000     # swaps screened per pass (all pairs up to N ≈ 316)


def group_edge(D, n, m, k, grp, G, gm, mu0):
    """E of G user sets at once: entries (n, m, k) belong to set ``grp``, set g lives on server gm[g].
    Newton on f'(μ) = Σ fe(μ) − F from μ0; sets it leaves unconverged (shares at their bounds, where
    f'' = 0) get a bracketed root. Returns the best (largest) value seen per set: every value is a valid
    lower bound on the set's edge cost (weak duality), the last one exact to the root's tolerance."""
    w, t, e, Fm = D.w[k], D.t[n, m], D.e[n, m], D.F[m]
    mu = mu0.astype(float).copy()
    best = np.full(G, -np.inf)

    def at(mu_g, sel=None):   # (value, slope, curvature) of the sets ``sel`` at their prices mu_g
        rows = np.arange(grp.size) if sel is None else np.nonzero(np.isin(grp, sel))[0]
        g_of = grp[rows] if sel is None else np.searchsorted(sel, grp[rows])
        size = G if sel is None else sel.size
        val, x = edge_solve(w[rows], t[rows], e[rows], mu_g[g_of], D.fe_lo, Fm[rows])
        inner = (x > D.fe_lo) & (x < Fm[rows])      # dfe/dμ from −wt/fe² + 2we·fe + μ = 0 (0 at a bound)
        dx = -inner.astype(float) / np.where(inner, 2 * w[rows] * t[rows] / x**3 + 2 * w[rows] * e[rows], 1.0)
        fs = D.F[gm if sel is None else gm[sel]]
        return (np.bincount(g_of, weights=val, minlength=size) - mu_g * fs,
                np.bincount(g_of, weights=x, minlength=size) - fs, np.bincount(g_of, weights=dx, minlength=size))

    for _ in range(NEWTON):
        val, slope, curv = at(mu)
        best = np.maximum(best, val)
        mu = mu - np.where(curv < 0, slope / np.where(curv < 0, curv, -1.0), 0.0)   # Newton: f'/f''
        if not D.eq_f:
            mu = np.maximum(mu, 0.0)
    val, slope, _ = at(mu)
    best = np.maximum(best, val)
    open_ = np.abs(slope) > 1e-10 * D.F[gm]
    if not D.eq_f:
        open_ &= ~((mu <= 0) & (slope < 0))          # μ = 0 with spare frequency: optimal
    sel = np.nonzero(open_)[0]
    if sel.size:
        big = np.zeros(G)
        np.maximum.at(big, grp, w * t / D.fe_lo**2 + 2 * w * e * Fm + 1.0)
        lo = -big[sel] if D.eq_f else np.zeros(sel.size)
        root = root_inc(lambda x, i: -at(x, sel[i])[1], lo, big[sel], rtol=1e-15)
        best[sel] = np.maximum(best[sel], at(root, sel)[0])
    return best


def _groups(order, start, cnt, gm, rem, add, k, kadd):
    """Entries (n, m, k, group) of the sets "server gm[g]'s users, minus rem[g], plus add[g]" (−1: none)."""
    G = gm.size
    sizes = cnt[gm]
    grp = np.repeat(np.arange(G), sizes)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    n = order[np.arange(grp.size) - first[grp] + start[gm][grp]]
    keep = n != rem[grp]
    n, grp = n[keep], grp[keep]
    kk = k[n]
    has = np.nonzero(add >= 0)[0]
    n = np.concatenate([n, add[has]])
    grp = np.concatenate([grp, has])
    kk = np.concatenate([kk, kadd[has]])
    return n, gm[grp], kk, grp


class LocalSearch:
    """Best-improvement moves and swaps from an exact fixed-assignment result ``r`` (fixed.py)."""

    def __init__(self, D, uplink=None):
        self.D = D
        self.uplink = uplink or DualEval(D).uplink       # (N, M) uplink values at the servers' prices λ
        self.stats = {"passes": 0, "exact_solves": 0, "improvements": 0, "time_s": 0.0}

    def screen(self, r):
        """Estimated objective change of every move (N, M) and swap (N, N) from ``r`` (inf: not allowed),
        with the moved users' best splits at the new server's price."""
        D = self.D
        N, M = D.N, D.M
        rows = np.arange(N)
        s, k, mu, lam = r["server"], r["k"], r["mu"], r["lam"]
        cnt = np.bincount(s, minlength=M)
        order = np.argsort(s, kind="stable")
        start = np.concatenate([[0], np.cumsum(cnt)[:-1]])
        # moved users' splits: the best at the destination's current price
        Ek, _ = edge_solve(D.w[None, None, :], D.t[:, :, None], D.e[:, :, None], mu[None, :, None], D.fe_lo,
                           D.F[None, :, None])
        kbest = np.argmin(D.user_part[:, None, :] + Ek, axis=2)                       # (N, M)
        U = self.uplink(lam)[0]                                                      # (N, M) at current prices
        own = D.user_part[rows, k] + U[rows, s]                                      # user part + uplink now
        gain = D.user_part[rows[:, None], kbest] + U                                 # same on each server
        none = np.full(M, -1)
        Ecur = group_edge(D, *_groups(order, start, cnt, np.arange(M), none, none, k, none), M, np.arange(M), mu)
        # removals (N) and additions (N·M)
        Erem = group_edge(D, *_groups(order, start, cnt, s, rows, np.full(N, -1), k, none), N, s, mu[s])
        gm = np.tile(np.arange(M), N)
        ga = np.repeat(rows, M)
        Eadd = group_edge(D, *_groups(order, start, cnt, gm, np.full(N * M, -1), ga, k, kbest[ga, gm]), N * M, gm,
                          mu[gm]).reshape(N, M)
        move = (gain - own[:, None] + Eadd - Ecur[None, :] + (Erem - Ecur[s])[:, None])
        move[rows, s] = np.inf
        move[:, cnt + 1 > D.user_cap] = np.inf
        if D.eq_f:
            move[cnt[s] <= 1, :] = np.inf
        # swaps n1 < n2 on different servers: n1 goes to s[n2] minus n2, and back. Beyond MAX_PAIRS pairs,
        # the pairs whose two single moves add up best (a proxy that ignores their interaction) are kept
        proxy = np.where(np.isfinite(move[:, s]), move[:, s], 1e300)
        proxy = proxy + proxy.T
        proxy[np.tril_indices(N)] = np.inf
        proxy[s[:, None] == s[None, :]] = np.inf
        n1, n2 = np.nonzero(np.isfinite(proxy))
        if n1.size > MAX_PAIRS:
            pick = np.argpartition(proxy[n1, n2], MAX_PAIRS)[:MAX_PAIRS]
            n1, n2 = n1[pick], n2[pick]
        P = n1.size
        gA = _groups(order, start, cnt, s[n2], n2, n1, k, kbest[n1, s[n2]])
        gB = _groups(order, start, cnt, s[n1], n1, n2, k, kbest[n2, s[n1]])
        EA = group_edge(D, *gA, P, s[n2], mu[s[n2]])
        EB = group_edge(D, *gB, P, s[n1], mu[s[n1]])
        sw = (gain[n1, s[n2]] - own[n1] + gain[n2, s[n1]] - own[n2] + EA - Ecur[s[n2]] + EB - Ecur[s[n1]])
        swap = np.full((N, N), np.inf)
        swap[n1, n2] = sw
        return move, swap, kbest

    def improve(self, r, deadline, clock, offer, max_solves=500):
        """Apply predicted-improving moves/swaps until none is left or the deadline. Each pass applies
        the best candidates that touch disjoint servers together (their predictions add up exactly),
        falling back to the single best; every result is solved exactly through ``offer(server, k)``
        (which keeps the incumbent). Returns the best exact result."""
        D = self.D
        solves = 0
        while clock() < deadline and solves < max_solves:
            tol = 1e-13 * abs(r["obj"])
            self.stats["passes"] += 1
            move, swap, kbest = self.screen(r)
            cands = [(move[i, j], 0, i, j) for i, j in zip(*np.nonzero(move < -tol))]
            cands += [(swap[i, j], 1, i, j) for i, j in zip(*np.nonzero(swap < -tol))]
            if not cands:
                break
            cands.sort()
            s0 = r["server"]
            batch, used = [], set()
            for c in cands:
                _, kind, i, j = c
                touch = {int(s0[i]), int(j) if kind == 0 else int(s0[j])}
                if not touch & used:
                    batch.append(c)
                    used |= touch
            better = None
            for group in ([batch, batch[:1]] if len(batch) > 1 else [batch]):
                s2, k2 = s0.copy(), r["k"].copy()
                for _, kind, i, j in group:
                    if kind == 0:
                        s2[i], k2[i] = j, kbest[i, j]
                    else:
                        si, sj = s0[i], s0[j]
                        s2[i], k2[i], s2[j], k2[j] = sj, kbest[i, sj], si, kbest[j, si]
                q = offer(s2, k2)
                solves += 1
                self.stats["exact_solves"] += 1
                if q is not None and q["obj"] < r["obj"] - tol:
                    better = q
                    break
            if better is None:
                break
            self.stats["improvements"] += 1
            r = better
        return r
