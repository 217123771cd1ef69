"""The assignment MILP with outer-approximated server costs, on HiGHS (docs/exact.md §2c).

For a fixed user set and splits, server m's cost is C_m(S) = min Σ_S cost subject to its two budgets,
a convex problem with Slater points, so by strong duality (docs/exact.md §2)

    edge:    E_m(S) = max_μ  Σ_{(n,k)∈S} e_nmk(μ) − μ F_m,      e_nmk(μ) = min_fe w_k(t/fe + e fe²) + μ fe
    uplink:  U_m(S) = max_λ≥0 Σ_{n∈S} u_nm(λ) − λ B_m,          u_nm(λ) = min_{p,b} (c0 + c1 p)/r + λ b

(μ ≥ 0 for "le", free for "eq"). With binaries x_o for options o = (n, m, k), each value at one μ is a
linear function of x that never exceeds E_m: the cut z_m ≥ Σ_o x_o e_o(μ_j) − μ_j F_m is valid for every
integral x, and exact at the x whose own optimal multiplier is μ_j. The MILP

    min Σ_o x_o (α A + ω_s AS)_o + Σ_m (z_m + y_m)   s.t. one option per user, the cuts,
                                                       (≥ 1 user per server for "eq" frequency budgets)

is therefore a relaxation of the problem (its dual bound is valid) whose LP relaxation, with cuts at
all μ, is the budget-Lagrangian bound (minimax). Outer approximation: solve it, cost its solutions
exactly (fixed.py), add the cuts at their multipliers, repeat; a solution whose cuts were already
exact closes the gap, and there are finitely many assignments.

Options whose Lagrangian reduced cost exceeds the incumbent gap are left out (a solution using them
costs more than the incumbent), so the MILP is smaller than N·M·K.
"""

from __future__ import annotations

import time

import numpy as np

from mecsplit import quiet

from .joint import deadline_options, joint
from .subproblems import SAFETY, edge_solve
from .timing import Timing

try:
    import highspy
except ImportError:  # pragma: no cover - declared dependency
    highspy = None

MARGIN = 1e-8     # relative margin on the scaled MILP dual bound (HiGHS tolerances are 1e-9 there)
TINY = 1e-12      # HiGHS' small_matrix_value, set to this: it drops matrix entries at or below it, also
                  # in its presolved model; at most one per user and cost column matters at an integer
                  # point, so the bound is also lowered by 2·N·TINY (scaled). (HiGHS' default 1e-9 made
                  # that margin 4e-7 of the objective at hardware-2024 200×20: no 1e-7 certificate)
NUMERICS = {"mip_feasibility_tolerance": 1e-9, "primal_feasibility_tolerance": 1e-9, "dual_feasibility_tolerance": 1e-9,
            "mip_rel_gap": 0.0, "small_matrix_value": TINY}     # every MILP here (docs/exact.md §2c "Numerics")
# HiGHS' search, tuned on held-out seeds (default 50×10 seeds 8–11, CPU s to a 1e-6 certificate: 23.6 with
# HiGHS' defaults, 13.5 with these; docs/exact.md §5): its primal heuristics off — the incumbents come from
# the local search (§2d) and are handed to HiGHS (solve) — and branching on pseudocosts without the
# strong-branching reliability phase. Neither changes what is proven, only the order of the search.
SEARCH = {"mip_heuristic_effort": 0.0, "mip_heuristic_run_feasibility_jump": False, "mip_heuristic_run_rins": False,
          "mip_heuristic_run_rens": False, "mip_heuristic_run_root_reduced_cost": False, "mip_pscost_minreliable": 0}
DROP = 1e-9       # cut entries at or below this (scaled) are left out, the rhs corrected (_row)


def kept_options(D, ev, ub):
    """Options (n, m, k) whose reduced cost at a Lagrangian evaluation ``ev`` (lagrangian.DualEval at
    ev["lam"], ev["mu"], with its uplink table ev["U"]) does not prove them worse than ``ub``: a solution
    giving user n option o costs at least L − v_n + cost_o (the Lagrangian with x_n = o). Every split is
    costed here (the evaluation itself skips dominated ones, which says nothing about their reduced cost)."""
    E, _ = edge_solve(D.w[None, None, :], D.t[:, :, None], D.e[:, :, None], ev["mu"][None, :, None], D.fe_lo,
                      D.F[None, :, None])
    cost = D.user_part[:, None, :] + E + ev["U"][:, :, None]
    if D.has_deadline:   # the same per-option values as the evaluation's L (joint.py), else the test is invalid
        dn, dm, dk, dv, _, _ = deadline_options(D, ev["lam"], ev["mu"])
        cost[np.isfinite(D.deadline_s)] = np.inf
        cost[dn, dm, dk] = dv
    v = cost.reshape(D.N, -1).min(axis=1)
    with np.errstate(invalid="ignore"):
        rc = cost - v[:, None, None]
        return np.isfinite(cost) & D.possible & (ev["L"] + rc - SAFETY * np.abs(cost) <= ub)


