"""The delay side of the exact solver: what an option needs to meet a delay level, and whether a
server's users can all meet theirs (docs/exact.md §7).

Only delay matters here, so f = f_max and p = p_max (each only lowers the delay; the rate floor too is
best met at p_max). User n's delay on option o = (m, k) with shares fe (edge), fc (cloud slot of the
edge, three tiers only) and b is (s, the delay ledger)

    d_o = a_o + W_o/fe + Wc_o/fc + s_n/r_nm(b),   a_o = α_k tU_n/f_max_n + backhaul_nm,  W_o = (β_k − α_k) tE_nm,
                                                  Wc_o = (Υ − β_k) tC_n,  r_nm(b) = b log2(1 + a_nm p_max_n / b)

(two tiers: β = Υ, no cloud term). **Pricing** of an option at a level T (s) and prices λ (bandwidth),
μ (edge frequency), π (cloud slot), all ≥ 0:

    R_o(λ, μ, π; T) = min μ fe + π fc + λ b   s.t.  d_o ≤ T and the boxes  fe ∈ [fe_lo, F_m],
                                                    fc ∈ [fc_lo, slot], b ∈ [b_floor_nm, B_m].

For fixed b the compute time left is L(b) = T − a − s/r(b), and C(L) = min μ fe + π fc s.t.
W/fe + Wc/fc ≤ L is solved in closed form (``compute_split``: shares √(νW/μ), √(νWc/π) clipped to
their boxes, ν from the piecewise form time(ν) = c/√ν + d); C is convex decreasing with C'(L) = −ν.
s/r(b) is convex decreasing, so L(b) is concave and φ(b) = C(L(b)) + λ b convex:
φ'(b) = λ − ν s r'(b)/r(b)², a monotone root. R_o = +inf when even the largest shares miss T.

**Feasibility cut** (weak duality): if server m's users S meet their levels within its budgets, then
Σ_{o∈S} R_o(λ, μ, π; T) ≤ λ B_m + μ F_m + π slot for every price triple — each R_o is at most the
priced shares the user actually holds. Linear in the assignment: a valid row of the assignment MILP.

**A server's check at T**: its users are feasible iff  G = min Σ fe s.t. Σ b ≤ B_m, Σ fc ≤ slot,
d_o ≤ T  is ≤ F_m; by convexity (strong duality) G = max_{λ,π ≥ 0} Σ_o R_o(λ, 1, π; T) − λ B_m − π slot,
a concave function whose partial derivatives Σ b − B_m and Σ fc − slot decrease in their own price:
nested monotone roots (π outside, λ inside). When G > F_m the maximiser gives a violated cut. The
**makespan** of a server is the root of G(T) = F_m (G decreases in T).
"""

from __future__ import annotations

import time

import numpy as np

from .subproblems import LN2, b_for_rate, rate, root_inc


