"""The Lagrangian dual of the per-server budgets and its maximisation (boxstep cutting planes).

Dual function (docs/exact.md §2): for λ ≥ 0 (bandwidth; an "eq" bandwidth budget is relaxed to ≤,
which is a relaxation) and μ (GPU frequency; ≥ 0 for "le", free for "eq"),

    L(λ, μ) = Σ_n min_{(m,α) allowed} [ α A_n + ω_s AS_n(α) + E_{nm}(Υ−α; μ_m) + U_{nm}(λ_m) ]
              − Σ_m (λ_m B_m + μ_m F_m)

is a lower bound on the optimum of every node whose feasible set is covered by the allowed options.
It is maximised by a disaggregated cutting-plane (Kelley) master LP with a trust box (boxstep),
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
IPM_ROWS = 20_000     # a master LP growing by more rows than this and than it had runs HiGHS' interior point
PURGE_ROWS = 40_000   # master rows above which the cuts slack at the last LP are dropped (Master.purge)


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
    The cuts are numpy arrays (FIELDS), appended to; ``_seen`` holds their keys (``_keys``)."""

    def __init__(self, D):
        self.D = D
        self._set(*(np.zeros(0, int) for _ in range(3)), *(np.zeros(0) for _ in range(3)))

    def _set(self, *cols):
        for name, col in zip(FIELDS, cols):
            setattr(self, name, col)
        self._seen = set(_keys(self.user, self.srv, self.k, self.bc, self.xc))

    def _keep(self, keep):
        """Keep the cuts where ``keep`` (bool per cut) holds."""
        self._set(*(getattr(self, name)[keep] for name in FIELDS))

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
        """Drop the cuts that were slack (zero dual) at the last LP solve, keeping those added since, and
        rebuild the LP. Only the master's size changes: every bound is L evaluated directly (maximise), so
        this can slow the ascent, never make a bound invalid; each user keeps its cuts with positive dual
        (its convex weights sum to 1). At 1000×50 the master grew to 170k rows and its LP was 85 % of the root."""
        w = self._w
        keep = np.ones(self.c.size, bool)
        keep[: w.size] = np.abs(w) > 0
        self._keep(keep)
        self._h = None
        self.purged = getattr(self, "purged", 0) + 1

    def _rows(self, j0, sl, sm):
        N, M = self.D.N, self.D.M
        R = self.c.size - j0
        user, srv = self.user[j0:], self.srv[j0:]
        idx = np.empty((R, 3), dtype=np.int32)
        val = np.empty((R, 3))
        idx[:, 0], idx[:, 1], idx[:, 2] = user, N + srv, N + M + srv
        cs = self._cs
        val[:, 0], val[:, 1], val[:, 2] = 1.0, -self.bc[j0:] * sl[srv] / cs, -self.xc[j0:] * sm[srv] / cs
        return R, np.arange(0, 3 * R + 1, 3, dtype=np.int32), idx.ravel(), val.ravel(), self.c[j0:] / cs

    def solve(self, lam_lo, lam_hi, mu_lo, mu_hi, sl, sm):
        """LP in scaled multipliers λ = sl·λ', μ = sm·μ' (the raw λ can be ~1e-11: below LP tolerances).
        The HiGHS model is kept and grown row by row (warm-started dual simplex; IPM_ROWS)."""
        D = self.D
        N, M = D.N, D.M
        lo = np.concatenate([lam_lo / sl, mu_lo / sm])
        hi = np.concatenate([lam_hi / sl, mu_hi / sm])
        if getattr(self, "_h", None) is not None and len(self.c) > max(PURGE_ROWS, 4 * self._kept):
            self.purge()
        h = getattr(self, "_h", None)
        ipm = False
        if h is None or self._scale_key != (sl.tobytes(), sm.tobytes()):
            has = np.bincount(self.user, minlength=N) > 0
            self._cs = max(float(np.mean(np.abs(self.c))), 1e-300)   # θ in units of a typical user cost
            R, start, idx, val, up = self._rows(0, sl, sm)
            lp = highspy.HighsLp()
            lp.num_col_, lp.num_row_ = N + 2 * M, R
            lp.col_cost_ = np.concatenate([-np.ones(N), D.B * sl / self._cs, D.F * sm / self._cs])
            lp.col_lower_ = np.concatenate([np.where(has, -INF, 0.0), lo])
            lp.col_upper_ = np.concatenate([np.where(has, INF, 0.0), hi])
            lp.row_lower_ = np.full(R, -highspy.kHighsInf)
            lp.row_upper_ = up
            lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
            lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = start, idx, val
            h = quiet.highs()
            h.setOptionValue("primal_feasibility_tolerance", 1e-10)
            h.setOptionValue("dual_feasibility_tolerance", 1e-10)
            h.passModel(lp)
            self._h, self._scale_key, self._in_lp, self._has = h, (sl.tobytes(), sm.tobytes()), len(self.c), has
            self._kept = len(self.c)
        else:
            if len(self.c) > self._in_lp:
                R, start, idx, val, up = self._rows(self._in_lp, sl, sm)
                # more new rows than old ones: the warm start is worth little, HiGHS' interior point (with
                # crossover: a basic solution, exact zero duals for Master.purge) solves it faster
                # (1000×50, 42k + 47k rows: 9.7 s dual simplex, 2.9 s IPM)
                ipm = R > max(self._in_lp, IPM_ROWS)
                h.addRows(R, np.full(R, -highspy.kHighsInf), up, 3 * R, start[:-1], idx, val)
                self._in_lp = len(self.c)
                has = np.bincount(self.user, minlength=N) > 0
                newly = np.nonzero(has & ~self._has)[0]
                if newly.size:
                    h.changeColsBounds(newly.size, newly.astype(np.int32), np.full(newly.size, -INF), np.full(newly.size, INF))
                self._has = has
            cols = np.arange(N, N + 2 * M, dtype=np.int32)
            h.changeColsBounds(2 * M, cols, lo, hi)
        if ipm:
            h.setOptionValue("solver", "ipm")
        h.run()
        if ipm:
            h.setOptionValue("solver", "choose")
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            self._h = None
            return None
        s = h.getSolution()
        col = np.asarray(s.col_value)
        w = self._w = -np.asarray(s.row_dual)
        return {"lam": col[N:N + M] * sl, "mu": col[N + M:] * sm, "ub": -h.getInfo().objective_function_value * self._cs,
                "weights": w, "user": self.user, "srv": self.srv, "k": self.k}


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