def assignment_of(x, on, om, ok, N):
    """(server, k) of the MILP point ``x`` whose columns are the options (on, om, ok) = (user, server,
    split); server −1 for a user it leaves unassigned."""
    pick = np.asarray(x)[: on.size] > 0.5
    server = np.full(N, -1)
    k = np.zeros(N, int)
    server[on[pick]] = om[pick]
    k[on[pick]] = ok[pick]
    return server, k


class AssignmentMILP:
    """The MILP above over the options ``keep`` (N, M, K bool), kept in one HiGHS model."""

    def __init__(self, D, keep, scale):
        self.D = D
        self.on, self.om, self.ok = (a.astype(np.int64) for a in np.nonzero(keep))
        self.nx = nx = self.on.size
        M = D.M
        up = D.user_part[self.on, self.ok]
        self.offset = np.full(D.N, np.inf)
        np.minimum.at(self.offset, self.on, up)        # per-user constant, kept out of the MILP
        self.sc = scale
        self.cut_keys: set = set()
        self.rows = []                 # (cost column, x columns, values, rhs) of every cut, scaled (point())
        self.stale_starts = 0          # HiGHS runs re-done without the start (see solve)
        self.infeasible = False        # HiGHS proved the MILP infeasible (then so is the problem)
        h = self.h = quiet.highs({**NUMERICS, **SEARCH})
        inf = highspy.kHighsInf
        ncol = nx + 2 * M              # x_o, z_m (edge), y_m (uplink); both server costs are ≥ 0
        h.addVars(ncol, np.zeros(ncol),
                  np.concatenate([np.ones(nx), np.full(2 * M, inf)]))
        cost = self.cost = np.concatenate([(up - self.offset[self.on]) * scale, np.ones(2 * M)])
        h.changeColsCost(ncol, np.arange(ncol, dtype=np.int32), cost)
        h.changeColsIntegrality(nx, np.arange(nx, dtype=np.int32),
                                np.full(nx, highspy.HighsVarType.kInteger))
        self.by_server = [np.nonzero(self.om == m)[0] for m in range(M)]
        for n in range(D.N):
            idx = np.nonzero(self.on == n)[0].astype(np.int32)
            h.addRow(1.0, 1.0, idx.size, idx, np.ones(idx.size))
        for m in range(M):
            idx = self.by_server[m].astype(np.int32)
            lo = 1.0 if D.eq_f else 0.0
            if idx.size and (lo > 0 or D.user_cap[m] < D.N):
                h.addRow(lo, float(D.user_cap[m]), idx.size, idx, np.ones(idx.size))
            bf = D.b_floor[self.on[idx], m] if idx.size else np.zeros(0)
            if idx.size and np.sum(bf) > D.B[m]:     # rate floors: their bandwidth must fit the budget
                h.addRow(-inf, float(D.B[m]), idx.size, idx, bf)

    def _row(self, col, sel, vals, rhs):
        """z − Σ vals·x ≥ rhs (z: the column(s) ``col``), with every value lowered by the rounding
        margin; entries at or below DROP are left out, and where that would strengthen the row
        (negative values) the rhs is lowered by them, so the row stays valid."""
        vals = vals - SAFETY * np.abs(vals)
        small = np.abs(vals) * self.sc <= DROP
        rhs -= float(np.sum(np.maximum(-vals[small], 0.0))) + SAFETY * abs(rhs)
        sel, vals = sel[~small], vals[~small]
        col = np.atleast_1d(col)
        self.rows.append((col, sel, vals * self.sc, rhs * self.sc))
        idx = np.concatenate([col, sel]).astype(np.int32)
        self.h.addRow(rhs * self.sc, highspy.kHighsInf, idx.size, idx, np.concatenate([np.ones(col.size), -vals * self.sc]))

    def add_joint_cuts(self, m, pairs):
        """Cuts of server m's whole cost at price pairs (λ, μ) when some of its options' users have a
        deadline: their cost does not split into an edge and an uplink part (joint.py), so the row bounds
        z_m + y_m:  z_m + y_m ≥ Σ_o x_o (J_o(λ, μ) − up_o) − λ B_m − μ F_m, J_o the option's value with
        its deadline (e_o(μ) + u_o(λ) + up_o for users without one). Valid by weak duality, like the
        separate cuts (which stay valid with deadline-free values: the deadlines only raise the cost)."""
        D, sel = self.D, self.by_server[m]
        n, k = self.on[sel], self.ok[sel]
        dl = np.isfinite(D.deadline_s[n])
        if sel.size == 0 or not dl.any():
            return 0
        added = 0
        for lam, mu in pairs:
            key = ("j", m, float(lam), float(mu))
            if key in self.cut_keys or lam < 0 or (mu < 0 and not D.eq_f):
                continue
            self.cut_keys.add(key)
            ev, _ = edge_solve(D.w[k], D.t[n, m], D.e[n, m], mu, D.fe_lo, D.F[m])
            uv, _, _ = D.uplink(n, m, lam)
            val = ev + uv
            jv, _, _, _, _, _, _ = joint(D, n[dl], m, k[dl], lam, mu)
            val[dl] = jv - D.user_part[n[dl], k[dl]]
            self._row([self.nx + m, self.nx + D.M + m], sel, val, -lam * D.B[m] - mu * D.F[m])
            added += 1
        return added

    def add_feasibility_cut(self, m, lam):
        """Σ_{o on m} x_o R_o(λ, 1; D_n) ≤ λ B_m + F_m (timing.py; λ = inf: the bandwidth direction
        (1, 0)): every assignment that meets the deadlines on server m satisfies it."""
        D, sel = self.D, self.by_server[m]
        key = ("f", m, float(lam))
        if sel.size == 0 or key in self.cut_keys:
            return 0
        self.cut_keys.add(key)
        n, k = self.on[sel], self.ok[sel]
        tm = self.tm = getattr(self, "tm", None) or Timing(D)
        if lam == np.inf:
            v = tm.price(n, m, k, D.deadline_s[n], 1.0, 0.0)[0]
            rhs = D.B[m]
        else:
            v = tm.price(n, m, k, D.deadline_s[n], lam, 1.0)[0]
            rhs = lam * D.B[m] + D.F[m]
        v = np.where(np.isfinite(v), v, 1e30)
        v = (v - SAFETY * np.abs(v)) / rhs
        self.h.addRow(-highspy.kHighsInf, 1.0 + SAFETY, sel.size, sel.astype(np.int32), v)
        return 1

    def add_cuts(self, m, mus=(), lams=()):
        """Tangent cuts of server m's edge cost at the prices ``mus`` and uplink cost at ``lams``."""
        D, sel = self.D, self.by_server[m]
        if sel.size == 0:
            return 0
        n, k = self.on[sel], self.ok[sel]
        added = 0
        mus = [mu for mu in dict.fromkeys(map(float, mus)) if ("e", m, mu) not in self.cut_keys and (mu >= 0 or D.eq_f)]
        lams = [lam for lam in dict.fromkeys(map(float, lams)) if ("u", m, lam) not in self.cut_keys and lam >= 0]
        if mus:    # every price at once (one vectorised solve per server: rows = prices)
            vals, _ = edge_solve(D.w[k][None, :], D.t[n, m][None, :], D.e[n, m][None, :], np.array(mus)[:, None],
                                 D.fe_lo, D.F[m])
            for mu, val in zip(mus, vals):
                self.cut_keys.add(("e", m, mu))
                self._row(self.nx + m, sel, val, -mu * D.F[m])
                added += 1
        if lams:
            vals, _, _ = D.uplink(n[None, :], m, np.array(lams)[:, None])
            for lam, val in zip(lams, vals):
                self.cut_keys.add(("u", m, lam))
                self._row(self.nx + D.M + m, sel, val, -lam * D.B[m])
                added += 1
        return added

    def start_vector(self, server, k):
        col = np.zeros(self.nx + 2 * self.D.M)
        hit = (server[self.on] == self.om) & (k[self.on] == self.ok)
        col[np.nonzero(hit)[0]] = 1.0
        return col if hit.sum() == self.D.N else None

    def point(self, server, k):
        """The MILP point of an assignment, its cost columns at the smallest values the cuts allow (a
        feasible MILP solution whose objective never exceeds the assignment's exact cost); None when the
        assignment uses an option the MILP left out."""
        col = self.start_vector(server, k)
        if col is None:
            return None
        x = col[: self.nx]
        for c, sel, vals, rhs in sorted(self.rows, key=lambda r: r[0].size):   # one cost column, then z_m + y_m
            col[c[0]] += max(0.0, rhs + float(vals @ x[sel]) - col[c].sum())
        return col

    def neighbourhood(self, group, server, k, time_limit_s, mus=None):
        """The best re-assignment, by this MILP's cost model, of the users on the servers ``group`` among
        those servers, every other user kept at (server, k): a small MILP over the same cuts (the rows
        of the group's cost columns, restricted to the free users' options on the group), solved by
        HiGHS with its own heuristics on. A heuristic (docs/exact.md §2d): its answer is only a candidate
        for the caller's exact solve. ``mus`` (one list per group server): more edge-cut prices, for this
        sub-MILP only (the MILP's own grid can be too coarse near the incumbent). Returns (server, k, the
        sub-MILP's objective: the group's part of the MILP's, scaled) or None (no solution in time)."""
        D = self.D
        group = np.asarray(group, int)
        free = np.isin(server, group)
        cols = np.nonzero(free[self.on] & np.isin(self.om, group))[0]
        G, nc = group.size, cols.size
        pos = np.full(self.nx + 2 * D.M, -1)
        pos[cols] = np.arange(nc)
        pos[self.nx + group] = nc + np.arange(G)
        pos[self.nx + D.M + group] = nc + G + np.arange(G)
        h = quiet.highs({**NUMERICS, "time_limit": float(max(time_limit_s, 0.01))})
        inf = highspy.kHighsInf
        ncol = nc + 2 * G
        h.addVars(ncol, np.zeros(ncol), np.concatenate([np.ones(nc), np.full(2 * G, inf)]))
        h.changeColsCost(ncol, np.arange(ncol, dtype=np.int32), np.concatenate([self.cost[cols], np.ones(2 * G)]))
        h.changeColsIntegrality(nc, np.arange(nc, dtype=np.int32), np.full(nc, highspy.HighsVarType.kInteger))
        for n in np.nonzero(free)[0]:
            idx = np.nonzero(self.on[cols] == n)[0].astype(np.int32)
            h.addRow(1.0, 1.0, idx.size, idx, np.ones(idx.size))
        for m in group:
            idx = np.nonzero(self.om[cols] == m)[0].astype(np.int32)
            if idx.size and (D.eq_f or D.user_cap[m] < D.N):
                h.addRow(1.0 if D.eq_f else 0.0, float(D.user_cap[m]), idx.size, idx, np.ones(idx.size))
        for c, sel, vals, rhs in self.rows:
            if np.any(pos[c] < 0):
                continue
            on = pos[sel] >= 0
            idx = np.concatenate([pos[c], pos[sel[on]]]).astype(np.int32)
            h.addRow(rhs, inf, idx.size, idx, np.concatenate([np.ones(c.size), -vals[on]]))
        for j, m in enumerate(group if mus is not None else ()):
            sel = np.nonzero(self.om[cols] == m)[0]
            if sel.size == 0 or not len(mus[j]):
                continue
            n_, k_ = self.on[cols[sel]], self.ok[cols[sel]]
            vals, _ = edge_solve(D.w[k_][None, :], D.t[n_, m][None, :], D.e[n_, m][None, :],
                                 np.asarray(mus[j], float)[:, None], D.fe_lo, D.F[m])
            for mu, val in zip(mus[j], vals):
                idx = np.concatenate([[nc + j], sel]).astype(np.int32)
                h.addRow(-mu * D.F[m] * self.sc, inf, idx.size, idx, np.concatenate([[1.0], -val * self.sc]))
        h.run()
        if h.getInfo().primal_solution_status != 2:
            return None
        x = np.asarray(h.getSolution().col_value)[:nc] > 0.5
        s2, k2 = server.copy(), k.copy()
        s2[self.on[cols[x]]] = self.om[cols[x]]
        k2[self.on[cols[x]]] = self.ok[cols[x]]
        return s2, k2, h.getInfo().objective_function_value

    def to_objective(self, lb):
        """A scaled MILP dual bound in objective units, lowered by the tolerance margin."""
        if not np.isfinite(lb):
            return -np.inf
        return float(self.offset.sum()) + (lb - MARGIN * (1.0 + abs(lb)) - 2 * self.D.N * TINY) / self.sc

    def assignment(self, x):
        """(server, k) of a MILP solution; server −1 for a user it leaves unassigned."""
        return assignment_of(x, self.on, self.om, self.ok, self.D.N)

    def _complete(self, xs):
        """The assignments of MILP points ``xs`` that give every user a server."""
        return [a for a in map(self.assignment, xs) if np.all(a[0] >= 0)]

    def solve(self, time_limit_s, abs_gap, start=None, on_bound=None, on_solution=None, node_limit=None,
              stop=None, incumbent=None):
        """Run HiGHS. Returns (valid lower bound in objective units, the complete assignments it found
        (may repeat), stopped by a time or node limit).
        While it works, ``on_bound(bound)`` gets HiGHS' running dual bound and ``on_solution(server,
        k)`` every improving solution; ``stop(bound)`` true ends the run early (the caller's certificate
        holds: not a limit); the incumbent ``incumbent()`` (a dict with "server" and "k", or None) is
        handed to HiGHS as a solution whenever it is a new one (found outside HiGHS, e.g. by the local
        search: a better cutoff prunes more)."""
        h = self.h
        t0 = time.perf_counter()
        h.setOptionValue("time_limit", float(max(time_limit_s, 0.01)))
        h.setOptionValue("mip_abs_gap", float(max(abs_gap * self.sc, 1e-9)))
        if node_limit is not None:
            h.setOptionValue("mip_max_nodes", int(node_limit))
        found = []
        if start is not None:
            sol = highspy.HighsSolution()
            sol.col_value = list(start)
            sol.value_valid = True
            h.setSolution(sol)

        def grab(ev):
            found.append(np.asarray(ev.data_out.mip_solution)[: self.nx].copy())
            if on_solution is not None:
                on_solution(*self.assignment(found[-1]))

        last = [-np.inf]
        stopped = [False]

        def progress(ev):
            lb = ev.data_out.mip_dual_bound
            if lb > last[0] + 1e-9 * (1.0 + abs(lb)):
                last[0] = lb
                if on_bound is not None:
                    on_bound(self.to_objective(lb))
            # every time, not only on a new bound: the incumbent can improve meanwhile (primal.py)
            if stop is not None:   # (set either way: HiGHS keeps the flag from the model's last run)
                stopped[0] = ev.data_in.user_interrupt = bool(stop(self.to_objective(last[0])))

        handed = [incumbent() if start is not None and incumbent is not None else None]

        def offer(ev):
            inc = incumbent()
            if inc is None or inc is handed[0]:
                return
            handed[0] = inc
            x = self.point(inc["server"], inc["k"])
            if x is not None:
                ev.data_in.setSolution(x)
                ev.data_in.user_has_solution = True

        hooks = [(h.cbMipImprovingSolution, grab)]
        if on_bound is not None or stop is not None:
            hooks.append((h.cbMipInterrupt, progress))
        if incumbent is not None:
            hooks.append((h.cbMipUserSolution, offer))
        for hook, fn in hooks:
            hook.subscribe(fn)
        try:
            h.run()
        finally:
            for hook, fn in hooks:
                hook.unsubscribe(fn)
        info = h.getInfo()
        status = h.getModelStatus()
        if status == highspy.HighsModelStatus.kInfeasible:
            self.infeasible = True
            return np.inf, self._complete(found), False
        sol = np.asarray(h.getSolution().col_value)
        if sol.size >= self.nx and info.primal_solution_status == 2:
            left = time_limit_s - (time.perf_counter() - t0)
            stale = self.cost @ sol[: self.cost.size] - info.objective_function_value
            if start is not None and stale > 1e-7 * (1.0 + abs(info.objective_function_value)) and left > 0.05:
                # seen with HiGHS 1.16 and a start solution: it reports a better objective but hands back
                # the start (and no callback for the better point); solve again without the start
                self.stale_starts += 1
                h.clearSolver()
                lb2, out2, limited2 = self.solve(left, abs_gap, None, on_bound, on_solution, node_limit, stop, incumbent)
                return max(lb2, self.to_objective(info.mip_dual_bound)), self._complete(found) + out2, limited2
            found.append(sol[: self.nx])
        lb = info.mip_dual_bound
        if status == highspy.HighsModelStatus.kOptimal:
            lb = max(lb, info.objective_function_value - abs_gap * self.sc)
        bound = self.to_objective(lb)
        out = self._complete(found)
        limited = not stopped[0] and status in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kInterrupt,
                                                highspy.HighsModelStatus.kSolutionLimit, highspy.HighsModelStatus.kIterationLimit)
        return bound, out, limited


def price_points(D, centre, lo_ratio=0.5, n=40, eq=False):
    """Dense prices around each server's Lagrangian multiplier (M lists): geometric on [c/2, 2c] for
    nonnegative prices, a symmetric linear grid of the same width for "eq" frequency prices."""
    pts = []
    for c in np.asarray(centre, float):
        if not eq and c <= 0:
            pts.append([])
        elif eq:
            pts.append(list(c + max(abs(c), 1e-12) * np.linspace(-1.0, 1.0, n)))
        else:
            pts.append(list(c * np.geomspace(lo_ratio, 1.0 / lo_ratio, n)))
    return pts
