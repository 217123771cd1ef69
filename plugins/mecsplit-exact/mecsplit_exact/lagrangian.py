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

from .subproblems import SAFETY, edge_solve, uplink_solve

try:
    import highspy
except ImportError:  # pragma: no cover - declared dependency
    highspy = None

INF = 1e30


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
            hit = uplink_solve(D.a, D.c0[:, None], D.c1[:, None], lam[None, :], D.p_lo[:, None], D.p_hi[:, None],
                               D.b_lo, D.B[None, :])
            if len(self._up_cache) > 64:
                self._up_cache.clear()
            self._up_cache[key] = hit
        return hit

    def __call__(self, lam, mu, allowed, klo, khi, users=None):
        """Returns dict with L (certified bound), per-user best value/option/resources and the (N,M)
        table of best values over α."""
        D = self.D
        U, p, b = self.uplink(lam)
        E, x = edge_solve(D.w[None, None, :], D.t[:, :, None], D.e[:, :, None], mu[None, :, None], D.fe_lo,
                          D.F[None, :, None])
        kk = np.arange(D.K)
        okk = (kk[None, :] >= klo[:, None]) & (kk[None, :] <= khi[:, None])         # (N, K)
        cost = D.user_part[:, None, :] + E + U[:, :, None]
        cost = np.where(okk[:, None, :] & allowed[:, :, None], cost, np.inf)
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
                "b": b[rows, mbest], "p": p[rows, mbest], "x": xs, "E": E, "x_all": x, "b_all": b, "U": U}


class Master:
    """Disaggregated Kelley master: max Σθ_n − λ·B − μ·F, θ_n ≤ c_j + b_j λ_{m_j} + x_j μ_{m_j}."""

    def __init__(self, D):
        self.D = D
        self.user, self.srv, self.k, self.c, self.bc, self.xc = ([] for _ in range(6))
        self._seen: set = set()

    def add(self, n, m, k, c, bc, xc):
        for j in range(len(n)):
            key = (int(n[j]), int(m[j]), int(k[j]), round(float(bc[j]), 12), round(float(xc[j]), 12))
            if key in self._seen:
                continue
            self._seen.add(key)
            self.user.append(int(n[j])); self.srv.append(int(m[j])); self.k.append(int(k[j]))
            self.c.append(float(c[j])); self.bc.append(float(bc[j])); self.xc.append(float(xc[j]))

    def add_from_eval(self, ev, lam, mu, users=None, extra_near=0.0, allowed=None):
        """Cut of every user's best option; plus (extra_near > 0) the best option on each other
        server whose value is within extra_near (relative) of the user's best."""
        D = self.D
        n = np.arange(D.N) if users is None else users
        m, k = ev["m"][n], ev["k"][n]
        c = ev["v"][n] - lam[m] * ev["b"][n] - mu[m] * ev["x"][n]
        self.add(n, m, k, c, ev["b"][n], ev["x"][n])
        if extra_near > 0:
            vnm = ev["vnm"]
            near = (vnm <= ev["v"][:, None] + extra_near * np.abs(ev["v"][:, None])) & np.isfinite(vnm)
            near[np.arange(D.N), ev["m"]] = False
            nn, mm = np.nonzero(near)
            if nn.size:
                kk = ev["knm"][nn, mm]
                bb = ev["b_all"][nn, mm]
                xx = ev["x_all"][nn, mm, kk]
                cc = vnm[nn, mm] - lam[mm] * bb - mu[mm] * xx
                self.add(nn, mm, kk, cc, bb, xx)

    def filtered(self, allowed, klo, khi):
        """A copy with the cuts of options still allowed at a child node."""
        out = Master(self.D)
        for j in range(len(self.c)):
            n, m, k = self.user[j], self.srv[j], self.k[j]
            if allowed[n, m] and klo[n] <= k <= khi[n]:
                out.user.append(n); out.srv.append(m); out.k.append(k)
                out.c.append(self.c[j]); out.bc.append(self.bc[j]); out.xc.append(self.xc[j])
        out._seen = set(zip(out.user, out.srv, out.k, (round(v, 12) for v in out.bc), (round(v, 12) for v in out.xc)))
        return out

    def solve(self, lam_lo, lam_hi, mu_lo, mu_hi):
        D = self.D
        N, M = D.N, D.M
        R = len(self.c)
        user, srv = np.asarray(self.user), np.asarray(self.srv)
        has = np.bincount(user, minlength=N) > 0
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = N + 2 * M, R
        lp.col_cost_ = np.concatenate([-np.ones(N), D.B, D.F])
        lp.col_lower_ = np.concatenate([np.where(has, -INF, 0.0), lam_lo, mu_lo])
        lp.col_upper_ = np.concatenate([np.where(has, INF, 0.0), lam_hi, mu_hi])
        lp.row_lower_ = np.full(R, -highspy.kHighsInf)
        lp.row_upper_ = np.asarray(self.c)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = np.arange(0, 3 * R + 1, 3)
        idx = np.empty((R, 3), dtype=np.int32)
        val = np.empty((R, 3))
        idx[:, 0], idx[:, 1], idx[:, 2] = user, N + srv, N + M + srv
        val[:, 0], val[:, 1], val[:, 2] = 1.0, -np.asarray(self.bc), -np.asarray(self.xc)
        lp.a_matrix_.index_ = idx.ravel()
        lp.a_matrix_.value_ = val.ravel()
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.passModel(lp)
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        s = h.getSolution()
        col = np.asarray(s.col_value)
        w = -np.asarray(s.row_dual)
        return {"lam": col[N:N + M].copy(), "mu": col[N + M:].copy(), "ub": -h.getInfo().objective_function_value,
                "weights": w, "user": user, "srv": srv, "k": np.asarray(self.k)}