def compute_split(W, Wc, L, mu, pi, lo1, hi1, lo2, hi2):
    """min μ x1 + π x2 s.t. W/x1 + Wc/x2 ≤ L, x1 ∈ [lo1, hi1], x2 ∈ [lo2, hi2] (elementwise; L at least
    the least time W/hi1 + Wc/hi2). Returns (cost, x1, x2, ν, c) with ν = −dcost/dL ≥ 0 and c the sum of
    √(W_i p_i) over the free shares (dν/dL = −2 ν^{3/2}/c; 0 when c = 0).

    KKT: x_i(ν) = clip(√(ν W_i/p_i), lo_i, hi_i) (p_i = 0: hi_i) and time(ν) = Σ W_i/x_i(ν) = L, time
    decreasing in ν; between the breakpoints where a share meets a bound, time = c/√ν + d with c the
    sum of √(W_i p_i) over the free shares and d the clipped shares' times, so √ν = c/(L − d)."""
    arrs = np.broadcast_arrays(W, Wc, L, mu, pi, lo1, hi1, lo2, hi2)
    shape = arrs[0].shape
    W, Wc, L, mu, pi, lo1, hi1, lo2, hi2 = (np.ascontiguousarray(v, dtype=float).ravel() for v in arrs)
    # fast path: both shares inside their boxes, √ν = (√(Wμ) + √(Wc π))/L
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.sqrt(W * mu) + np.sqrt(Wc * pi)
        nu = (q / L) ** 2
        x1 = np.sqrt(nu * W / mu)
        x2 = np.sqrt(nu * Wc / pi)
    inside = (W > 0) & (Wc > 0) & (mu > 0) & (pi > 0) & (x1 > lo1) & (x1 < hi1) & (x2 > lo2) & (x2 < hi2)
    if inside.all():
        return (mu * x1 + pi * x2).reshape(shape), x1.reshape(shape), x2.reshape(shape), nu.reshape(shape), q.reshape(shape)
    if inside.any():
        rest = np.nonzero(~inside)[0]
        _, y1, y2, n_, c_ = compute_split(W[rest], Wc[rest], L[rest], mu[rest], pi[rest], lo1[rest], hi1[rest], lo2[rest],
                                          hi2[rest])
        x1[rest], x2[rest], nu[rest], q[rest] = y1, y2, n_, c_
        return (mu * x1 + pi * x2).reshape(shape), x1.reshape(shape), x2.reshape(shape), nu.reshape(shape), q.reshape(shape)
    Ws, ps, los, his = (W, Wc), (mu, pi), (lo1, lo2), (hi1, hi2)

    def shares(nu):
        out = []
        for Wi, pi_, lo, hi in zip(Ws, ps, los, his):
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                x = np.where(pi_ > 0, np.sqrt(nu * Wi / np.where(pi_ > 0, pi_, 1.0)), np.inf)
            out.append(np.clip(np.where(Wi > 0, x, lo), lo, hi))
        return out

    def time(xs):
        return sum(np.where(Wi > 0, Wi / x, 0.0) for Wi, x in zip(Ws, xs))

    with np.errstate(divide="ignore", invalid="ignore"):
        bps = [np.where((Wi > 0) & (pi_ > 0), pi_ * b * b / np.where(Wi > 0, Wi, 1.0), 0.0)
               for Wi, pi_, lo, hi in zip(Ws, ps, los, his) for b in (lo, hi)]
    grid = np.sort(np.stack([np.zeros_like(L)] + bps + [np.full_like(L, np.inf)]), axis=0)     # (6, n)
    tg = time(shares(grid))                                              # (6, n), decreasing down the grid
    # segment j with tg[j] ≥ L ≥ tg[j+1] (the last one whose start still needs ≥ L)
    j = np.clip(np.sum(tg > L[None, :] * (1 + 1e-15), axis=0) - 1, 0, grid.shape[0] - 2)
    cols = np.arange(L.size)
    a, b = grid[j, cols], grid[j + 1, cols]
    mid = np.where(np.isinf(b), np.where(a > 0, 2 * a, 1.0), np.where(a > 0, np.sqrt(a * b), 0.5 * b))
    xm = shares(mid)
    c = np.zeros_like(L)
    d = np.zeros_like(L)
    for Wi, pi_, lo, hi, x in zip(Ws, ps, los, his, xm):
        free = (Wi > 0) & (pi_ > 0) & (x > lo) & (x < hi)
        c += np.where(free, np.sqrt(Wi * pi_), 0.0)
        d += np.where(free | (Wi <= 0), 0.0, Wi / x)
    with np.errstate(divide="ignore", invalid="ignore"):
        nu = np.where(c > 0, (c / (L - d)) ** 2, a)
    nu = np.where(tg[0] <= L, 0.0, np.clip(nu, a, b))        # slack at the lower bounds: ν = 0
    c = np.where(tg[0] <= L, 0.0, c)
    x1, x2 = shares(nu)
    cost = mu * x1 + pi * x2
    return cost.reshape(shape), x1.reshape(shape), x2.reshape(shape), nu.reshape(shape), c.reshape(shape)


