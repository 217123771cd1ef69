"""The delay side of the exact solver: what an option needs to meet a delay level, and whether a
server's users can all meet theirs (docs/exact.md §7).

Only delay matters here, so f = f_max and p = p_max (each only lowers the delay; the rate floor too is
best met at p_max). User n's delay on option o = (m, k) with shares fe, b is (s, the delay ledger)

    d_o(fe, b) = a_o + W_o/fe + s_n/r_nm(b),   a_o = α_k tU_n/f_max_n,  W_o = (Υ − α_k) tE_nm,
                                               r_nm(b) = b log2(1 + a_nm p_max_n / b).

**Pricing** of an option at a level T (s) and prices λ ≥ 0 (bandwidth), μ ≥ 0 (frequency):

    R_o(λ, μ; T) = min μ fe + λ b   s.t.  d_o(fe, b) ≤ T,  fe ∈ [fe_lo, F_m],  b ∈ [b_floor_nm, B_m].

For fixed b the least share meeting T is fe(b) = max(fe_lo, W/(T − a − s/r(b))); s/r(b) is convex
decreasing, so T − a − s/r(b) is concave and W/(·) convex: φ(b) = μ fe(b) + λ b is convex on the b that
leave fe(b) ≤ F_m, and R_o = min φ is a monotone root of φ'. R_o is +inf when even fe = F_m, b = B_m
miss T.

**Feasibility cut** (weak duality): if server m's users S meet their levels with Σ fe ≤ F_m and
Σ b ≤ B_m, then Σ_{o∈S} R_o(λ, μ; T) ≤ λ B_m + μ F_m for every (λ, μ) ≥ 0 — each R_o is at most the
priced shares the user actually holds. Linear in the assignment: a valid row of the assignment MILP.

**A server's check at T**: its users are feasible iff  G = min Σ fe s.t. Σ b ≤ B_m, d_o ≤ T  is ≤ F_m;
by convexity (strong duality) G = max_λ≥0 Σ_o R_o(λ, 1; T) − λ B_m, whose derivative Σ b_o(λ) − B_m
decreases in λ: a monotone root. When G > F_m the maximiser (λ*, 1) gives a violated cut. The
**makespan** of a server (the least T its users meet) is the root of G(T) = F_m (G decreases in T).
"""

from __future__ import annotations

import numpy as np

from .subproblems import LN2, b_for_rate, rate, root_inc

BIG = 1e300