def maximise(D, ev_fn, master, lam0, mu0, allowed, klo, khi, *, max_iter=60, rtol=1e-9, cutoff=np.inf,
             deadline=None, clock=None):
    """Boxstep cutting planes from (lam0, mu0). Returns (best eval, lam, mu, last master solution, iters)."""
    lam_c, mu_c = np.maximum(lam0, 0.0), (mu0.copy() if D.eq_f else np.maximum(mu0, 0.0))
    ev = ev_fn(lam_c, mu_c, allowed, klo, khi)
    master.add_from_eval(ev, lam_c, mu_c, extra_near=1e-3)
    best = ev
    scale_l = np.maximum(np.abs(lam_c), 1e-6 + 1e-3 * np.max(np.abs(lam_c), initial=0.0))
    scale_m = np.maximum(np.abs(mu_c), 1e-6 + 1e-3 * np.max(np.abs(mu_c), initial=0.0))
    rad = 0.5
    sol = None
    it = 0
    for it in range(1, max_iter + 1):
        if best["L"] >= cutoff or (deadline is not None and clock() > deadline):
            break
        dl, dm = rad * scale_l, rad * scale_m
        lam_lo, lam_hi = np.maximum(lam_c - dl, 0.0), lam_c + dl
        mu_lo = mu_c - dm if D.eq_f else np.maximum(mu_c - dm, 0.0)
        mu_hi = mu_c + dm
        sol = master.solve(lam_lo, lam_hi, mu_lo, mu_hi)
        if sol is None:
            break
        gap = sol["ub"] - best["L_raw"]
        lam_n, mu_n = sol["lam"], sol["mu"]
        on_box = (np.any(np.isclose(lam_n, lam_hi, rtol=1e-9, atol=0) | (np.isclose(lam_n, lam_lo, rtol=1e-9, atol=0) & (lam_lo > 0)))
                  or np.any(np.isclose(mu_n, mu_hi, rtol=1e-9, atol=0) | (np.isclose(mu_n, mu_lo, rtol=1e-9, atol=0) & ((mu_lo > 0) | D.eq_f))))
        if gap <= rtol * max(1.0, abs(best["L_raw"])):
            if not on_box:
                break
            rad *= 4.0
            continue
        ev = ev_fn(lam_n, mu_n, allowed, klo, khi)
        master.add_from_eval(ev, lam_n, mu_n, extra_near=1e-4)
        if ev["L_raw"] >= best["L_raw"] + 0.1 * (sol["ub"] - best["L_raw"]):
            best, lam_c, mu_c = ev, lam_n, mu_n
            scale_l = np.maximum(np.abs(lam_c), 1e-6 + 1e-3 * np.max(np.abs(lam_c), initial=0.0))
            scale_m = np.maximum(np.abs(mu_c), 1e-6 + 1e-3 * np.max(np.abs(mu_c), initial=0.0))
            if on_box:
                rad = min(rad * 2.0, 1e3)
        else:
            if ev["L_raw"] > best["L_raw"]:
                best, lam_c, mu_c = ev, lam_n, mu_n
            rad = max(rad * 0.7, 1e-6)
    best["lam"], best["mu"] = lam_c, mu_c
    return best, sol, it
