"""Server-subset (set-partitioning) relaxation by column generation (docs/exact.md §2b).

The budget Lagrangian (lagrangian.py) convexifies every *user's* options separately; its gap comes
from users split fractionally between servers. Here a column is a whole server's user set with
splits, so each server's GPU-frequency budget is kept exactly; only the bandwidth budgets stay
relaxed, at a fixed λ ≥ 0. For any user prices π (free) this gives the valid bound

    L(π) = Σ_n π_n + Σ_m min_S [ C_m(S) − π(S) ] − λ·B,
    C_m(S) = min_{α, fe}  Σ_{n∈S} [ α A_n + ω_s AS_n(α) + U_nm(λ_m) + w_α (t/fe + e fe²) ]  s.t. Σ fe ≤ F_m,

where S = ∅ (value 0) is allowed for "le" frequency budgets and not for "eq". It relaxes only
"every user on exactly one server" (weak duality), so it is valid whatever π is. π is maximised by
boxstep column generation (``ColGen``): a restricted master LP on HiGHS over the columns found so
far, with its duals kept in a box around a stability centre.

Pricing min_S C_m(S) − π(S) is a nonlinear knapsack, solved by a branch-and-bound on users
(in / out / free) (``Pricer``). Its node bound is the Lagrangian of the server's own budget,
Λ(μ) = Σ_in G_n(μ) + Σ_free min(0, G_n(μ)) − μ F_m with G_n(μ) = min_α [const + min_fe
w_α (t/fe + e fe²) + μ fe] − π_n, concave in μ; every value used is Λ at an actual μ, so it is a
valid bound whatever μ is, and a capped tree still returns a valid (weaker) bound.
"""

from __future__ import annotations

import heapq
import itertools

import numpy as np

from mecsplit import quiet

from .fixed import _edge
from .subproblems import SAFETY, edge_solve

STALL = 5        # column-generation rounds after which too little progress stops it

try:
    import highspy
except ImportError:  # pragma: no cover - declared dependency
    highspy = None


# ------------------------------------------------------------------------------------------------
def edge_block(D, m, users, ks):
    """min Σ w(t/x + e x²) s.t. Σ x ≤ F_m (= for "eq") for one server's fixed users/splits, by the
    fixed-assignment KKT solve (fixed.py). Returns (value, x); x is feasible, so the value is never
    below the true minimum."""
    users, ks = np.asarray(users, int), np.asarray(ks, int)
    _, x = _edge(D, np.full(users.size, m), ks, users)
    w, t, e = D.w[ks], D.t[users, m], D.e[users, m]
    return float(np.sum(w * (t / x + e * x * x))), x


class Pool:
    """All columns found so far: server, users, split indices and the λ-independent part of the cost
    (user compute + stability + edge block); the uplink part Σ U_nm(λ_m) is added per node."""

    def __init__(self, D):
        self.D = D
        self.srv, self.users, self.ks, self.base = [], [], [], []
        self._keys: set = set()

    def add(self, m, users, ks, edge_value=None):
        order = np.argsort(users)
        users, ks = np.asarray(users, int)[order], np.asarray(ks, int)[order]
        key = (int(m), users.tobytes(), ks.tobytes())
        if key in self._keys or users.size == 0:
            return False
        if edge_value is None:
            edge_value = edge_block(self.D, m, users, ks)[0]
        self._keys.add(key)
        self.srv.append(int(m)); self.users.append(users); self.ks.append(ks)
        self.base.append(float(self.D.user_part[users, ks].sum() + edge_value))
        return True

    def add_assignment(self, server, k, x):
        """The server sets of a solved assignment; ``x``: its optimal shares (the edge blocks' optima)."""
        D = self.D
        rows = np.arange(D.N)
        per = D.w[k] * (D.t[rows, server] / x + D.e[rows, server] * x * x)
        for m in range(D.M):
            us = np.nonzero(server == m)[0]
            if us.size:
                self.add(m, us, k[us], float(per[us].sum()))

    def columns(self, cols, U):
        """Costs at the node's uplink values U and the column-wise (user rows, then server rows)
        sparsity of the columns ``cols``: (cost, starts, indices)."""
        N = self.D.N
        cost = np.empty(len(cols))
        starts, idx = [0], []
        for i, j in enumerate(cols):
            m, us = self.srv[j], self.users[j]
            cost[i] = self.base[j] + U[us, m].sum()
            idx.extend(us.tolist()); idx.append(N + m)
            starts.append(len(idx))
        return cost, starts, idx

    def usable(self, allowed, klo, khi):
        out = []
        for j, (m, us, ks) in enumerate(zip(self.srv, self.users, self.ks)):
            if allowed[us, m].all() and np.all(ks >= klo[us]) and np.all(ks <= khi[us]):
                out.append(j)
        return out