class Timing:
    """Delay coefficients of data ``D`` (subproblems.Data) for options given as index arrays."""

    def __init__(self, D):
        self.D = D
        self.a_user = D.alphas[None, :] * (D.tU / D.f_max)[:, None]          # (N, K) s at f_max
        self.s = D.s_delay                                                     # (N,) Mbit in the delay
        self.c = D.a * D.p_hi[:, None]                                         # (N, M) a·p_max, MHz

    def parts(self, n, m, k):
        D = self.D
        return self.a_user[n, k], D.w[k] * D.tE[n, m], self.s[n], self.c[n, m], D.b_floor[n, m], D.B[m], D.F[m]

    def min_delay(self, n, m, k):
        """The option's delay with f_max, fe = F_m, p_max, b = B_m (s)."""
        a, W, s, c, bf, B, F = self.parts(n, m, k)
        with np.errstate(divide="ignore", invalid="ignore"):
            up = np.where(s > 0, s / (B * np.log1p(c / B) / LN2), 0.0)
        return np.where(np.isfinite(bf), a + W / F + up, np.inf)

    def prepare(self, n, m, k, T):
        """The level-dependent constants of options (n, m, k) at levels T (flat arrays): what ``price``
        needs, computed once per level (the least bandwidth that leaves fe ≤ F_m is a root)."""
        n, m, k, T = (np.ascontiguousarray(v).ravel() for v in np.broadcast_arrays(n, m, k, T))
        T = T.astype(float)
        a, W, s, c, bf, B, F = self.parts(n, m, k)
        ok = self.min_delay(n, m, k) <= T
        up_time = np.where(ok, T - a - W / F, 1.0)          # the most time the uplink may take (fe = F_m)
        need = np.where(ok & (s > 0), s / np.where(up_time > 0, up_time, 1.0), 0.0)
        bf1 = np.where(ok, bf, 1.0)
        blo = np.where(ok, np.minimum(np.maximum(b_for_rate(c, 1.0, need, bf1, B), bf1), B), 1.0)
        # beyond b_kink the share sits at fe_lo (φ' = λ there): φ is smooth on [blo, bhi], bhi = min(B, b_kink)
        room = np.where(ok, T - a - W / self.D.fe_lo, 0.0)
        kink = ok & (s > 0) & (room > 0)
        bhi = B.astype(float).copy()
        if kink.any():
            bhi[kink] = np.clip(b_for_rate(c[kink], 1.0, s[kink] / room[kink], blo[kink], B[kink]), blo[kink], B[kink])
        return {"T": T, "a": a, "W": W, "s": s, "c": c, "blo": blo, "bhi": bhi, "B": B, "F": F, "ok": ok}

    def price(self, n, m, k, T, lam, mu, prep=None):
        """(R_o, fe, b) of options (n, m, k) at levels T and prices lam, mu (broadcast against the options;
        ``prep`` from ``prepare`` saves the level's constants); R = inf where the option cannot meet T."""
        P = self.prepare(n, m, k, T) if prep is None else prep
        T, a, W, s, c, blo, bhi, F, ok = (P[x] for x in ("T", "a", "W", "s", "c", "blo", "bhi", "F", "ok"))
        lam, mu = (np.broadcast_to(np.asarray(v, float), T.shape) for v in (lam, mu))
        fe_lo = self.D.fe_lo

        def fe_of(b, sel):
            with np.errstate(divide="ignore", invalid="ignore"):
                t_up = np.where(s[sel] > 0, s[sel] / rate(1.0, b, c[sel]), 0.0)
                left = T[sel] - a[sel] - t_up
                return np.clip(W[sel] / left, fe_lo, F[sel]), left, t_up

        def g(y, sel):   # b·φ'(b) at b = e^y, increasing
            b = np.exp(y)
            fe, left, t_up = fe_of(b, sel)
            z = c[sel] / b
            rb = (np.log1p(z) - z / (1 + z)) / LN2                 # r'(b)
            r = b * np.log1p(z) / LN2
            dfe = np.where(fe > fe_lo, -W[sel] * (t_up * rb / r) / (left * left), 0.0)
            return b * (lam[sel] + mu[sel] * dfe)

        act = np.nonzero(ok & (s > 0) & (mu > 0))[0]      # else b = blo (λ > 0) or any: blo is optimal
        b = np.array(blo, float)
        free = ok & (s > 0) & (mu > 0) & (lam <= 0)
        b[free] = bhi[free]                 # bandwidth free: as much as still lowers the share
        act = act[lam[act] > 0]
        if act.size:
            y = root_inc(lambda y, i: g(y, act[i]), np.log(blo[act]), np.log(bhi[act]), rtol=0.0, atol=1e-11)
            b[act] = np.clip(np.exp(y), blo[act], bhi[act])
        fe, _, _ = fe_of(b, np.arange(T.size))
        val = np.where(ok, mu * fe + lam * b, np.inf)
        return val, fe, b

    # -- fixed user sets ------------------------------------------------------------------------------
    def check(self, server, k, T, lam0=None):
        """Every server's users at levels T (N,) (one per user): returns (G − F per server, λ* per server,
        fe, b). G − F ≤ 0: feasible, with the shares fe, b (Σ fe ≤ F, Σ b ≤ B); > 0: infeasible and
        (λ*, 1) a price pair whose cut the set violates (inf: some option cannot meet its level).
        ``lam0`` (M,): a guess of λ* (e.g. from a nearby level) that narrows the root's bracket."""
        D = self.D
        M, N = D.M, server.size
        n = np.arange(N)
        cnt = np.bincount(server, minlength=M)
        used = np.nonzero(cnt > 0)[0]
        excess, lam = np.full(M, -np.inf), np.zeros(M)
        fe, b = np.zeros(N), np.zeros(N)
        P = self.prepare(n, server, k, T)
        bad = np.bincount(server, weights=~P["ok"], minlength=M) > 0
        excess[bad] = np.inf
        todo = np.array([m for m in used if not bad[m]], dtype=int)
        if todo.size == 0:
            return excess, lam, fe, b
        us_all = np.nonzero(np.isin(server, todo))[0]
        Pu = {key: val[us_all] for key, val in P.items()}
        srv = server[us_all]

        def bsum(lm):
            _, _, bb = self.price(None, None, None, None, lm[srv], 1.0, prep=Pu)
            return np.bincount(srv, weights=bb, minlength=M), bb

        # λ = 0 (bandwidth free): every user takes b = B_m; if they fit, λ* = 0
        tot0, _ = bsum(np.zeros(M))
        root = todo[tot0[todo] > D.B[todo] * (1 + 1e-12)]
        if root.size:
            sub = np.isin(srv, root)
            Ps = {key: val[sub] for key, val in Pu.items()}
            ss = srv[sub]

            def g(y, i):    # B_m − Σ b(λ = e^y): increasing in y
                sel = root[i]
                lm = np.zeros(M)
                lm[sel] = np.exp(y)
                keep = np.isin(ss, sel)
                Pk = {key: val[keep] for key, val in Ps.items()}
                _, _, bb = self.price(None, None, None, None, lm[ss[keep]], 1.0, prep=Pk)
                return D.B[sel] - np.bincount(ss[keep], weights=bb, minlength=M)[sel]

            centre = np.log(D.F[root] / D.B[root])          # λ in GHz per MHz: around F/B
            lo, hi = centre - 25.0, centre + 25.0
            if lam0 is not None and np.all(lam0[root] > 0):
                y0 = np.log(lam0[root])
                glo, ghi = g(y0 - 1.0, np.arange(root.size)), g(y0 + 1.0, np.arange(root.size))
                lo = np.where(glo < 0, y0 - 1.0, lo)
                hi = np.where(ghi > 0, y0 + 1.0, hi)
            lam[root] = np.exp(root_inc(g, lo, hi, rtol=0.0, atol=1e-12, bisect=2))
        v, f, bb = self.price(None, None, None, None, lam[srv], 1.0, prep=Pu)
        fe[us_all], b[us_all] = f, bb
        G = np.bincount(srv, weights=v, minlength=M) - lam * D.B
        excess[todo] = G[todo] - D.F[todo]
        return excess, lam, fe, b

    def makespan(self, server, k, deadline=None):
        """The least level T_m each server's users meet (their own deadlines min(T, deadline_n) too),
        with the shares at it. Returns (T (M,), λ (M,), fe, b); T_m = inf if even T = ∞ is infeasible
        (deadlines), −inf for an empty server."""
        D = self.D
        M, N = D.M, server.size
        n = np.arange(N)
        dl = np.full(N, np.inf) if deadline is None else np.asarray(deadline, float)
        cnt = np.bincount(server, minlength=M)
        lo = np.full(M, -np.inf)
        np.maximum.at(lo, server, self.min_delay(n, server, k))
        used = np.nonzero(cnt > 0)[0]
        Tm = np.full(M, -np.inf)
        # an upper level: equal shares of both budgets
        fe_eq, b_eq = D.F[server] / cnt[server], D.B[server] / cnt[server]
        with np.errstate(divide="ignore", invalid="ignore"):
            d_eq = (self.a_user[n, k] + D.w[k] * D.tE[n, server] / fe_eq
                    + np.where(self.s > 0, self.s / rate(1.0, np.maximum(b_eq, D.b_floor[n, server]), self.c[n, server]), 0.0))
        hi = np.full(M, -np.inf)
        np.maximum.at(hi, server, d_eq)
        hi = np.maximum(hi, lo * (1 + 1e-9))
        # deadlines: the set must be feasible with T = ∞ (levels = deadlines) at all
        if np.isfinite(dl).any():
            ex, _, _, _ = self.check(server, k, dl)
            infeasible = ex > 0
        else:
            infeasible = np.zeros(M, bool)

        def level(Ts):
            return np.minimum(Ts[server], dl)

        warm = np.zeros(M)

        def g(x, i):     # log F − log G(T) at T = lo + e^x: increasing in x. G blows up like a power of
            sel = used_ok[i]   # 1/(T − lo) near the least possible level lo, so it is ~linear in x there
            Ts = np.full(M, np.inf)
            Ts[sel] = lo[sel] + np.exp(x)
            ex, lm, _, _ = self.check(server, k, level(Ts), lam0=warm if np.all(warm[sel] > 0) else None)
            warm[sel] = np.where(lm[sel] > 0, lm[sel], warm[sel])
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log(D.F[sel]) - np.log(np.maximum(ex[sel] + D.F[sel], 1e-300))

        used_ok = np.array([m for m in used if not infeasible[m]], dtype=int)
        if used_ok.size:
            hi_ok = hi[used_ok]
            Ts = np.full(M, np.inf)
            Ts[used_ok] = hi_ok
            for _ in range(60):      # make sure the upper end is feasible (rate floors can exceed equal shares)
                ex, _, _, _ = self.check(server, k, level(Ts))
                bad = used_ok[ex[used_ok] > 0]
                if bad.size == 0:
                    break
                Ts[bad] *= 2.0
            span = Ts[used_ok] - lo[used_ok]
            x = root_inc(g, np.log(span * 1e-15 + 1e-300), np.log(span), rtol=0.0,
                         atol=1e-13 * np.max(Ts[used_ok] / np.maximum(span, 1e-300)))
            Tm[used_ok] = lo[used_ok] + np.exp(x)
        Tm[infeasible & (cnt > 0)] = np.inf
        # shares at a level a hair above the root (the root's own side may be infeasible by rounding)
        Ts = np.where(np.isfinite(Tm), Tm * (1 + 1e-12), np.inf)
        ex, lam, fe, b = self.check(server, k, level(Ts))
        return Tm, lam, fe, b