class Timing:
    """Delay coefficients of data ``D`` (subproblems.Data) for options given as index arrays."""

    def __init__(self, D):
        self.D = D
        self.a_user = D.alphas[None, :] * (D.tU / D.f_max)[:, None]          # (N, K) s at f_max
        self.s = D.s_delay                                                     # (N,) Mbit in the delay
        self.c = D.a * D.p_hi[:, None]                                         # (N, M) a·p_max, MHz
        self.cloud = bool(D.three)
        self.deadline = np.inf     # perf_counter time after which a makespan stops at its feasible end

    def parts(self, n, m, k):
        D = self.D
        return {"a": self.a_user[n, k] + D.backhaul[n, m], "W": D.w[k] * D.tE[n, m], "Wc": D.wc[k] * D.tC[n],
                "s": self.s[n], "c": self.c[n, m], "bf": D.b_floor[n, m], "B": D.B[m], "F": D.F[m]}

    def min_delay(self, n, m, k):
        """The option's delay with f_max, fe = F_m, fc = slot, p_max, b = B_m (s)."""
        P = self.parts(n, m, k)
        with np.errstate(divide="ignore", invalid="ignore"):
            up = np.where(P["s"] > 0, P["s"] / (P["B"] * np.log1p(P["c"] / P["B"]) / LN2), 0.0)
            cl = np.where(P["Wc"] > 0, P["Wc"] / self.D.slot, 0.0)
        return np.where(np.isfinite(P["bf"]), P["a"] + P["W"] / P["F"] + cl + up, np.inf)

    def prepare(self, n, m, k, T):
        """The level-dependent constants of options (n, m, k) at levels T (flat arrays): what ``price``
        needs, computed once per level (the bandwidth range where φ is smooth: roots)."""
        D = self.D
        n, m, k, T = (np.ascontiguousarray(v).ravel() for v in np.broadcast_arrays(n, m, k, T))
        P = self.parts(n, m, k)
        P["T"] = T = T.astype(float)
        a, W, Wc, s, c, bf, B, F = (P[x] for x in ("a", "W", "Wc", "s", "c", "bf", "B", "F"))
        ok = P["ok"] = self.min_delay(n, m, k) <= T
        cl_hi = np.where(Wc > 0, Wc / D.slot, 0.0)
        cl_lo = np.where(Wc > 0, Wc / max(D.fc_lo, 1e-300), 0.0) if self.cloud else np.zeros_like(T)
        up_time = np.where(ok, T - a - W / F - cl_hi, 1.0)   # the most time the uplink may take (largest shares)
        need = np.where(ok & (s > 0), s / np.where(up_time > 0, up_time, 1.0), 0.0)
        bf1 = np.where(ok, bf, 1.0)
        blo = P["blo"] = np.where(ok, np.minimum(np.maximum(b_for_rate(c, 1.0, need, bf1, B), bf1), B), 1.0)
        # beyond b_kink both shares sit at their lower bounds (φ' = λ there): φ is smooth on [blo, bhi]
        room = np.where(ok, T - a - W / D.fe_lo - cl_lo, 0.0)
        kink = ok & (s > 0) & (room > 0)
        bhi = P["bhi"] = B.astype(float).copy()
        if kink.any():
            bhi[kink] = np.clip(b_for_rate(c[kink], 1.0, s[kink] / room[kink], blo[kink], B[kink]), blo[kink], B[kink])
        return P

    def _split(self, P, sel, L, mu, pi):
        D = self.D
        if self.cloud:
            return compute_split(P["W"][sel], P["Wc"][sel], L, mu, pi, D.fe_lo, P["F"][sel], D.fc_lo, D.slot)
        W = P["W"][sel]
        with np.errstate(divide="ignore", invalid="ignore"):
            fe = np.clip(W / L, D.fe_lo, P["F"][sel])
        inner = (fe > D.fe_lo) & (fe < P["F"][sel])
        nu = np.where(fe > D.fe_lo, mu * fe * fe / np.where(W > 0, W, 1.0), 0.0)
        return mu * fe, fe, np.zeros_like(fe), nu, np.where(inner, np.sqrt(mu * W), 0.0)

    def price(self, n, m, k, T, lam, mu, pi=0.0, prep=None):
        """(R_o, fe, b, fc, ν) of options (n, m, k) at levels T and prices lam, mu, pi (broadcast against the
        options; ``prep`` from ``prepare`` saves the level's constants); R = inf where the option cannot
        meet T. ν = −∂R_o/∂T (the delay constraint's multiplier)."""
        P = self.prepare(n, m, k, T) if prep is None else prep
        T, a, s, c, blo, bhi, ok = (P[x] for x in ("T", "a", "s", "c", "blo", "bhi", "ok"))
        lam, mu, pi = (np.broadcast_to(np.asarray(v, float), T.shape) for v in (lam, mu, pi))

        def left(b, sel):
            with np.errstate(divide="ignore", invalid="ignore"):
                t_up = np.where(s[sel] > 0, s[sel] / rate(1.0, b, c[sel]), 0.0)
            return T[sel] - a[sel] - t_up, t_up

        def d1d2(b, sel):   # φ'(b), φ''(b): φ' = λ − ν A, A = s r'/r² = dL/db; φ'' = −ν'(L) A² − ν A' ≥ 0
            L, t_up = left(b, sel)
            _, _, _, nu, cq = self._split(P, sel, L, mu[sel], pi[sel])
            z = c[sel] / b
            l1 = np.log1p(z)
            r = b * l1 / LN2
            r1 = (l1 - z / (1 + z)) / LN2                                 # r'(b)
            r2 = -z * z / (b * (1 + z) ** 2 * LN2)                        # r''(b)
            A = s[sel] * r1 / (r * r)
            A1 = s[sel] * (r2 / (r * r) - 2 * r1 * r1 / (r * r * r))
            with np.errstate(divide="ignore", invalid="ignore"):
                dnu = np.where(cq > 0, -2 * nu ** 1.5 / np.where(cq > 0, cq, 1.0), 0.0)
            return lam[sel] - nu * A, -dnu * A * A - nu * A1

        paid = (mu > 0) | (pi > 0)
        b = np.array(blo, float)
        free = ok & (s > 0) & paid & (lam <= 0)
        b[free] = bhi[free]                 # bandwidth free: as much as still lowers the compute cost
        act = np.nonzero(ok & (s > 0) & paid & (lam > 0))[0]
        if act.size:
            b[act] = self._b_newton(d1d2, blo[act], bhi[act], act)
        allx = np.arange(T.size)
        L, _ = left(b, allx)
        L = np.where(ok, L, 1.0)
        cost, fe, fc, nu, _ = self._split(P, allx, L, mu, pi)
        val = np.where(ok, cost + lam * b, np.inf)
        return val, fe, b, fc, nu

    @staticmethod
    def _b_newton(d1d2, lo, hi, idx, maxit=60):
        """argmin of the convex φ on [lo, hi] per entry (φ', φ'' from ``d1d2(b, idx)``): safeguarded Newton
        from the geometric middle, bisection (in log b) whenever a step leaves the bracket kept by the
        sign of φ'. Stops at a relative step of 1e-13."""
        lo, hi = lo.copy(), hi.copy()
        b = np.sqrt(lo * hi)
        d1lo, _ = d1d2(lo, idx)
        d1hi, _ = d1d2(hi, idx)
        out = np.where(d1lo >= 0, lo, np.where(d1hi <= 0, hi, np.nan))
        act = np.nonzero(np.isnan(out))[0]
        for _ in range(maxit):
            if act.size == 0:
                break
            d1, d2 = d1d2(b[act], idx[act])
            lo[act] = np.where(d1 < 0, b[act], lo[act])
            hi[act] = np.where(d1 >= 0, b[act], hi[act])
            with np.errstate(divide="ignore", invalid="ignore"):
                step = b[act] - d1 / d2
            # a Newton step below the tolerance: b is the root (rounding may put the step on the bracket's
            # end; a bisection there would walk back from the middle one halving at a time)
            small = (d1 == 0) | (np.abs(step - b[act]) <= 1e-13 * b[act])
            inside = (step > lo[act]) & (step < hi[act]) & np.isfinite(step)
            bn = np.where(small, b[act], np.where(inside, step, np.sqrt(lo[act] * hi[act])))
            conv = small | (np.abs(bn - b[act]) <= 1e-13 * bn) | (hi[act] - lo[act] <= 1e-13 * hi[act])
            b[act] = bn
            out[act[conv]] = bn[conv]
            act = act[~conv]
        out[act] = b[act]
        return out

    # -- fixed user sets ------------------------------------------------------------------------------
    def check(self, server, k, T, lam0=None, pi0=None, only=None, proof_only=False):
        """Every server's users at levels T (N,) (one per user): returns (G − F per server, λ*, π*, fe, b,
        fc). G − F ≤ 0: feasible, with shares within every budget; > 0: infeasible and (λ*, 1, π*) a price
        triple whose cut the set violates (inf: some option cannot meet its level). ``lam0``, ``pi0`` (M,):
        guesses of the maximiser (e.g. from a nearby level) that narrow the roots' brackets. ``only``: the
        servers to check (default: every used one; the others report −inf). ``proof_only``: an infeasible
        server may report any prices that prove it (G − F is then a lower bound on the excess, > 0)."""
        D = self.D
        M, N = D.M, server.size
        n = np.arange(N)
        cnt = np.bincount(server, minlength=M)
        used = np.nonzero(cnt > 0)[0]
        excess, lam, pi = np.full(M, -np.inf), np.zeros(M), np.zeros(M)
        fe, b, fc = np.zeros(N), np.zeros(N), np.zeros(N)
        P = self.prepare(n, server, k, T)
        bad = np.bincount(server, weights=~P["ok"], minlength=M) > 0
        excess[bad] = np.inf
        todo = np.array([m for m in used if not bad[m] and (only is None or m in only)], dtype=int)
        if todo.size == 0:
            return excess, lam, pi, fe, b, fc
        us_all = np.nonzero(np.isin(server, todo))[0]
        Pu = {key: val[us_all] for key, val in P.items()}
        srv = server[us_all]

        def sub(servers):
            keep = np.isin(srv, servers)
            return {key: val[keep] for key, val in Pu.items()}, srv[keep]

        def best_lam(pim, servers, warm):
            """λ*(π) per server: the root of Σ b = B_m (0 when every user taking b = B_m fits)."""
            Ps, ss = sub(servers)
            bb = self.price(None, None, None, None, 0.0, 1.0, pim[ss], prep=Ps)[2]
            tot0 = np.bincount(ss, weights=bb, minlength=M)
            out = np.zeros(M)
            root = servers[tot0[servers] > D.B[servers] * (1 + 1e-12)]
            if root.size == 0:
                return out
            Pr, sr = sub(root)

            def g(y, i):    # B_m − Σ b(λ = e^y): increasing in y
                sel = root[i]
                lm = np.zeros(M)
                lm[sel] = np.exp(y)
                keep = np.isin(sr, sel)
                Pk = {key: val[keep] for key, val in Pr.items()}
                bb = self.price(None, None, None, None, lm[sr[keep]], 1.0, pim[sr[keep]], prep=Pk)[2]
                return D.B[sel] - np.bincount(sr[keep], weights=bb, minlength=M)[sel]

            out[root] = np.exp(root_inc(g, *self._bracket(g, root, np.log(D.F[root] / D.B[root]), warm), rtol=0.0,
                                        atol=1e-12, bisect=2))
            return out

        warm_l = np.zeros(M) if lam0 is None else lam0.copy()
        nested = todo
        if self.cloud:
            # Newton on (log λ, log π) first (docs §8.4), from the warm start where both prices are
            # positive, else from the budgets' natural scale (F/B, F/slot)
            l0 = np.zeros(M) if lam0 is None else np.asarray(lam0, float)
            p0 = np.zeros(M) if pi0 is None else np.asarray(pi0, float)
            lam0, pi0 = np.where(l0 > 0, l0, D.F / D.B), np.where(p0 > 0, p0, D.F / D.slot)
            both = todo
            if both.size:
                lm, pm, conv = self._newton2(sub, both, lam0, pi0)
                if proof_only and not conv.all():
                    # weak duality: any prices whose dual value exceeds F_m prove the set infeasible,
                    # and their cut is violated by it — the maximiser is not needed for that
                    Ps, ss = sub(both)
                    pl, pp = np.zeros(M), np.zeros(M)
                    pl[both], pp[both] = lm, pm
                    v = self.price(None, None, None, None, pl[ss], 1.0, pp[ss], prep=Ps)[0]
                    dual = np.bincount(ss, weights=v, minlength=M)[both] - lm * D.B[both] - pm * D.slot
                    conv |= dual > D.F[both] * (1 + 1e-9)
                lam[both[conv]], pi[both[conv]] = lm[conv], pm[conv]
                nested = np.setdiff1d(todo, both[conv])
        if self.cloud and nested.size:
            # π*: Σ fc(π, λ*(π)) = slot, decreasing in π; π = 0 (slot free: every user takes all of it) first
            def fc_sum(pim, servers):
                lm = best_lam(pim, servers, warm_l)
                warm_l[servers] = np.where(lm[servers] > 0, lm[servers], warm_l[servers])
                Ps, ss = sub(servers)
                ff = self.price(None, None, None, None, lm[ss], 1.0, pim[ss], prep=Ps)[3]
                return np.bincount(ss, weights=ff, minlength=M)

            tot0 = fc_sum(np.zeros(M), nested)
            root = nested[tot0[nested] > D.slot * (1 + 1e-12)]
            if root.size:
                def g(y, i):
                    sel = root[i]
                    pm = np.zeros(M)
                    pm[sel] = np.exp(y)
                    return D.slot - fc_sum(pm, sel)[sel]

                pi[root] = np.exp(root_inc(g, *self._bracket(g, root, np.log(D.F[root] / D.slot), pi0), rtol=0.0,
                                           atol=1e-12, bisect=2))
        if nested.size:
            lam[nested] = best_lam(pi, nested, warm_l)[nested]
        v, f, bb, ff, nu = self.price(None, None, None, None, lam[srv], 1.0, pi[srv], prep=Pu)
        fe[us_all], b[us_all], fc[us_all] = f, bb, ff
        G = np.bincount(srv, weights=v, minlength=M) - lam * D.B - pi * (D.slot if self.cloud else 0.0)
        excess[todo] = G[todo] - D.F[todo]
        self.last_slope = np.bincount(srv, weights=nu, minlength=M)      # −dG/dT (Danskin: −Σ ∂R_o/∂T)
        return excess, lam, pi, fe, b, fc

    def _newton2(self, sub, servers, lam0, pi0, maxit=15):
        """Both prices at once: Newton on r(y, z) = (log Σb/B, log Σfc/slot) = 0 in y = log λ, z = log π
        (finite-difference Jacobian, steps capped at 2 in log and halved while the residual grows).
        Returns (λ, π, converged) for ``servers``; the unconverged ones go to the nested roots."""
        D, M = self.D, self.D.M
        Ps, ss = sub(servers)
        y, z = np.log(lam0[servers]), np.log(pi0[servers])

        def resid(y, z):
            lm, pm = np.zeros(M), np.zeros(M)
            lm[servers], pm[servers] = np.exp(y), np.exp(z)
            out = self.price(None, None, None, None, lm[ss], 1.0, pm[ss], prep=Ps)
            sb = np.bincount(ss, weights=out[2], minlength=M)[servers]
            sf = np.bincount(ss, weights=out[3], minlength=M)[servers]
            return np.log(sb / D.B[servers]), np.log(sf / D.slot)

        r1, r2 = resid(y, z)
        conv = np.zeros(servers.size, bool)
        for _ in range(maxit):
            conv = (np.abs(r1) <= 1e-12) & (np.abs(r2) <= 1e-12)
            if conv.all():
                break
            h = 1e-6
            a1, a2 = resid(y + h, z)
            c1, c2 = resid(y, z + h)
            j00, j01, j10, j11 = (a1 - r1) / h, (c1 - r1) / h, (a2 - r2) / h, (c2 - r2) / h
            with np.errstate(divide="ignore", invalid="ignore"):
                det = j00 * j11 - j01 * j10
                dy = np.clip(-(j11 * r1 - j01 * r2) / det, -2.0, 2.0)
                dz = np.clip(-(-j10 * r1 + j00 * r2) / det, -2.0, 2.0)
            bad = ~np.isfinite(dy) | ~np.isfinite(dz) | conv
            dy, dz = np.where(bad, 0.0, dy), np.where(bad, 0.0, dz)
            norm = np.maximum(np.abs(r1), np.abs(r2))
            t = np.ones(servers.size)
            for _ in range(5):
                n1, n2 = resid(y + t * dy, z + t * dz)
                worse = np.maximum(np.abs(n1), np.abs(n2)) > norm
                if not worse.any():
                    break
                t = np.where(worse, 0.5 * t, t)
            y, z, r1, r2 = y + t * dy, z + t * dz, n1, n2
        conv = (np.abs(r1) <= 1e-12) & (np.abs(r2) <= 1e-12)
        return np.exp(y), np.exp(z), conv

    @staticmethod
    def _bracket(g, servers, centre, warm):
        """A log-price bracket [lo, hi] per server for the increasing g: ±25 around the natural scale,
        narrowed around a warm start (±0.02, widened ×8 while g keeps its sign) where g changes sign."""
        lo, hi = centre - 25.0, centre + 25.0
        if warm is not None and np.all(warm[servers] > 0):
            y0 = np.log(warm[servers])
            idx = np.arange(servers.size)
            have_lo, have_hi = np.zeros(servers.size, bool), np.zeros(servers.size, bool)
            for step in (0.02, 0.16, 1.28):
                need = ~(have_lo & have_hi)
                if not need.any():
                    break
                glo, ghi = g(y0 - step, idx), g(y0 + step, idx)
                new_lo, new_hi = need & ~have_lo & (glo < 0), need & ~have_hi & (ghi > 0)
                lo, hi = np.where(new_lo, y0 - step, lo), np.where(new_hi, y0 + step, hi)
                have_lo |= new_lo
                have_hi |= new_hi
        return lo, hi

    @staticmethod
    def _newton(g, lo, hi, base, atol, maxit=100, deadline=np.inf):
        """Root of increasing functions (``g(x, sel)`` → (value, slope)) on brackets [lo, hi], Newton steps
        from the upper end, bisection whenever a step leaves the bracket (vectorised). Where g(hi) ≤ 0
        the answer is hi; where g(lo) ≥ 0, lo."""
        lo, hi = np.array(lo, float), np.array(hi, float)
        x = hi.copy()
        val, slope = g(x, np.arange(x.size))
        done = val <= 0
        act = np.nonzero(~done)[0]
        hi_v = val
        glo, _ = g(lo[act], act) if act.size else (np.zeros(0), None)
        at_lo = act[glo >= 0]
        x[at_lo] = lo[at_lo]
        act = act[glo < 0]
        for _ in range(maxit):
            if act.size and time.perf_counter() > deadline:     # out of time: the feasible end of the bracket
                x[act] = hi[act]
                break
            if act.size == 0:
                break
            v, s = val[act], slope[act]
            with np.errstate(divide="ignore", invalid="ignore"):
                step = np.where(s > 0, x[act] - v / s, np.nan)
            inside = (step > lo[act]) & (step < hi[act])
            xn = np.where(inside, step, 0.5 * (lo[act] + hi[act]))
            vn, sn = g(xn, act)
            lo[act] = np.where(vn < 0, xn, lo[act])
            hi[act] = np.where(vn >= 0, xn, hi[act])
            x[act], val[act], slope[act] = xn, vn, sn
            conv = (np.abs(vn) <= 1e-14) | (hi[act] - lo[act] <= atol)
            # end on the feasible side: the bracket's end, unless the root is met to rounding (a Newton
            # run that stays on the infeasible side never moves hi, which may be the far upper end)
            x[act] = np.where(conv & (vn < 0) & (np.abs(vn) > 1e-14), hi[act], x[act])
            act = act[~conv]
        return x

    def _makespan_newton(self, server, k, dl, sv, lo, T0, lam0=None, pi0=None, maxit=40):
        """Servers ``sv`` (each with ≥ 2 users) at once: the makespan as the root of the 3-D system
        Σ fe = F_m, Σ b = B_m, Σ fc = slot in (log(T − lo), log λ, log π) (μ = 1; the shares from ``price``
        at (T, λ, 1, π)). At a root the shares meet every budget and every user its level T, and they
        minimise Σ fe given the others (KKT), so G(T) = F_m: T is the makespan (docs/exact.md §8.4).
        Damped Newton, finite-difference Jacobian, steps capped at 2 in log and halved while the residual
        grows; a price whose budget no user asks for (no uplink / no cloud work) stays 0. Returns
        (T, λ, π, fe, b, fc, converged): per server (len(sv)) and per user (N; 0 off ``sv``)."""
        D = self.D
        N = server.size
        pos = np.full(D.M, -1)
        pos[sv] = np.arange(sv.size)
        us = np.nonzero(pos[server] >= 0)[0]
        ss, j, S = server[us], pos[server[us]], sv.size
        Pn = self.parts(us, ss, k[us])
        has_b = np.bincount(j, weights=(Pn["s"] > 0), minlength=S) > 0
        has_c = (np.bincount(j, weights=(Pn["Wc"] > 0), minlength=S) > 0) & self.cloud
        act = np.stack([np.ones(S, bool), has_b, has_c])                                     # (3, S)
        cap = np.stack([D.F[sv], D.B[sv], np.full(S, D.slot)])
        lo_s = lo[sv]

        def resid(u):
            T = lo_s + np.exp(u[0])
            lam, pi = np.where(has_b, np.exp(u[1]), 0.0), np.where(has_c, np.exp(u[2]), 0.0)
            P = self.prepare(us, ss, k[us], np.minimum(T[j], dl[us]))
            _, fe, b, fc, _ = self.price(None, None, None, None, lam[j], 1.0, pi[j], prep=P)
            tot = np.stack([np.bincount(j, weights=v, minlength=S) for v in (fe, b, fc)])
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.where(act, np.log(tot / cap), 0.0)
            r[~np.isfinite(r)] = np.inf
            return r, (T, lam, pi, fe, b, fc)

        y0 = np.log(lam0[sv]) if lam0 is not None and np.all(lam0[sv] > 0) else np.log(D.F[sv] / D.B[sv])
        z0 = (np.log(pi0[sv]) if pi0 is not None and np.all(pi0[sv] > 0)
              else np.log(D.F[sv] / D.slot) if self.cloud else np.zeros(S))
        u = np.stack([np.log(np.maximum(T0[sv] - lo_s, 1e-300)), y0, z0])
        r, out = resid(u)
        eye = np.broadcast_to(np.eye(3), (S, 3, 3))
        h = 1e-6
        for _ in range(maxit):
            norm = np.max(np.abs(r), axis=0)
            todo = norm > 1e-12
            if not todo.any() or not np.all(np.isfinite(norm)):
                break
            J = np.empty((S, 3, 3))
            for c in range(3):
                du = u.copy()
                du[c] += h
                J[:, :, c] = ((resid(du)[0] - r) / h).T
            inact = ~act.T                                                                   # (S, 3)
            J = np.where(inact[:, :, None] | inact[:, None, :], eye, J)
            try:
                step = -np.linalg.solve(J, r.T[:, :, None])[:, :, 0].T
            except np.linalg.LinAlgError:
                break
            step = np.where(np.isfinite(step) & todo & act, np.clip(step, -2.0, 2.0), 0.0)
            t = np.ones(S)
            for _ in range(8):
                rn, on = resid(u + t * step)
                worse = np.max(np.abs(rn), axis=0) > norm
                if not worse.any():
                    break
                t = np.where(worse, 0.5 * t, t)
            u, r, out = u + t * step, rn, on
        conv = np.max(np.abs(r), axis=0) <= 1e-12
        T, lam, pi, fe_u, b_u, fc_u = out
        fe, b, fc = np.zeros(N), np.zeros(N), np.zeros(N)
        fe[us], b[us], fc[us] = fe_u, b_u, fc_u
        return T, lam, pi, fe, b, fc, conv

    def makespan(self, server, k, deadline=None):
        """The least level T_m each server's users meet (their own deadlines min(T, deadline_n) too),
        with the shares at it. Returns (T (M,), λ (M,), π (M,), fe, b, fc); T_m = inf if even T = ∞ is
        infeasible (deadlines), −inf for an empty server."""
        D = self.D
        M, N = D.M, server.size
        n = np.arange(N)
        dl = np.full(N, np.inf) if deadline is None else np.asarray(deadline, float)
        cnt = np.bincount(server, minlength=M)
        lo = np.full(M, -np.inf)
        np.maximum.at(lo, server, self.min_delay(n, server, k))
        used = np.nonzero(cnt > 0)[0]
        Tm = np.full(M, -np.inf)
        # an upper level: equal shares of every budget
        P = self.parts(n, server, k)
        eq = cnt[server]
        with np.errstate(divide="ignore", invalid="ignore"):
            d_eq = (P["a"] + P["W"] * eq / P["F"] + np.where(P["Wc"] > 0, P["Wc"] * eq / D.slot, 0.0)
                    + np.where(self.s > 0, self.s / rate(1.0, np.maximum(P["B"] / eq, P["bf"]), P["c"]), 0.0))
        hi = np.full(M, -np.inf)
        np.maximum.at(hi, server, d_eq)
        hi = np.maximum(hi, lo * (1 + 1e-9))
        # deadlines: the set must be feasible with T = ∞ (levels = deadlines) at all
        infeasible = self.check(server, k, dl)[0] > 0 if np.isfinite(dl).any() else np.zeros(M, bool)

        def level(Ts):
            return np.minimum(Ts[server], dl)

        warm_l, warm_p = np.zeros(M), np.zeros(M)

        def g(x, i):     # log F − log G(T) at T = lo + e^x, increasing in x, and its slope. G blows up like a
            sel = used_ok[i]   # power of 1/(T − lo) near the least possible level lo: ~linear in x there
            Ts = np.full(M, np.inf)
            Ts[sel] = lo[sel] + np.exp(x)
            ex, lm, pm, _, _, _ = self.check(server, k, level(Ts), lam0=warm_l if np.all(warm_l[sel] > 0) else None,
                                             pi0=warm_p if np.all(warm_p[sel] > 0) else None, only=sel)
            warm_l[sel] = np.where(lm[sel] > 0, lm[sel], warm_l[sel])
            warm_p[sel] = np.where(pm[sel] > 0, pm[sel], warm_p[sel])
            G = np.maximum(ex[sel] + D.F[sel], 1e-300)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log(D.F[sel]) - np.log(G), self.last_slope[sel] * np.exp(x) / G

        used_ok = np.array([m for m in used if not infeasible[m]], dtype=int)
        lam, pi, fe, b, fc = np.zeros(M), np.zeros(M), np.zeros(N), np.zeros(N), np.zeros(N)
        # one user alone: the makespan is its least delay, at the whole server (prices 0: nothing is shared)
        one = used_ok[cnt[used_ok] == 1]
        Tm[one] = lo[one]
        alone = np.isin(server, one)
        fe[alone], b[alone] = D.F[server[alone]], D.B[server[alone]]
        fc[alone] = D.slot if self.cloud else 0.0
        # several users: the 3-D Newton on the budgets' roots; the nested roots below where it fails
        many = used_ok[cnt[used_ok] >= 2]
        if many.size:
            Tn, ln, pn, fe_n, b_n, fc_n, conv = self._makespan_newton(server, k, dl, many, lo, hi)
            done = many[conv]
            Tm[done], lam[done], pi[done] = Tn[conv], ln[conv], pn[conv]
            mine = np.isin(server, done)
            fe[mine], b[mine], fc[mine] = fe_n[mine], b_n[mine], fc_n[mine]
            used_ok = many[~conv]
        if used_ok.size:
            Ts = np.full(M, np.inf)
            Ts[used_ok] = hi[used_ok]
            for _ in range(60):      # make sure the upper end is feasible (rate floors can exceed equal shares)
                ex = self.check(server, k, level(Ts), only=used_ok)[0]
                bad = used_ok[ex[used_ok] > 0]
                if bad.size == 0:
                    break
                Ts[bad] *= 2.0
            span = Ts[used_ok] - lo[used_ok]
            x = self._newton(g, np.log(span * 1e-15 + 1e-300), np.log(span), lo[used_ok],
                             atol=1e-13 * np.max(Ts[used_ok] / np.maximum(span, 1e-300)), deadline=self.deadline)
            Tm[used_ok] = lo[used_ok] + np.exp(x)
            # shares at a level a hair above the root (the root's own side may be infeasible by rounding)
            Ts = np.where(np.isfinite(Tm), Tm * (1 + 1e-12), np.inf)
            _, lm, pm, f_, b_, c_ = self.check(server, k, level(Ts), lam0=warm_l, pi0=warm_p, only=used_ok)
            mine = np.isin(server, used_ok)
            lam[used_ok], pi[used_ok] = lm[used_ok], pm[used_ok]
            fe[mine], b[mine], fc[mine] = f_[mine], b_[mine], c_[mine]
        Tm[infeasible & (cnt > 0)] = np.inf
        return Tm, lam, pi, fe, b, fc
