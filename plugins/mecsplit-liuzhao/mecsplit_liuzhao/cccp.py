"""Step B of Liu & Zhao: association by exact penalty + CCCP, each step an LP on HiGHS (spec §1.10).

With α, f, p fixed, the cost of user n on server m is linear in χ (P5)::

    G(χ) = Σ_{n,m} χ_nm c_nm,   c_nm = (Υ−α_n) B_nm(f̃_nm) + U_nm(p_n, b̃_nm)

Budgets (spec §1.10 [I]): b and f_e are only known on the user's current server, so every pair gets a
**tentative** value. Default (``tentative="share"``): the equal share at the load the user would
see, b̃_nm = b^max_m/(k_m + [n ∉ m]), f̃ likewise (for ≤ GPU budgets capped at the unconstrained
optimum (ω_t e_T/(2 ω_e e_E))^{1/3}); ``tentative="current"`` keeps the FP values on the current
server instead (it favours staying; measured in docs/liuzhao.md). The budgets become
"Σ_n χ b̃ ≤ b^max_m", "Σ_n χ f̃ ≤ F_m" in the step (the current association is feasible), and with
equality budgets every server keeps at least one user (Σ_n χ_nm ≥ 1). The next FP step restores the
equalities. The budget rows have two coefficients per server (stay / join), so LP vertices can be
fractional, which is what the penalty is for.

P6: min G(χ) + ϱ Σ χ(1−χ); CCCP linearises the concave penalty at χ^(i) (51), so every step is the LP
min Σ (c_nm + ϱ(1 − 2χ^(i)_nm)) χ_nm. ϱ starts at ``rho0``·median(c) and is multiplied by
``rho_growth`` whenever CCCP has converged to a fractional χ, until χ is binary or ϱ reaches
``RHO_MAX`` (eq. (49) cannot be evaluated: its denominator is 0 at binary points). At such a point the
linearisation point is also moved halfway to the row-wise rounding (entries at exactly 1/2 have a zero
penalty gradient and would otherwise never move). Several starts (the current association and
random fractional points from the seeded rng); the best feasible result by G is kept. Measured: the
penalty rarely reaches a binary χ by itself (CCCP stops at fractional vertices that are fixed points of
its linearisation), so the row-wise rounding + repair (:func:`_repair`) is part of the step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mecsplit import quiet

from .model import LN2, Pairs, pairs

RHO_MAX = 1e2   # relative to the median pair cost (the LP costs are scaled to O(1))


@dataclass
class CCCPResult:
    server: np.ndarray
    b_MHz: np.ndarray          # tentative bandwidth of each user on its new server
    fe_GHz: np.ndarray
    G: float                   # Σ c_nm over the chosen pairs
    G_start: float             # the same for the incoming association
    iterations: list = field(default_factory=list)   # one record per LP solve
    starts: list = field(default_factory=list)       # per start: iterations, final G, binary
    lp_solves: int = 0


def pair_costs(P: Pairs, server, x, tentative: str = "share"):
    """Tentative b̃, f̃ and the costs c_nm (N×M) of every pair for fixed α, f, p.

    tentative = "share": the equal share at the load the user would see, B_m/(k_m + [n ∉ m]) (also on
    the current server, so staying and moving are priced alike); "current": the FP values on the
    current server and B_m/(k_m+1) elsewhere."""
    N, M = P.N, P.M
    server = np.asarray(server, int)
    rows = np.arange(N)
    cnt = np.bincount(server, minlength=M).astype(float)
    k = np.broadcast_to(cnt + 1, (N, M)).copy()
    k[rows, server] -= 1
    b = P.Bw[None, :] / k
    fe = np.minimum(P.F[None, :] / k, _fe_opt(P))
    if tentative == "current":
        b[rows, server] = x["b_MHz"]
        fe[rows, server] = x["fe_GHz"]
    b = np.clip(b, P.b_lo, P.Bw[None, :])
    fe = np.clip(fe, P.fe_lo, P.F[None, :])
    return b, fe, _cost(P, x, b, fe)


def _fe_opt(P: Pairs):
    """Unconstrained optimum of B(f_e) per pair, (ω_t e_T/(2 ω_e e_E))^{1/3} (∞ without an energy weight)."""
    if P.fe_eq or P.om["energy"] <= 0:
        return np.inf
    return (P.om["delay"] * P.e_T / (2 * P.om["energy"] * P.e_E)) ** (1 / 3)


def _cost(P: Pairs, x, b, fe, server=None):
    """(Υ−α) B(f_e) + U(p, b) for fixed α, p: of every pair (b, fe of shape N×M) or, with ``server``,
    of each user on that server (b, fe of shape N)."""
    a, p = (np.asarray(x[k], float) for k in ("alpha", "p_W"))
    s = P.s
    if server is None:
        a, p, s = a[:, None], p[:, None], s[:, None]
        snr, e_T, e_E = P.snr, P.e_T, P.e_E
    else:
        rows = np.arange(P.N)
        snr, e_T, e_E = P.snr[rows, server], P.e_T[rows, server], P.e_E[rows, server]
    r = b * np.log1p(snr * p / b) / LN2
    up = (P.om["energy"] * p + (P.om["delay"] if P.delay else 0.0)) * s / r
    return (P.Y - a) * (P.om["delay"] * e_T / fe + P.om["energy"] * e_E * fe**2) + up


class _LP:
    """The CCCP LP on HiGHS; built once, then only the costs change (warm-started simplex)."""

    def __init__(self, P: Pairs, b, fe, need_each_server: bool):
        import highspy

        N, M = P.N, P.M
        self.N, self.M = N, M
        n_rows = N + 2 * M + (M if need_each_server else 0)
        cols = np.arange(N * M)
        n_idx, m_idx = cols // M, cols % M
        k = 4 if need_each_server else 3
        idx = np.empty((N * M, k), dtype=np.int32)
        val = np.empty((N * M, k))
        idx[:, 0], val[:, 0] = n_idx, 1.0
        idx[:, 1], val[:, 1] = N + m_idx, b.ravel()
        idx[:, 2], val[:, 2] = N + M + m_idx, fe.ravel()
        if need_each_server:
            idx[:, 3], val[:, 3] = N + 2 * M + m_idx, 1.0
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = N * M, n_rows
        lp.col_cost_ = np.zeros(N * M)
        lp.col_lower_, lp.col_upper_ = np.zeros(N * M), np.ones(N * M)
        inf = highspy.kHighsInf
        rl = np.concatenate([np.ones(N), np.full(2 * M, -inf), np.ones(M) if need_each_server else []])
        # budget right-hand sides with a relative slack of 1e-9 (the current association sits exactly on them)
        ru = np.concatenate([np.ones(N), P.Bw * (1 + 1e-9), P.F * (1 + 1e-9), np.full(M, inf) if need_each_server else []])
        lp.row_lower_, lp.row_upper_ = rl, ru
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.arange(0, N * M * k + 1, k, dtype=np.int32)
        lp.a_matrix_.index_ = idx.ravel()
        lp.a_matrix_.value_ = val.ravel()
        self.h = quiet.highs()
        self.h.passModel(lp)
        self.all = np.arange(N * M, dtype=np.int32)

    def solve(self, cost):
        self.h.changeColsCost(len(self.all), self.all, np.ascontiguousarray(cost.ravel(), dtype=float))
        self.h.run()
        if str(self.h.getModelStatus()).split(".")[-1] != "kOptimal":
            self.h.clearSolver()          # numerical trouble on a warm start: retry from scratch
            self.h.run()
            if str(self.h.getModelStatus()).split(".")[-1] != "kOptimal":
                return None
        return np.asarray(self.h.getSolution().col_value).reshape(self.N, self.M)


def cccp_association(variant, inst, server, x, rng, *, starts=3, rho0=0.01, rho_growth=10.0, max_iter=60,
                     tol=1e-9, tentative="share", P: Pairs | None = None) -> CCCPResult:
    """The CCCP association step for fixed resources ``x`` (α, f, p; b, fe on the current server)."""
    P = P or pairs(variant, inst)
    server = np.asarray(server, int)
    N, M = P.N, P.M
    b, fe, c = pair_costs(P, server, x, tentative)
    need = (P.fe_eq or P.b_eq) and N >= M
    lp = _LP(P, b, fe, need)
    G_start = float(c[np.arange(N), server].sum())
    scale = float(np.median(np.abs(c))) or 1.0
    c_lp = np.minimum(c / scale, 1e3)    # O(1) LP costs; hopeless pairs capped (never chosen)
    X0 = [np.eye(M)[server]]
    for _ in range(max(starts - 1, 0)):
        X0.append(rng.dirichlet(np.ones(M), size=N))
    out = CCCPResult(server, x["b_MHz"], x["fe_GHz"], G_start, G_start)
    best = None
    for s_i, X in enumerate(X0):
        rho = rho0
        it, stuck = 0, 0
        for it in range(1, max_iter + 1):
            Xn = lp.solve(c_lp + rho * (1 - 2 * X))
            out.lp_solves += 1
            if Xn is None:  # HiGHS failed twice: end this start at its last iterate
                out.iterations.append({"start": s_i, "iteration": it, "rho": rho * scale, "lp_failed": True})
                break
            frac = float(np.max(np.minimum(Xn, 1 - Xn)))
            G = float(np.sum(c * Xn))
            pen = float(np.sum(Xn * (1 - Xn)))
            out.iterations.append({"start": s_i, "iteration": it, "rho": rho * scale, "G": G, "penalty": pen,
                                   "max_fractional": frac})
            moved = float(np.max(np.abs(Xn - X)))
            X = Xn
            if moved <= tol:
                if frac <= 1e-6:
                    break
                stuck = stuck + 1 if rho >= RHO_MAX else 0
                if stuck >= 1:   # a fractional vertex that no ϱ moves: round and repair below
                    break
                # converged to a fractional point: raise ϱ; entries at exactly 1/2 have a zero penalty
                # gradient, so also move the linearisation point halfway towards the row's largest entry
                rho = min(rho * rho_growth, RHO_MAX)
                X = 0.5 * (X + np.eye(M)[np.argmax(X, axis=1)])
        binary = float(np.max(np.minimum(X, 1 - X))) <= 1e-6
        srv = _repair(P, np.argmax(X, axis=1), server, b, fe, c, need)
        G = float(c[np.arange(N), srv].sum())
        ok = _feasible(P, srv, b, fe, need)
        out.starts.append({"start": s_i, "iterations": it, "G": G, "binary": binary, "feasible": ok,
                           "repaired": int(np.sum(srv != np.argmax(X, axis=1)))})
        if ok and (best is None or G < best[0] - 1e-15 * abs(best[0])):
            best = (G, srv)
    if best is not None and best[0] < G_start:
        rows = np.arange(N)
        out.server, out.G = best[1], best[0]
        out.b_MHz, out.fe_GHz = b[rows, best[1]], fe[rows, best[1]]
    return out


def _repair(P, srv, server0, b, fe, c, need):
    """Rounded χ (row-wise argmax) made feasible: while a budget is exceeded or a needed server is
    empty, send back to its incoming server the moved user whose return costs least."""
    srv = srv.copy()
    rows = np.arange(P.N)
    for _ in range(P.N):
        if _feasible(P, srv, b, fe, need):
            break
        over = (np.bincount(srv, weights=b[rows, srv], minlength=P.M) > P.Bw * (1 + 1e-9)) | \
               (np.bincount(srv, weights=fe[rows, srv], minlength=P.M) > P.F * (1 + 1e-9))
        moved = srv != server0
        cand = moved & over[srv]
        if need:
            cand |= moved & (np.bincount(srv, minlength=P.M) == 0)[server0]
        if not cand.any():
            cand = moved
        loss = np.where(cand, c[rows, server0] - c[rows, srv], np.inf)
        n = int(np.argmin(loss))
        srv[n] = server0[n]
    return srv


def _feasible(P, srv, b, fe, need):
    rows = np.arange(P.N)
    ok = np.all(np.bincount(srv, weights=b[rows, srv], minlength=P.M) <= P.Bw * (1 + 1e-9))
    ok &= np.all(np.bincount(srv, weights=fe[rows, srv], minlength=P.M) <= P.F * (1 + 1e-9))
    if need:
        ok &= np.all(np.bincount(srv, minlength=P.M) >= 1)
    return bool(ok)


@dataclass
class MovesResult:
    server: np.ndarray
    b_MHz: np.ndarray          # equal shares at the final loads (every user)
    fe_GHz: np.ndarray
    G: float                   # Σ_n c(n, s_n, k_{s_n}) at the final association
    G_start: float
    moves: list = field(default_factory=list)   # one record per applied move


def load_moves(P: Pairs, server, x, *, max_moves: int | None = None, rtol: float = 1e-12) -> MovesResult:
    """Association by single-user moves priced at the loads they create (the improved step, not in
    the paper). For fixed α and p, every user on server m gets the equal shares at the server's load
    k_m: b = B_m/k_m, f_e = min(F_m/k_m, f_e*) (f_e* the unconstrained optimum, for ≤ GPU budgets), so
    G(s) = Σ_n c(n, s_n, k_{s_n}) and a move n: o → m changes the cost of n and of every user on o
    (k_o − 1) and on m (k_m + 1). All N·M moves are priced exactly (vectorised); the best one is
    applied until none decreases G. Loads are free — no ⌈N/M⌉ cap, budgets hold by construction —
    except b ≥ b_min, f_e ≥ f_e,min and, with equality budgets, no server left empty."""
    server = np.asarray(server, int).copy()
    N, M = P.N, P.M
    rows = np.arange(N)
    fe_opt = np.broadcast_to(_fe_opt(P), (N, M))
    need = (P.fe_eq or P.b_eq) and N >= M
    max_moves = 20 * N if max_moves is None else max_moves

    def own(k, d):
        """Each user's cost on its own server at load k_{s_n} + d (and the shares)."""
        load = np.maximum(k[server] + d, 1)
        b, fe = P.Bw[server] / load, np.minimum(P.F[server] / load, fe_opt[rows, server])
        return _cost(P, x, b, fe, server), b, fe

    k = np.bincount(server, minlength=M)
    G_start = float(own(k, 0)[0].sum())
    out = MovesResult(server, None, None, G_start, G_start)
    for _ in range(max_moves):
        k = np.bincount(server, minlength=M)
        c0 = own(k, 0)[0]
        c_minus = np.where(k[server] >= 2, own(k, -1)[0], c0)
        c_plus = own(k, +1)[0]
        join_ext = np.bincount(server, weights=c_plus - c0, minlength=M)        # co-users of m at k_m + 1
        leave_ext = np.bincount(server, weights=c_minus - c0, minlength=M)      # co-users of o at k_o − 1
        leave = -c0 + leave_ext[server] - (c_minus - c0)
        b_j = P.Bw / (k + 1)
        fe_j = np.minimum((P.F / (k + 1))[None, :], fe_opt)
        delta = _cost(P, x, np.broadcast_to(b_j, (N, M)), fe_j) + join_ext[None, :] + leave[:, None]
        delta[rows, server] = np.inf
        delta[:, (b_j < P.b_lo) | (P.F / (k + 1) < P.fe_lo)] = np.inf
        if need:
            delta[k[server] == 1, :] = np.inf
        n, m = np.unravel_index(int(np.argmin(delta)), delta.shape)
        G = float(c0.sum())
        if not delta[n, m] < -rtol * abs(G):
            break
        out.moves.append({"user": int(n), "from": int(server[n]), "to": int(m), "delta": float(delta[n, m])})
        server[n] = m
    k = np.bincount(server, minlength=M)
    c, out.b_MHz, out.fe_GHz = own(k, 0)
    out.server, out.G = server, float(c.sum())
    return out