# ------------------------------------------------------------------------------------------------
class ServerTable:
    """One server at one branch-and-bound node: the items (user, split) that can be a user's best
    split somewhere on the μ grid, and their exact values E = min_x w(t/x + e x²) + μx and shares x at
    every grid μ. Nothing here depends on the user prices π, so the table serves every pricing round.

    Splits that cannot be a user's best anywhere on the grid are dropped (docs/exact.md §1 pruning);
    the grid is the only place μ is searched, so the bound stays exact where it is evaluated."""

    def __init__(self, D, m, users, klo, khi, grid):
        self.D, self.m, self.grid = D, m, grid
        self.F = float(D.F[m])
        n_it = np.repeat(users, khi[users] - klo[users] + 1)
        k_it = np.concatenate([np.arange(klo[n], khi[n] + 1) for n in users]) if users.size else np.zeros(0, int)
        if k_it.size > users.size:
            # E(w; μ) is concave in w and increasing in μ: on [grid_0, grid_end] an inner split costs
            # ≥ c_k + min(E_first, E_last)(grid_0), the better range end ≤ its value at grid_end
            f, l = klo[users], khi[users]
            Ef = edge_solve(D.w[f][:, None], D.t[users, m][:, None], D.e[users, m][:, None], grid[[0, -1]][None, :], D.fe_lo, self.F)[0]
            El = edge_solve(D.w[l][:, None], D.t[users, m][:, None], D.e[users, m][:, None], grid[[0, -1]][None, :], D.fe_lo, self.F)[0]
            pos = np.searchsorted(users, n_it)
            floor = np.minimum(Ef[:, 0], El[:, 0])[pos]
            cap = np.minimum(D.user_part[users, f] + Ef[:, 1], D.user_part[users, l] + El[:, 1])[pos]
            keep = (D.user_part[n_it, k_it] + floor <= cap * (1 + 1e-12) + 1e-300) | (k_it == klo[n_it]) | (k_it == khi[n_it])
            n_it, k_it = n_it[keep], k_it[keep]
        self.users, inv = np.unique(n_it, return_inverse=True)
        self.item_user, self.item_k = inv, k_it
        self.counts = np.bincount(inv, minlength=self.users.size)
        self.start = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(int)
        self.w, self.t, self.e = D.w[k_it], D.t[n_it, m], D.e[n_it, m]
        self.user_part = D.user_part[n_it, k_it]
        self.E, self.X = edge_solve(self.w[:, None], self.t[:, None], self.e[:, None], grid[None, :], D.fe_lo, self.F)


