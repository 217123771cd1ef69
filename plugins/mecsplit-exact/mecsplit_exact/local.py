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

A pass first ranks every candidate by a second-order model (``estimates``: additive sums per server,
a few operations each) and predicts as above only the best QUICK_TOP of each kind; the full screen
runs when those give nothing, so the search ends where no candidate is predicted to improve.
"""

from __future__ import annotations

import numpy as np

from .lagrangian import DualEval
from .subproblems import edge_solve, root_inc

NEWTON = 4            # Newton steps on each candidate set's frequency price
MAX_PAIRS = 50_000     # swaps screened per pass (all pairs up to N ≈ 316)
QUICK_TOP = 64         # moves and swaps the quick screen keeps per pass (each kind)


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

    def __init__(self, D, uplink=None, quick=True):
        self.D = D
        self.uplink = uplink or DualEval(D).uplink       # (N, M) uplink values at the servers' prices λ
        self.quick = quick
        self.stats = {"passes": 0, "quick_passes": 0, "exact_solves": 0, "improvements": 0, "time_s": 0.0}

    def _state(self, r):
        """What every prediction from ``r`` shares: the users' current and would-be (best split at each
        server's price) user parts plus uplink terms, and every server's edge cost now."""
        D = self.D
        N, M = D.N, D.M
        rows = np.arange(N)
        s, k, mu, lam = r["server"], r["k"], r["mu"], r["lam"]
        cnt = np.bincount(s, minlength=M)
        order = np.argsort(s, kind="stable")
        start = np.concatenate([[0], np.cumsum(cnt)[:-1]])
        # moved users' splits: the best at the destination's current price
        Ek, Xk = edge_solve(D.w[None, None, :], D.t[:, :, None], D.e[:, :, None], mu[None, :, None], D.fe_lo,
                            D.F[None, :, None])                                      # (N, M, K) value, share
        kbest = np.argmin(D.user_part[:, None, :] + Ek, axis=2)                       # (N, M)
        U = self.uplink(lam)[0]                                                      # (N, M) at current prices
        own = D.user_part[rows, k] + U[rows, s]                                      # user part + uplink now
        gain = D.user_part[rows[:, None], kbest] + U                                 # same on each server
        none = np.full(M, -1)
        Ecur = group_edge(D, *_groups(order, start, cnt, np.arange(M), none, none, k, none), M, np.arange(M), mu)
        return dict(s=s, k=k, mu=mu, cnt=cnt, order=order, start=start, kbest=kbest, own=own, gain=gain, Ecur=Ecur,
                    Ek=Ek, Xk=Xk)

    def _moves(self, st, n, m):
        """Predicted change of moving users ``n`` to servers ``m`` (arrays), inf where not allowed."""
        D, s, k, mu, Ecur, cnt = self.D, st["s"], st["k"], st["mu"], st["Ecur"], st["cnt"]
        G = n.size
        none = np.full(G, -1)
        Erem = group_edge(D, *_groups(st["order"], st["start"], cnt, s[n], n, none, k, none), G, s[n], mu[s[n]])
        Eadd = group_edge(D, *_groups(st["order"], st["start"], cnt, m, none, n, k, st["kbest"][n, m]), G, m, mu[m])
        out = st["gain"][n, m] - st["own"][n] + Eadd - Ecur[m] + Erem - Ecur[s[n]]
        bad = (m == s[n]) | (cnt[m] + 1 > D.user_cap[m])
        if D.eq_f:
            bad |= cnt[s[n]] <= 1
        return np.where(bad, np.inf, out)

    def _swaps(self, st, n1, n2):
        """Predicted change of swapping users ``n1`` and ``n2`` (on different servers)."""
        D, s, k, mu, Ecur, kbest = self.D, st["s"], st["k"], st["mu"], st["Ecur"], st["kbest"]
        P = n1.size
        gA = _groups(st["order"], st["start"], st["cnt"], s[n2], n2, n1, k, kbest[n1, s[n2]])
        gB = _groups(st["order"], st["start"], st["cnt"], s[n1], n1, n2, k, kbest[n2, s[n1]])
        EA = group_edge(D, *gA, P, s[n2], mu[s[n2]])
        EB = group_edge(D, *gB, P, s[n1], mu[s[n1]])
        return (st["gain"][n1, s[n2]] - st["own"][n1] + st["gain"][n2, s[n1]] - st["own"][n2]
                + EA - Ecur[s[n2]] + EB - Ecur[s[n1]])

    def screen(self, r, st=None):
        """Estimated objective change of every move (N, M) and swap (N, N) from ``r`` (inf: not allowed),
        with the moved users' best splits at the new server's price. ``st``: ``_state(r)`` if at hand."""
        D = self.D
        N, M = D.N, D.M
        st = self._state(r) if st is None else st
        s = st["s"]
        move = self._moves(st, np.repeat(np.arange(N), M), np.tile(np.arange(M), N)).reshape(N, M)
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
        swap = np.full((N, N), np.inf)
        swap[n1, n2] = self._swaps(st, n1, n2)
        return move, swap, st["kbest"]

    def estimates(self, st):
        """Every move (N, M) and swap (N, N, n1 < n2) change by a second-order model of the edge costs
        (inf: not allowed). With a, x = fe, c = dfe/dμ of each user at a server's current price μ_m, a
        set S' has E(S') ≈ A + max_δ (X δ + C δ²/2), A = Σ a − μ_m F_m (a lower bound: the value at μ_m),
        X = Σ x − F_m, C = Σ c ≤ 0 (μ_m + δ ≥ 0 for "le" budgets) — a Newton step on E's dual in μ
        (docs/exact.md §2d). A, X and C add up over users, so a candidate costs a few additions."""
        D = self.D
        N, M = D.N, D.M
        s, k, mu, kbest = st["s"], st["k"], st["mu"], st["kbest"]
        rows = np.arange(N)
        # each user's (a, x, c) on every server with its best split there, and on its own with its own split
        kk = np.concatenate([kbest, k[:, None]], axis=1)                            # (N, M + 1)
        mm = np.concatenate([np.broadcast_to(np.arange(M), (N, M)), s[:, None]], axis=1)
        w, t, e = D.w[kk], D.t[rows[:, None], mm], D.e[rows[:, None], mm]
        Fm = D.F[mm]
        a, x = st["Ek"][rows[:, None], mm, kk], st["Xk"][rows[:, None], mm, kk]     # edge_solve at μ (_state)
        inner = (x > D.fe_lo) & (x < Fm)
        c = -inner.astype(float) / np.where(inner, 2 * w * t / x**3 + 2 * w * e, 1.0)   # dfe/dμ (0 at a bound)
        X = np.bincount(s, weights=x[:, M], minlength=M) - D.F
        C = np.bincount(s, weights=c[:, M], minlength=M)

        def change(m, da, dx, dc):   # E(S') − E(S) on server(s) m, S' = S with (da, dx, dc) added
            X2, C2 = X[m] + dx, C[m] + dc
            d = np.where(C2 < 0, -X2 / np.where(C2 < 0, C2, -1.0), 0.0)
            if not D.eq_f:
                d = np.maximum(d, -mu[m])
            return da + X2 * d + 0.5 * C2 * d * d

        ain, xin, cin = a[:, :M], x[:, :M], c[:, :M]
        aout, xout, cout = a[:, M], x[:, M], c[:, M]
        move = (st["gain"] - st["own"][:, None] + change(np.arange(M)[None, :], ain, xin, cin)
                + change(s, -aout, -xout, -cout)[:, None])
        move[rows, s] = np.inf
        move[:, st["cnt"] + 1 > D.user_cap] = np.inf
        if D.eq_f:
            move[st["cnt"][s] <= 1, :] = np.inf
        s2 = s[None, :]
        half = (st["gain"][rows[:, None], s2] - st["own"][:, None]        # n1 (row) into s[n2] (column), n2 out
                + change(s2, ain[rows[:, None], s2] - aout[None, :], xin[rows[:, None], s2] - xout[None, :],
                         cin[rows[:, None], s2] - cout[None, :]))
        swap = half + half.T
        swap[np.tril_indices(N)] = np.inf
        swap[s[:, None] == s2] = np.inf
        return move, swap

    def quick_screen(self, r, top=None, st=None):
        """The ``top`` (QUICK_TOP) best moves and swaps by ``estimates``, then predicted as ``screen``
        does (the same lower bounds); (move, swap, kbest) with inf for every candidate not kept. The
        model only ranks; ``improve`` falls back to the full screen before it stops."""
        top = QUICK_TOP if top is None else top
        st = self._state(r) if st is None else st
        N, M = self.D.N, self.D.M
        move, swap = np.full((N, M), np.inf), np.full((N, N), np.inf)
        for est, out, predict in zip(self.estimates(st), (move, swap), (self._moves, self._swaps)):
            flat = est.ravel()
            keep = np.nonzero(np.isfinite(flat))[0]
            if keep.size > top:
                keep = keep[np.argpartition(flat[keep], top)[:top]]
            i, j = np.unravel_index(keep, est.shape)
            out[i, j] = predict(st, i, j)
        return move, swap, st["kbest"]

    def improve(self, r, deadline, clock, offer, max_solves=500):
        """Apply predicted-improving moves/swaps until none is left or the deadline. Each pass applies
        the best candidates that touch disjoint servers together (their predictions add up exactly),
        falling back to the single best; every result is solved exactly through ``offer(server, k)``
        (which keeps the incumbent). A pass screens the quick model's best candidates first
        (``quick_screen``) and every candidate only when those give nothing, so the search ends where
        the full screen predicts no improvement. Returns the best exact result."""
        solves = 0
        full = not self.quick
        st = seen = None
        while clock() < deadline and solves < max_solves:
            self.stats["passes"] += 1
            self.stats["quick_passes"] += not full
            st = self._state(r) if st is None else st
            move, swap, kbest = self.screen(r, st) if full else self.quick_screen(r, st=st)
            if full and seen is not None:   # the quick pass's candidates, already acted on: the others only
                move[np.isfinite(seen[0])], swap[np.isfinite(seen[1])] = np.inf, np.inf
            better, tried = self._apply(r, move, swap, kbest, offer)
            solves += tried
            if better is None:
                if full:
                    break
                full, seen = True, (move, swap)    # they gave nothing: screen every one (same r, same st)
                continue
            self.stats["improvements"] += 1
            r, full, st, seen = better, not self.quick, None, None
        return r

    def _apply(self, r, move, swap, kbest, offer):
        """The best predicted-improving candidates that touch disjoint servers together, else the single
        best, solved exactly; (the better exact result or None, exact solves done)."""
        tol = 1e-13 * abs(r["obj"])
        cands = [(move[i, j], 0, i, j) for i, j in zip(*np.nonzero(move < -tol))]
        cands += [(swap[i, j], 1, i, j) for i, j in zip(*np.nonzero(swap < -tol))]
        if not cands:
            return None, 0
        cands.sort()
        s0 = r["server"]
        batch, used = [], set()
        for c in cands:
            _, kind, i, j = c
            touch = {int(s0[i]), int(j) if kind == 0 else int(s0[j])}
            if not touch & used:
                batch.append(c)
                used |= touch
        tried = 0
        for group in ([batch, batch[:1]] if len(batch) > 1 else [batch]):
            s2, k2 = s0.copy(), r["k"].copy()
            for _, kind, i, j in group:
                if kind == 0:
                    s2[i], k2[i] = j, kbest[i, j]
                else:
                    si, sj = s0[i], s0[j]
                    s2[i], k2[i], s2[j], k2[j] = sj, kbest[i, sj], si, kbest[j, si]
            q = offer(s2, k2)
            tried += 1
            self.stats["exact_solves"] += 1
            if q is not None and q["obj"] < r["obj"] - tol:
                return q, tried
        return None, tried
