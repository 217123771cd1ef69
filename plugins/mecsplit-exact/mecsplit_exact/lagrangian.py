"""The Lagrangian dual of the per-server budgets and its maximisation (boxstep cutting planes).

Dual function (docs/exact.md §2): for λ ≥ 0 (bandwidth; an "eq" bandwidth budget is relaxed to ≤,
which is a relaxation) and μ (GPU frequency; ≥ 0 for "le", free for "eq"),

    L(λ, μ) = Σ_n min_{(m,α) allowed} [ α A_n + ω_s AS_n(α) + E_{nm}(Υ−α; μ_m) + U_{nm}(λ_m) ]
              − Σ_m (λ_m B_m + μ_m F_m)

is a lower bound on the optimum of every node whose feasible set is covered by the allowed options.
It is maximised by a disaggregated cutting-plane (Kelley) master LP with a trust box (boxstep),
the LP holding only the cuts of the pool it needs (row generation, Master.solve),
solved by HiGHS; the row duals of the master are convex weights over options (for branching).
"""

from __future__ import annotations

import numpy as np

from mecsplit import quiet

from .joint import deadline_options
from .subproblems import SAFETY, edge_solve

try:
    import highspy
except ImportError:  # pragma: no cover - declared dependency
    highspy = None

INF = 1e30
PURGE_ROWS = 20_000   # LP rows above which (and 4× the last rebuild's) the rows slack at the last LP are dropped
ALL_ROWS = 40_000     # pool size up to which the LP holds every cut (plain Kelley; the pool's LP is cheap there)
SEPARATE = 5          # pool cuts added per user and round of Master.solve (the most violated)
SEPARATE_TOL = 1e-11  # violation (θ units, relative above 1) below which a pool cut counts as satisfied


class DualEval:
    """Evaluate L at multipliers for a node (allowed (N,M) mask, split index range [klo, khi])."""

    def __init__(self, D):
        self.D = D
        self._up_cache: dict[bytes, tuple] = {}

    def uplink(self, lam):
        key = lam.tobytes()
        hit = self._up_cache.get(key)
        if hit is None:
            D = self.D
            hit = D.uplink(np.arange(D.N)[:, None], np.arange(D.M)[None, :], lam[None, :])
            if len(self._up_cache) > 64:
                self._up_cache.clear()
            self._up_cache[key] = hit
        return hit

    def edge(self, mu, allowed, klo, khi):
        """E[n,m,k] = min_x w_k(t/x + e x²) + μ_m x for the splits that can be optimal; +inf elsewhere.

        E is concave in w (a minimum of affine functions of w), so on a user's split range its minimum
        is at an end: LB(k) = user_part[k] + min(E(w_klo), E(w_khi)) bounds every option from below,
        and only the splits with LB below the better end are solved (exact pruning)."""
        D = self.D
        N, M, K = D.N, D.M, D.K
        rows = np.arange(N)
        wl, wh = D.w[klo], D.w[khi]
        El, xl = edge_solve(wl[:, None], D.t, D.e, mu[None, :], D.fe_lo, D.F[None, :])
        Eh, xh = edge_solve(wh[:, None], D.t, D.e, mu[None, :], D.fe_lo, D.F[None, :])
        up = D.user_part
        vl = up[rows, klo][:, None] + El
        vh = up[rows, khi][:, None] + Eh
        best0 = np.minimum(vl, vh)
        kk = np.arange(K)
        inner = (kk[None, :] > klo[:, None]) & (kk[None, :] < khi[:, None])            # (N, K)
        LB = up[:, None, :] + np.minimum(El, Eh)[:, :, None]
        cand = inner[:, None, :] & allowed[:, :, None] & (LB < best0[:, :, None])
        E = np.full((N, M, K), np.inf)
        x = np.full((N, M, K), np.nan)
        E[rows, :, klo], x[rows, :, klo] = El, xl
        E[rows, :, khi], x[rows, :, khi] = Eh, xh
        nn, mm, kc = np.nonzero(cand)
        if nn.size:
            ev, xv = edge_solve(D.w[kc], D.t[nn, mm], D.e[nn, mm], mu[mm], D.fe_lo, D.F[mm])
            E[nn, mm, kc], x[nn, mm, kc] = ev, xv
        self.n_edge = 2 * N * M + nn.size
        return E, x

    def __call__(self, lam, mu, allowed, klo, khi):
        """Returns dict with L (certified bound), per-user best value/option/resources and the (N,M)
        table of best values over α."""
        D = self.D
        U, p, b = self.uplink(lam)
        E, x = self.edge(mu, allowed, klo, khi)
        cost = D.user_part[:, None, :] + E + U[:, :, None]
        b3 = None
        if D.has_deadline:   # users with a deadline: every option's joint value (joint.py); no pruning
            dn, dm, dk, dv, dfe, db = deadline_options(D, lam, mu, allowed, klo, khi)
            users = np.isfinite(D.deadline_s)
            cost[users] = np.inf
            cost[dn, dm, dk] = dv
            x = x.copy()
            x[dn, dm, dk] = dfe
            b3 = np.repeat(b[:, :, None], D.K, axis=2)
            b3[dn, dm, dk] = db
        cost = np.where(allowed[:, :, None] & D.possible, cost, np.inf)
        kbest = np.argmin(cost, axis=2)                                              # (N, M)
        vnm = np.take_along_axis(cost, kbest[:, :, None], axis=2)[:, :, 0]           # (N, M)
        mbest = np.argmin(vnm, axis=1)
        rows = np.arange(D.N)
        v = vnm[rows, mbest]
        kb = kbest[rows, mbest]
        xs = x[rows, mbest, kb]
        L = float(np.sum(v) - lam @ D.B - mu @ D.F)
        Lc = L - SAFETY * (np.sum(np.abs(v)) + abs(lam @ D.B) + abs(mu @ D.F))
        return {"L": Lc, "L_raw": L, "v": v, "m": mbest, "k": kb, "vnm": vnm, "knm": kbest,
                "b": b[rows, mbest] if b3 is None else b3[rows, mbest, kb], "p": p[rows, mbest], "x": xs, "E": E,
                "x_all": x, "b_all": b, "b3": b3, "U": U, "cost": cost}