class Pricer:
    """Exact pricing for one server: min over user sets S (and splits) of C_m(S) − π(S), by
    branch-and-bound on in/out/free users with the bound max_μ Λ(μ) (module docstring). μ is
    searched on the table's grid (every grid value is exact, hence a valid bound) and refined by
    exact bisection between grid neighbours when that could prune a node."""

    def __init__(self, tab, const_user, node_cap=3000, deadline=None, clock=None):
        self.deadline, self.clock = deadline, clock
        self.tab, self.D, self.m, self.users, self.F = tab, tab.D, tab.m, tab.users, tab.F
        self.item_user, self.item_k, self.start = tab.item_user, tab.item_k, tab.start
        self.w, self.t, self.e = tab.w, tab.t, tab.e
        self.c = tab.user_part + const_user[self.users][self.item_user]     # user part + U − π
        self.node_cap = node_cap
        self.grid_edge = 0
        self.G0, self.X0, self.I0 = self._reduce_x(self.c[:, None] + tab.E, tab.X)

    def _reduce_x(self, V, X):
        """Per user (rows grouped by user): min over its items, the item's x and index."""
        if self.item_k.size == self.users.size:
            I = np.broadcast_to(np.arange(self.users.size).reshape((-1,) + (1,) * (V.ndim - 1)), V.shape)
            return V, X, np.array(I)
        G = np.minimum.reduceat(V, self.start, axis=0)
        hit = V == np.repeat(G, self.tab.counts, axis=0)
        pos = np.where(hit, np.arange(V.shape[0]).reshape((-1,) + (1,) * (V.ndim - 1)), V.shape[0] - 1)
        I = np.minimum.reduceat(pos, self.start, axis=0)
        return G, np.take_along_axis(X, I, axis=0), I

    def G(self, mu):
        """Exact per-user values at one μ: (G, x, item)."""
        E, x = edge_solve(self.w, self.t, self.e, mu, self.D.fe_lo, self.F)
        return self._reduce_x(self.c + E, x)

    def _lam(self, G, X, inn, free, mu):
        val = G[inn].sum(axis=0) + np.minimum(G[free], 0.0).sum(axis=0) - mu * self.F
        take = (inn[:, None] | (free[:, None] & (G < 0))) if G.ndim == 2 else (inn | (free & (G < 0)))
        slope = np.where(take, X, 0.0).sum(axis=0) - self.F
        return val, slope, take

    def bound(self, status, best_v, tol):
        """Valid lower bound on the node: (value, candidate sets [(take, items)] at the maximiser and
        its grid neighbour, G at the maximiser)."""
        inn, free = status == 1, status == 0
        grid = self.tab.grid
        val, slope, take = self._lam(self.G0, self.X0, inn, free, grid)
        i = int(np.argmax(val))
        best = float(val[i])
        j = i + 1 if slope[i] > 0 else i - 1
        sides = [(take[:, i], self.I0[:, i])]
        if 0 <= j < grid.size:
            sides.append((take[:, j], self.I0[:, j]))
        else:
            self.grid_edge += 1   # the maximiser may lie beyond the grid: the bound is valid, maybe weaker
        g_at = self.G0[:, i]
        if best >= best_v - tol or len(sides) < 2:
            return best, sides, g_at
        lo, hi = sorted((grid[i], grid[j]))
        vl, vh = (val[i], val[j]) if grid[i] < grid[j] else (val[j], val[i])
        sl_lo, sl_hi = (slope[i], slope[j]) if grid[i] < grid[j] else (slope[j], slope[i])
        # concavity: Λ* ≤ Λ(lo) + slope(lo)(hi − lo); refine only if that could prune the node
        if min(vl + max(sl_lo, 0.0) * (hi - lo), vh + max(-sl_hi, 0.0) * (hi - lo)) < best_v - tol:
            return best, sides, g_at
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            g, x, it = self.G(mid)
            v, sl, tk = self._lam(g, x, inn, free, mid)
            if v > best:
                best, g_at = float(v), g
            if best >= best_v - tol:
                break
            if sl > 0:
                lo, sl_lo = mid, sl
            elif sl < 0:
                hi, sl_hi = mid, sl
            else:
                break
            if min(sl_lo, -sl_hi) * (hi - lo) <= 1e-14 * (abs(best) + 1e-300):
                break
        return best, sides, g_at

    def run(self, empty_ok, tol, exact=True):
        """Returns (lower bound on min_S C(S) − π(S), ∅ included if empty_ok; candidate columns
        [(reduced value, users, ks, edge value)] exactly costed; nodes). Sets whose weak-duality
        bound shows they cannot beat the best set are not costed."""
        nU = self.users.size
        best_v = 0.0 if empty_ok else np.inf
        cols = []
        seen = set()
        if nU == 0:
            return best_v, cols, 0
        cnt = itertools.count()
        heap = [(-np.inf, next(cnt), np.zeros(nU, np.int8))]
        nodes = 0
        lb_open = np.inf
        while heap:
            pb, _, status = heapq.heappop(heap)
            if pb >= best_v - tol:
                continue
            if nodes >= self.node_cap or (self.deadline is not None and nodes % 64 == 0 and self.clock() > self.deadline):
                lb_open = min(lb_open, pb)
                continue
            nodes += 1
            val, sides, g = self.bound(status, best_v, tol)
            val = max(val, pb)
            for take, items_all in sides:     # candidate columns, exactly costed when promising
                if not take.any():
                    continue
                items = items_all[take]
                key = items.tobytes()
                if key in seen:
                    continue
                seen.add(key)
                # weak duality for the fixed set: its value is ≥ Σ_S G(μ_i) − μ_i F at every grid μ_i
                vals = self.G0[take].sum(axis=0) - self.tab.grid * self.F
                if vals.max() >= best_v - tol:
                    continue          # cannot beat the best set: its node is covered by best_v
                us, ks = self.users[take], self.item_k[items]
                ev, _ = edge_block(self.D, self.m, us, ks)
                red = float(np.sum(self.c[items])) + ev          # C_m(S) − π(S) at λ
                cols.append((red, us, ks, ev))
                best_v = min(best_v, red)
            if not exact:
                lb_open = min(lb_open, val)
                continue
            if val >= best_v - tol:
                continue
            free = np.nonzero(status == 0)[0]
            if free.size:  # branch on the free user closest to indifference
                j = free[np.argmin(np.abs(g[free]))]
                for sgn in (1, -1):
                    st = status.copy(); st[j] = sgn
                    heapq.heappush(heap, (val, next(cnt), st))
                continue
            # all users decided: if the best splits agree either side of the maximiser (they move
            # monotonically with μ) the candidate costed above is this node's optimum; otherwise
            # keep the node's bound (valid, not refined further)
            if len(sides) < 2 or np.any(self.item_k[sides[0][1]][status == 1] != self.item_k[sides[1][1]][status == 1]):
                lb_open = min(lb_open, val)
        for (pb, _, _) in heap:
            lb_open = min(lb_open, pb)
        return min(best_v - tol, lb_open), cols, nodes


def mu_grid(mu_ref, m, eq, N):
    """Frequency prices searched for server m: geometric around the budget-Lagrangian μ_m (and 0 for
    "le"); symmetric around it for "eq" (μ may be negative there). Finer for fewer users."""
    pts = int(np.clip(40000 // max(N, 1), 128, 512))
    scale = max(abs(float(mu_ref[m])), 0.05 * float(np.max(np.abs(mu_ref), initial=0.0)), 1e-9)
    g = np.geomspace(scale * 1e-3, scale * 1e2, pts)
    if eq:
        return np.concatenate([float(mu_ref[m]) - g[::-1], [float(mu_ref[m])], float(mu_ref[m]) + g])
    return np.unique(np.concatenate([[0.0, max(float(mu_ref[m]), 0.0)], g]))


# ------------------------------------------------------------------------------------------------
class ColGen:
    """Column generation for one branch-and-bound node (allowed mask, split ranges, λ fixed)."""

    def __init__(self, D, pool, ev):
        self.D, self.pool, self.ev = D, pool, ev
        self.stats = {"cg_iters": 0, "pricing_nodes": 0, "columns": 0, "grid_edge": 0}
        self.log = None

    def run(self, lam, mu_ref, allowed, klo, khi, cutoff, deadline, clock, pi0, max_iter=300):
        """Maximise L(π) by boxstep column generation from the centre ``pi0`` (the budget
        Lagrangian's per-user values: L(pi0) is at least that bound). Each round: the boxed master
        gives π and the model value ub ≥ max L in the box; exact pricing at π gives L(π) and new
        columns; serious step when L gains ≥ 10 % of ub − L_centre. Stops when the model cannot
        beat the centre by more than the tolerance with the box inactive, at ``cutoff`` or the
        deadline. Returns (best valid bound, master solution)."""
        D = self.D
        N, M = D.N, D.M
        U = self.ev.uplink(lam)[0]                                     # (N, M) at λ
        lamB = float(lam @ D.B)
        tabs = [ServerTable(D, m, np.nonzero(allowed[:, m])[0], klo, khi, mu_grid(mu_ref, m, D.eq_f, N))
                for m in range(M)]
        scale = abs(cutoff) if np.isfinite(cutoff) else float(np.abs(pi0).sum()) + 1e-300
        tol = 2e-10 * scale

        def lagrangian(pi, sig):
            """L(π) (valid bound) and the columns that price out against the master duals sig."""
            L = float(pi.sum()) - lamB
            absum = float(np.abs(pi).sum()) + abs(lamB)
            new = 0
            for m in range(M):
                pr = Pricer(tabs[m], U[:, m] - pi, deadline=deadline, clock=clock)
                lb, found, nodes = pr.run(empty_ok=not D.eq_f, tol=tol, exact=True)
                self.stats["pricing_nodes"] += nodes
                self.stats["grid_edge"] += pr.grid_edge
                L += (min(0.0, lb) if not D.eq_f else lb)
                absum += abs(lb)
                for red, us, ks, evv in sorted(found, key=lambda c: c[0])[:5]:
                    if sig is None or red + float((pi - sig[0])[us].sum()) - sig[1][m] < -tol:
                        new += self.pool.add(m, us, ks, evv)
            return L - SAFETY * absum, new

        centre = np.asarray(pi0, float).copy()
        L_c, _ = lagrangian(centre, None)
        gap0 = (cutoff - L_c) if np.isfinite(cutoff) else 1e-6 * scale
        delta = np.full(N, max(2.0 * gap0 / N, 1e-14 * scale))
        sol = None
        history = [L_c]
        for it in range(max_iter):
            if L_c >= cutoff or clock() > deadline:
                break
            # stall: the last STALL rounds closed < 2 % of the gap left then (the relaxation of the
            # bandwidth budgets at a fixed λ, or capped pricing trees, can leave it short)
            if np.isfinite(cutoff) and len(history) > STALL and L_c - history[-1 - STALL] < 0.02 * (cutoff - history[-1 - STALL]):
                self.stats["stalled"] = self.stats.get("stalled", 0) + 1
                break
            cols = self.pool.usable(allowed, klo, khi)
            lp = self._master(cols, U, centre, delta)
            if lp is None:
                break
            pi, obj, sol, sig, active = lp
            self.stats["cg_iters"] += 1
            ub = obj - lamB
            if ub - L_c <= tol:
                if not active:
                    break           # the model (all columns) cannot beat the centre: converged
                delta *= 4.0
                continue
            L, added = lagrangian(pi, (pi, sig))
            if self.log:
                self.log(f"cg {it} ub {ub:.12g} L {L:.12g} centre {L_c:.12g} added {added} delta {delta[0]:.3g} cols {len(cols)} box {active}")
            history.append(max(L, L_c))
            if L >= L_c + 0.1 * (ub - L_c):
                centre, L_c = pi.copy(), L
                if active:
                    delta *= 2.0
            else:
                if L > L_c:
                    centre, L_c = pi.copy(), L
                delta *= 0.7
        self.stats["columns"] = len(self.pool.srv)
        return L_c, sol

    def _master(self, cols, U, centre, delta):
        """Restricted master LP over the pool: min Σ c_j z_j, each user covered once, each server at
        most one column ("eq": the relaxation that lets a server stay empty; the bound L does not
        rely on the master). Its duals are kept in the box centre ± delta (du Merle/boxstep): the
        columns y⁺ (cost centre + δ, +1) and y⁻ (cost −(centre − δ), −1) on each user row.
        Returns (π, value, {"cols", "z"}, σ, box_active)."""
        D = self.D
        N, M = D.N, D.M
        nc = len(cols)
        ccost, starts, idx = self.pool.columns(cols, U)
        cost = np.concatenate([ccost, np.empty(2 * N)])
        val = [1.0] * len(idx)
        for n in range(N):
            cost[nc + n] = centre[n] + delta[n]
            idx.append(n); val.append(1.0); starts.append(len(idx))
        for n in range(N):
            cost[nc + N + n] = -(centre[n] - delta[n])
            idx.append(n); val.append(-1.0); starts.append(len(idx))
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = nc + 2 * N, N + M
        lp.col_cost_ = cost
        lp.col_lower_, lp.col_upper_ = np.zeros(nc + 2 * N), np.full(nc + 2 * N, highspy.kHighsInf)
        lp.row_lower_ = np.concatenate([np.ones(N), np.zeros(M)])
        lp.row_upper_ = np.concatenate([np.ones(N), np.ones(M)])
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.asarray(starts, np.int32)
        lp.a_matrix_.index_ = np.asarray(idx, np.int32)
        lp.a_matrix_.value_ = np.asarray(val)
        h = quiet.highs()
        h.passModel(lp)
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        sol = h.getSolution()
        y = np.asarray(sol.row_dual)
        col = np.asarray(sol.col_value)
        active = bool(np.any(col[nc:] > 1e-9))
        return y[:N], h.getInfo().objective_function_value, {"cols": cols, "z": col[:nc]}, y[N:], active


def pool_assignment(D, pool, U, time_limit_s=5.0):
    """Best assignment made of pool columns (HiGHS MIP, costs at the node's λ): a heuristic, its
    assignment is then solved exactly by the caller. Returns (server, k) or None."""
    N, M = D.N, D.M
    cols = list(range(len(pool.srv)))
    if not cols:
        return None
    cost, starts, idx = pool.columns(cols, U)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(cols), N + M
    lp.col_cost_ = cost
    lp.col_lower_, lp.col_upper_ = np.zeros(len(cols)), np.ones(len(cols))
    lp.row_lower_ = np.concatenate([np.ones(N), np.ones(M) if D.eq_f else np.zeros(M)])
    lp.row_upper_ = np.concatenate([np.ones(N), np.ones(M)])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.asarray(starts, np.int32)
    lp.a_matrix_.index_ = np.asarray(idx, np.int32)
    lp.a_matrix_.value_ = np.ones(len(idx))
    lp.integrality_ = [highspy.HighsVarType.kInteger] * len(cols)
    h = quiet.highs({"time_limit": float(max(time_limit_s, 0.1)), "mip_rel_gap": 1e-9})
    h.passModel(lp)
    h.run()
    z = np.asarray(h.getSolution().col_value)
    if z.size != len(cols) or h.getInfo().primal_solution_status != 2:
        return None
    server, k = np.full(N, -1), np.zeros(N, int)
    for i in np.nonzero(z > 0.5)[0]:
        j = cols[i]
        server[pool.users[j]] = pool.srv[j]
        k[pool.users[j]] = pool.ks[j]
    return (server, k) if np.all(server >= 0) else None