FIELDS = ("user", "srv", "k", "c", "bc", "xc")   # a cut's user, server, split, constant, λ and μ coefficients


def _keys(user, srv, k, bc, xc):
    """Identity of cuts (user, option, resources): the same option at the same resources is the same cut."""
    return zip(user.tolist(), srv.tolist(), k.tolist(), np.round(bc, 12).tolist(), np.round(xc, 12).tolist())


class Master:
    """Disaggregated Kelley master: max Σθ_n − λ·B − μ·F, θ_n ≤ c_j + b_j λ_{m_j} + x_j μ_{m_j}.
    Every cut found is kept in a pool (numpy arrays, FIELDS; ``_seen`` holds their keys, ``_keys``); the
    HiGHS LP holds only the pool rows ``_rows`` it has needed: ``solve`` adds, per user, the SEPARATE
    most violated pool cuts at the LP's solution and re-solves until none is violated, so its optimum is
    the whole pool's (row generation; docs/exact.md §2)."""

    def __init__(self, D):
        self.D = D
        self._h = None
        self._set(*(np.zeros(0, int) for _ in range(3)), *(np.zeros(0) for _ in range(3)))

    def _set(self, *cols):
        for name, col in zip(FIELDS, cols):
            setattr(self, name, col)
        self._seen = set(_keys(self.user, self.srv, self.k, self.bc, self.xc))
        self._rows = np.zeros(0, int)      # pool index of each LP row
        self._h = None

    def add(self, n, m, k, c, bc, xc):
        n, m, k, c, bc, xc = (np.atleast_1d(np.asarray(a)) for a in (n, m, k, c, bc, xc))
        new = np.zeros(n.size, bool)
        for j, key in enumerate(_keys(n, m, k, bc, xc)):
            if key not in self._seen:
                self._seen.add(key)
                new[j] = True
        for name, col in zip(FIELDS, (n, m, k, c, bc, xc)):
            setattr(self, name, np.concatenate([getattr(self, name), col[new].astype(getattr(self, name).dtype)]))

    def add_from_eval(self, ev, lam, mu, extra_near=0.0):
        """Cut of every user's best option; plus (extra_near > 0) the best option on each other server
        whose value is within extra_near (relative) of the user's best."""
        D = self.D
        n = np.arange(D.N)
        m, k = ev["m"], ev["k"]
        self.add(n, m, k, ev["v"] - lam[m] * ev["b"] - mu[m] * ev["x"], ev["b"], ev["x"])
        if extra_near > 0:
            vnm = ev["vnm"]
            near = (vnm <= (ev["v"] + extra_near * np.abs(ev["v"]))[:, None]) & np.isfinite(vnm)
            near[n, m] = False
            nn, mm = np.nonzero(near)
            if nn.size:
                kk = ev["knm"][nn, mm]
                bb = ev["b_all"][nn, mm] if ev.get("b3") is None else ev["b3"][nn, mm, kk]
                xx = ev["x_all"][nn, mm, kk]
                cc = vnm[nn, mm] - lam[mm] * bb - mu[mm] * xx
                self.add(nn, mm, kk, cc, bb, xx)

    def filtered(self, allowed, klo, khi):
        """A copy with the cuts of options still allowed at a child node."""
        keep = allowed[self.user, self.srv] & (klo[self.user] <= self.k) & (self.k <= khi[self.user])
        out = Master(self.D)
        out._set(*(getattr(self, name)[keep] for name in FIELDS))
        return out

    def purge(self):
        """Drop the LP rows that were slack (zero dual) at the last LP solve and rebuild the LP from the
        rest (they stay in the pool: ``solve`` adds them back when violated, so the LP optimum stays the
        pool's). Each user keeps its rows with positive dual (its convex weights sum to 1)."""
        self._rows = self._rows[np.abs(self._w) > 0]
        self._h = None
        self.purged = getattr(self, "purged", 0) + 1

    def _values(self, j, lam, mu):
        """Pool cuts j at multipliers (λ, μ), in the LP's θ units."""
        srv = self.srv[j]
        return (self.c[j] + self.bc[j] * lam[srv] + self.xc[j] * mu[srv]) / self._cs

    def _lowest(self, users, lam, mu):
        """Each of ``users``' pool cut of least value at (λ, μ)."""
        j = np.nonzero(np.isin(self.user, users))[0]
        o = j[np.lexsort((self._values(j, lam, mu), self.user[j]))]
        return o[np.r_[True, self.user[o][1:] != self.user[o][:-1]]]

    def _separate(self, theta, lam, mu):
        """Pool cuts not in the LP that θ violates (beyond SEPARATE_TOL), the SEPARATE most violated per user."""
        out = np.ones(self.c.size, bool)
        out[self._rows] = False
        j = np.nonzero(out)[0]
        val = self._values(j, lam, mu)
        viol = theta[self.user[j]] - val
        bad = viol > SEPARATE_TOL * np.maximum(1.0, np.abs(val))
        j, viol = j[bad], viol[bad]
        o = np.lexsort((-viol, self.user[j]))
        u = self.user[j][o]
        rank = np.arange(u.size) - np.searchsorted(u, u)
        return j[o[rank < SEPARATE]]

    def _add_rows(self, j, sl, sm):
        """Append pool cuts j to the HiGHS LP as rows θ_n − b λ − x μ ≤ c (scaled)."""
        N, M = self.D.N, self.D.M
        R = j.size
        user, srv = self.user[j], self.srv[j]
        idx = np.empty((R, 3), dtype=np.int32)
        val = np.empty((R, 3))
        idx[:, 0], idx[:, 1], idx[:, 2] = user, N + srv, N + M + srv
        cs = self._cs
        val[:, 0], val[:, 1], val[:, 2] = 1.0, -self.bc[j] * sl[srv] / cs, -self.xc[j] * sm[srv] / cs
        start = np.arange(0, 3 * R, 3, dtype=np.int32)
        self._h.addRows(R, np.full(R, -highspy.kHighsInf), self.c[j] / cs, 3 * R, start, idx.ravel(), val.ravel())
        self._rows = np.concatenate([self._rows, j])

    def solve(self, lam_lo, lam_hi, mu_lo, mu_hi, sl, sm):
        """LP in scaled multipliers λ = sl·λ', μ = sm·μ' (the raw λ can be ~1e-11: below LP tolerances).
        The HiGHS model is kept and grown row by row (warm-started dual simplex), by row generation."""
        D = self.D
        N, M = D.N, D.M
        lo = np.concatenate([lam_lo / sl, mu_lo / sm])
        hi = np.concatenate([lam_hi / sl, mu_hi / sm])
        if self._h is not None and self.c.size > ALL_ROWS and self._rows.size > max(PURGE_ROWS, 4 * self._kept):
            self.purge()
        if self._h is None or self._scale_key != (sl.tobytes(), sm.tobytes()):
            self._cs = max(float(np.mean(np.abs(self.c))), 1e-300)   # θ in units of a typical user cost
            lp = highspy.HighsLp()
            lp.num_col_ = N + 2 * M
            lp.col_cost_ = np.concatenate([-np.ones(N), D.B * sl / self._cs, D.F * sm / self._cs])
            lp.col_lower_ = np.concatenate([np.zeros(N), lo])
            lp.col_upper_ = np.concatenate([np.zeros(N), hi])
            h = quiet.highs({"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
            h.passModel(lp)
            rows, self._rows = self._rows, np.zeros(0, int)
            self._h, self._scale_key, self._has = h, (sl.tobytes(), sm.tobytes()), np.zeros(N, bool)
            if rows.size:
                self._add_rows(rows, sl, sm)
            self._kept = self._rows.size
        h = self._h
        h.changeColsBounds(2 * M, np.arange(N, N + 2 * M, dtype=np.int32), lo, hi)
        if self.c.size <= ALL_ROWS:
            # a small pool goes into the LP whole (no separation): row generation reaches the same LP
            # value but can end at another maximiser of a flat dual, and the MILP's cuts sit at those
            # prices (200×20 seed 0: 48.5 vs 15.5 s of CPU to certify, docs/exact.md §5 session 8)
            new = np.setdiff1d(np.arange(self.c.size), self._rows)
            if new.size:
                self._add_rows(new, sl, sm)
        # every user with a cut has a row (its θ bounded): its cut lowest at the box's centre
        has = np.bincount(self.user, minlength=N) > 0
        missing = np.nonzero(has & (np.bincount(self.user[self._rows], minlength=N) == 0))[0]
        if missing.size:
            self._add_rows(self._lowest(missing, (lam_lo + lam_hi) / 2, (mu_lo + mu_hi) / 2), sl, sm)
        newly = np.nonzero(has & ~self._has)[0]
        if newly.size:
            h.changeColsBounds(newly.size, newly.astype(np.int32), np.full(newly.size, -INF), np.full(newly.size, INF))
            self._has = has
        while True:
            h.run()
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                self._h = None
                return None
            col = np.asarray(h.getSolution().col_value)
            lam, mu = col[N:N + M] * sl, col[N + M:] * sm
            j = self._separate(col[:N], lam, mu)
            if j.size == 0:
                break
            self._add_rows(j, sl, sm)
        w = self._w = -np.asarray(h.getSolution().row_dual)
        r = self._rows
        return {"lam": lam, "mu": mu, "ub": -h.getInfo().objective_function_value * self._cs,
                "weights": w, "user": self.user[r], "srv": self.srv[r], "k": self.k[r]}


def _scales(v):
    a = np.abs(v)
    return np.maximum(a, max(1e-3 * a.max(initial=0.0), 1e-300))


def maximise(D, ev_fn, master, lam0, mu0, allowed, klo, khi, *, max_iter=60, rtol=1e-9, cutoff=np.inf,
             deadline=None, clock=None, sl=None, sm=None):
    """Boxstep cutting planes from (lam0, mu0). Multipliers are scaled per server by ``sl``/``sm``
    (default: |λ0|, |μ0| floored at 1e-3 of their max); the box is ±rad in scaled units.
    Returns (best eval with its lam/mu, last master solution, iterations)."""
    lam_c, mu_c = np.maximum(lam0, 0.0), (mu0.copy() if D.eq_f else np.maximum(mu0, 0.0))
    sl = _scales(lam_c) if sl is None else sl
    sm = _scales(mu_c) if sm is None else sm
    if not np.all(sl > 0):
        sl = np.full(D.M, 1e-12)
    if not np.all(sm > 0):
        sm = np.full(D.M, 1e-6)
    ev = ev_fn(lam_c, mu_c, allowed, klo, khi)
    master.add_from_eval(ev, lam_c, mu_c, extra_near=1e-3)
    best = ev
    rad = 0.5
    sol = None
    it = 0
    for it in range(1, max_iter + 1):
        if best["L"] >= cutoff or (deadline is not None and clock() > deadline):
            break
        dl, dm = rad * sl, rad * sm
        lam_lo, lam_hi = np.maximum(lam_c - dl, 0.0), lam_c + dl
        mu_lo = mu_c - dm if D.eq_f else np.maximum(mu_c - dm, 0.0)
        mu_hi = mu_c + dm
        sol = master.solve(lam_lo, lam_hi, mu_lo, mu_hi, sl, sm)
        if sol is None:
            break
        gap = sol["ub"] - best["L_raw"]
        lam_n, mu_n = np.clip(sol["lam"], lam_lo, lam_hi), np.clip(sol["mu"], mu_lo, mu_hi)
        tb = 1e-7 * rad
        on_box = (np.any((lam_hi - lam_n <= tb * sl) | ((lam_n - lam_lo <= tb * sl) & (lam_lo > 0)))
                  or np.any((mu_hi - mu_n <= tb * sm) | ((mu_n - mu_lo <= tb * sm) & ((mu_lo > 0) | D.eq_f))))
        if gap <= rtol * max(1.0, abs(best["L_raw"])):
            if not on_box:
                break
            rad *= 4.0
            continue
        ev = ev_fn(lam_n, mu_n, allowed, klo, khi)
        master.add_from_eval(ev, lam_n, mu_n, extra_near=1e-4)
        if ev["L_raw"] >= best["L_raw"] + 0.1 * (sol["ub"] - best["L_raw"]):
            best, lam_c, mu_c = ev, lam_n, mu_n
            if on_box:
                rad = min(rad * 2.0, 1e3)
        else:
            if ev["L_raw"] > best["L_raw"]:
                best, lam_c, mu_c = ev, lam_n, mu_n
            rad = max(rad * 0.7, 1e-9)
    best["lam"], best["mu"] = lam_c, mu_c
    best["sl"], best["sm"] = sl, sm
    return best, sol, it
