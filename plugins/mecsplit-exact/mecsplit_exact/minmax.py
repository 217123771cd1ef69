"""The min–max delay objective (``max_delay``: min over decisions of max_n delay_n), certified by
bisection on the level T (docs/exact.md §7).

Each step asks: can every user meet T (and its own deadline) within the per-server budgets? It is
answered by a feasibility MILP over the options (n, m, k) that can meet T at all, with the user caps
and, per server, the feasibility cuts of timing.py at chosen price pairs (λ, 1):

    Σ_{o on m} x_o R_o(λ, 1; T) ≤ λ B_m + F_m          (valid for every assignment feasible at T)

* MILP infeasible ⇒ no assignment meets T: T is a **lower bound** on the min–max value (the MILP is a
  relaxation; its certificate is the set of cuts, kept in the trace as the level and the cut count).
* MILP solution x ⇒ every server of x is checked exactly at T (timing.Timing.check); a server that
  fails gives the price pair that separates it (the maximiser of its dual), whose cut x violates: add,
  re-solve (finitely many assignments). A server set that passes meets T, and x's exact makespan
  (≤ T) is a new **incumbent**.

The bound reported is the largest level proven infeasible (the min–max value is above it), never a
step's own bound. The next level is the middle of the bracket [bound, incumbent] after a feasible
step, and 1/16 of the previous share below the incumbent after an infeasible one (the incumbent is
then often optimal, and only a proof just below it closes the gap). Status ``optimal`` when
incumbent − bound ≤ the tolerance.

Each cut also caps the server's user count (``most_users``); a level whose MILP runs out of its budget is
retried once with the prices that cap the counts most (``count_prices``), then left open while the levels
below it are proven; every new incumbent is polished by the local search of minmax_local.py (§8.8).
"""

from __future__ import annotations

import time

import numpy as np

from mecsplit import quiet

from .bnb import Gap
from .minmax_local import candidates, polish
from .subproblems import SAFETY, rate
from .timing import Timing

#: share of the time left that each local search on a new incumbent may take (minmax_local.py)
POLISH_SHARE = 0.2
#: share of the time left that one level's HiGHS runs may take before the level is left open (run())
LEVEL_SHARE = 0.25
#: a retreat below an open level closer than this (relative) to the bound gains nothing: retry the open level
RETREAT_MIN = 1e-4

try:
    import highspy
except ImportError:  # pragma: no cover - declared dependency
    highspy = None


def most_users(share, users, N):
    """The most users one server can hold at a level, from one feasibility cut Σ_o x_o share_o ≤ 1 over its
    options (``share`` = R_o / right-hand side, ``users`` the option's user): a set meeting the level
    satisfies the cut, so the sum of its users' cheapest shares is ≤ 1, and so is the sum of the |S| cheapest
    users' cheapest shares (docs/exact.md §8.8)."""
    cheapest = np.full(N, np.inf)
    np.minimum.at(cheapest, users, share)
    return int(np.count_nonzero(np.cumsum(np.sort(cheapest)) <= 1.0 + SAFETY))


def zoom_max(score, center, points, shrink, floor=-np.inf, rounds=4, span=6.0):
    """Maximise ``score(x, y)`` (arrays of grid points → values) over a log grid of ``points`` per axis
    spanning e^±span around ``center`` = (x_c, y_c) (an axis centred at 0 stays 0), recentred on the best
    point so far and narrowed ``shrink``× in each of ``rounds`` rounds: for the concave duals of the cut
    prices, where any point gives a valid cut, so the search need not be exact. Returns ((x, y), value) of
    the best point above ``floor``, or ((None, None), floor)."""
    best, val_best = (None, None), floor
    xc, yc = center
    for _ in range(rounds):
        axes = [c * np.exp(np.linspace(-span, span, points)) if c else np.zeros(1) for c in (xc, yc)]
        X, Y = (g.ravel() for g in np.meshgrid(*axes, indexing="ij"))
        with np.errstate(invalid="ignore"):
            val = score(X, Y)
        i = int(np.nanargmax(val))
        if val[i] > val_best:
            best, val_best = (float(X[i]), float(Y[i])), float(val[i])
            xc, yc = best
        span /= shrink
    return best, val_best


class MinMax(Gap):
    def __init__(self, D, tracer, rel_gap, abs_gap, time_limit_s, log=None, max_rounds=200):
        self.D, self.tracer, self.log = D, tracer, log
        self.rel_gap, self.abs_gap = rel_gap, abs_gap
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + (time_limit_s if time_limit_s is not None else 1e18)
        self.tm = Timing(D)
        self.tm.deadline = self.deadline       # a makespan cut short ends on a feasible level (timing.py)
        self.inc = None
        self.lb = -np.inf
        self.infeasible = None
        self.max_rounds = max_rounds
        self.level_end = np.inf      # perf_counter time at which the current level's HiGHS runs stop (run())
        self.prices = [set() for _ in range(D.M)]     # (λ, π) of the price triples (λ, 1, π) cut at, per server
        self.stats = {"levels": [], "milp_solves": 0, "lp_solves": 0, "cuts": 0, "makespan_solves": 0, "checks": 0,
                      "count_rows": 0}

    # -- incumbents -------------------------------------------------------------------------------------
    def offer(self, server, k):
        """Exact makespan of an assignment; becomes the incumbent if better. Returns its value."""
        D, tm = self.D, self.tm
        server, k = np.asarray(server, int), np.asarray(k, int)
        rows = np.arange(D.N)
        cnt = np.bincount(server, minlength=D.M)
        if np.any(cnt > D.user_cap) or (D.eq_f and np.any(cnt == 0)) or not np.all(D.possible[rows, server, k]):
            return np.inf
        self.stats["makespan_solves"] += 1
        Tm, lam, pi, fe, b, fc = tm.makespan(server, k, D.deadline_s)
        if not np.all(np.isfinite(Tm[cnt > 0])):
            return np.inf
        for m in np.nonzero(cnt > 0)[0]:
            if lam[m] > 0 or pi[m] > 0:
                self.prices[m].add((float(lam[m]), float(pi[m])))
        fe, b, fc = self.fit(server, fe, b, fc)
        delay = self.delays(server, k, fe, b, fc)
        obj = float(np.max(delay))
        if not np.all(delay <= D.deadline_s * (1 + 1e-12)):
            return np.inf
        if obj < self.ub:
            self.inc = {"obj": obj, "server": server.copy(), "k": k.copy(), "fe": fe, "b": b, "fc": fc, "lam": lam,
                        "pi": pi, "levels": Tm}
            self.tracer.incumbent(obj, self.solution())
        return obj

    def fit(self, server, fe, b, fc):
        """Shares within the budgets exactly (the roots leave ~1e-12 relative)."""
        D = self.D
        for v, cap in ((fe, D.F), (b, D.B), (fc, np.full(D.M, D.slot))):
            tot = np.bincount(server, weights=v, minlength=D.M)
            v *= np.where(tot > cap, cap / np.where(tot > 0, tot, 1.0), 1.0)[server]
        return fe, b, fc

    def delays(self, server, k, fe, b, fc):
        """Each user's delay (s) at f_max, p_max and shares fe, b, fc — the delay ledger."""
        D, tm = self.D, self.tm
        n = np.arange(D.N)
        P = tm.parts(n, server, k)
        with np.errstate(divide="ignore", invalid="ignore"):
            up = np.where(tm.s > 0, tm.s / rate(1.0, b, tm.c[n, server]), 0.0)
            cl = np.where(P["Wc"] > 0, P["Wc"] / fc, 0.0)
        return P["a"] + P["W"] / fe + cl + up

    def solution(self):
        r, D = self.inc, self.D
        out = {"server": r["server"].tolist(), "alpha": D.alphas[r["k"]].tolist(), "f_GHz": D.f_max.tolist(),
               "fe_GHz": r["fe"].tolist(), "p_W": D.p_hi.tolist(), "b_MHz": r["b"].tolist()}
        if D.three:
            out["beta"] = D.betas[r["k"]].tolist()
            out["fc_GHz"] = r["fc"].tolist()
        return out

    def start(self, warm=None):
        """First incumbents: the warm start, then each user on the option with the least delay alone
        (repaired to the caps), then the same spread over servers by delay."""
        D, tm = self.D, self.tm
        N, M = D.N, D.M
        rows = np.arange(N)
        if warm is not None:
            k = np.searchsorted(D.alphas, np.clip(np.rint(warm["alpha"]), D.alphas[0], D.alphas[-1]))
            self.offer(np.asarray(warm["server"], int), np.minimum(k, D.k_hi))
        md = np.where(D.possible, tm.min_delay(rows[:, None, None], np.arange(M)[None, :, None],
                                               np.arange(D.K)[None, None, :]), np.inf)
        self.min_delay = md
        # every user alone with a whole server: no level below the largest of these is feasible
        self.alone = float(np.max(np.min(md, axis=(1, 2))))
        best_k = np.argmin(md, axis=2)                                    # (N, M)
        vnm = np.min(md, axis=2)
        # greedy by load: users in order of their best alone-delay, each to the server whose load
        # (Σ alone-delays of its users, a proxy of the makespan) it raises least
        load = np.zeros(M)
        cnt = np.zeros(M, int)
        server = np.zeros(N, int)
        for n in np.argsort(-np.min(vnm, axis=1)):
            cost = np.where(cnt < D.user_cap, load + vnm[n], np.inf)
            m = int(np.argmin(cost))
            server[n] = m
            load[m] += vnm[n, m]
            cnt[m] += 1
        if D.eq_f and np.any(cnt == 0):
            server = np.arange(N) % M
        self.offer(server, best_k[rows, server])
        self.polish()

    def polish(self):
        """Local search on the incumbent (minmax_local.py), within a share of the time left."""
        if self.inc is not None and self.ub - self.alone > self.tol():     # else nothing to gain
            polish(self, POLISH_SHARE * max(self.deadline - self.clock(), 0.0))

    def local_moves(self):
        """The local search's screened moves off the incumbent: (levels, [(score, server, k, touched)])."""
        found = candidates(self)
        return None if found is None else (np.minimum(found[0], self.D.deadline_s), found[2])

    def try_move(self, cand, levels):
        """A move checked exactly at ``levels``: the offered point's value, or inf where it misses them."""
        _, server, k, touched = cand
        ex = self.tm.check(server, k, levels, only=touched, proof_only=True)[0]
        return self.offer(server, k) if np.all(ex[touched] <= 1e-12 * self.D.F[touched]) else np.inf

    # -- the feasibility MILP at a level -------------------------------------------------------------
    def best_prices(self, m, P, w):
        """Prices (λ, π) with a large dual value Σ_o w_o R_o(λ, 1, π; T) − λB_m − π slot of weights w (a
        fractional point of the level LP, options prepared in P). The dual value is concave in (λ, π) (each
        R_o is a minimum of functions linear in the prices), but any prices give a valid cut (§8.4), so the
        search (``price_search``) need not be exact. Returns (λ, π, dual value − F_m)."""
        D = self.D
        slot = D.slot if D.three else 0.0
        return self.price_search(m, P, lambda v, L, Pi: v @ w - L * D.B[m] - Pi * slot - D.F[m])

    def count_prices(self, m, P, users, c):
        """Prices (λ, π) at which the c cheapest users' shares of server m's cut (R_o / (λB_m + F_m + π slot),
        each user at its cheapest option of P) sum the most: above 1, the cut at them caps the server at
        fewer than c users (``most_users``). The sum of the c smallest of concave functions is concave, so
        ``price_search`` suits it. Returns (λ, π, that sum)."""
        D = self.D
        slot = D.slot if D.three else 0.0
        N = D.N

        def score(v, L, Pi):
            share = v / (L * D.B[m] + D.F[m] + Pi * slot)[:, None]
            cheapest = np.full((L.size, N), np.inf)
            np.minimum.at(cheapest, (np.repeat(np.arange(L.size), users.size), np.tile(users, L.size)), share.ravel())
            return np.sort(cheapest, axis=1)[:, :c].sum(axis=1)

        return self.price_search(m, P, score)

    def price_search(self, m, P, score):
        """argmax over prices (λ, 1, π) of ``score(R (G, n), λ (G,), π (G,))`` (R_o of server m's options
        prepared in P at G price pairs): ``zoom_max`` with 9 points per axis, around the median of the
        server's seen prices (else F/B, F/slot). Returns (λ, π, score)."""
        D = self.D
        slot = D.slot if D.three else 0.0
        seen = self.prices[m]
        lam_c, pi_c = ((float(np.median([p[i] for p in seen])) if seen else D.F[m] / cap) or D.F[m] / cap
                       for i, cap in ((0, D.B[m]), (1, max(slot, 1e-9))))
        n = P["T"].size

        def at(L, Pi):
            G = L.size
            Pt = {key: np.tile(v, G) if isinstance(v, np.ndarray) and v.shape == (n,) else v for key, v in P.items()}
            v = self.tm.price(None, None, None, None, np.repeat(L, n), 1.0, np.repeat(Pi, n), prep=Pt)[0]
            return score(v.reshape(G, n), L, Pi)

        (lam, pi), val = zoom_max(at, (lam_c, pi_c if D.three else 0.0), points=9, shrink=4.0)
        return (0.0, 0.0, -np.inf) if lam is None else (lam, pi, val)

    def run_highs(self, h, counter):
        """Run ``h`` within the time left (counted in ``stats[counter]``): "infeasible", "optimal", or
        "limit" (out of time before or during the run, or any other HiGHS status)."""
        left = min(self.deadline, self.level_end) - self.clock()
        if left <= 0:
            return "limit"
        h.setOptionValue("time_limit", float(max(left, 0.01)))
        h.run()
        self.stats[counter] += 1
        st = h.getModelStatus()
        if st == highspy.HighsModelStatus.kInfeasible:
            return "infeasible"
        return "optimal" if st == highspy.HighsModelStatus.kOptimal else "limit"

    def lp_rounds(self, h, nx, separate, rounds=8):
        """Cutting planes at the level LP's points before the MILP: relax x, solve, let ``separate(col)``
        add the cuts the point violates (returns how many), repeat. Returns True when the LP is infeasible
        (then so is the MILP: T is a lower bound)."""
        idx = np.arange(nx, dtype=np.int32)
        h.changeColsIntegrality(nx, idx, np.full(nx, highspy.HighsVarType.kContinuous))
        infeasible = False
        try:
            for _ in range(rounds):
                st = self.run_highs(h, "lp_solves")
                infeasible = st == "infeasible"
                if st != "optimal" or separate(np.asarray(h.getSolution().col_value)) == 0:
                    break
        finally:
            h.changeColsIntegrality(nx, idx, np.full(nx, highspy.HighsVarType.kInteger))
        return infeasible

    def extra_rows(self, h, on, om, ok):
        """Rows (and column costs) a subclass adds to the level MILP over options (on, om, ok)
        (compression.py: the distortion budget)."""

    def level_feasible(self, T, strong=False):
        """Is there an assignment meeting level T? Returns ("infeasible", None) with a proof (the MILP),
        ("feasible", value) after offering the assignment found, or ("limit", None). ``strong``: search
        the prices of the user-count caps before the MILP (``count_prices``)."""
        D, tm = self.D, self.tm
        N, M = D.N, D.M
        levels = np.minimum(T, D.deadline_s)                                       # (N,)
        poss = D.possible & (self.min_delay <= levels[:, None, None])
        if not poss.any(axis=(1, 2)).all():
            return "infeasible", None
        on, om, ok = np.nonzero(poss)
        nx = on.size
        h = quiet.highs({"mip_feasibility_tolerance": 1e-9, "primal_feasibility_tolerance": 1e-9})
        h.addVars(nx, np.zeros(nx), np.ones(nx))
        for n in range(N):
            idx = np.nonzero(on == n)[0].astype(np.int32)
            h.addRow(1.0, 1.0, idx.size, idx, np.ones(idx.size))
        by_m = [np.nonzero(om == m)[0].astype(np.int32) for m in range(M)]
        for m in range(M):
            lo = 1.0 if D.eq_f else 0.0
            if by_m[m].size and (lo > 0 or D.user_cap[m] < N):
                h.addRow(lo, float(D.user_cap[m]), by_m[m].size, by_m[m], np.ones(by_m[m].size))
        self.extra_rows(h, on, om, ok)
        P = tm.prepare(on, om, ok, levels[on])
        cut_keys = set()
        card = np.array([min(N, D.user_cap[m]) for m in range(M)], dtype=float)   # the user count caps so far

        slot = D.slot if D.three else 0.0

        def add_cut(m, lam, mu, pi):
            """Σ_{o on m} x_o R_o(λ, μ, π; T) ≤ λ B_m + μ F_m + π slot, scaled to a right-hand side of 1."""
            key = (m, float(lam), float(mu), float(pi))
            if key in cut_keys or by_m[m].size == 0:
                return 0
            cut_keys.add(key)
            sel = by_m[m]
            Pm = {kk: vv[sel] for kk, vv in P.items()}
            v = tm.price(None, None, None, None, lam, mu, pi, prep=Pm)[0]
            rhs = lam * D.B[m] + mu * D.F[m] + pi * slot
            v = (v - SAFETY * np.abs(v)) / rhs
            h.addRow(-highspy.kHighsInf, 1.0 + SAFETY, sel.size, sel, v)
            self.stats["cuts"] += 1
            # the same row caps the server's user count: a set meeting T has Σ R_o ≤ rhs, and Σ R_o is at
            # least the sum of its users' cheapest options, so at least the |S| cheapest users' sum (§8.8)
            c = most_users(v, on[sel], N)
            if c < card[m]:
                card[m] = c
                h.addRow(-highspy.kHighsInf, float(c), sel.size, sel, np.ones(sel.size))
                self.stats["count_rows"] += 1
            return 1

        for m in range(M):     # the pure directions and every price seen on this server (the LP rounds add more)
            add_cut(m, 0.0, 1.0, 0.0)
            add_cut(m, 1.0, 0.0, 0.0)
            if D.three:
                add_cut(m, 0.0, 0.0, 1.0)
            for lam, pi in sorted(self.prices[m]):
                add_cut(m, lam, 1.0, pi)

        def separate(col):
            """Per server, the cut at the prices that best separate the LP point (§8.4, ``best_prices``)."""
            new = 0
            for m in range(M):
                sel = by_m[m][col[by_m[m]] > 1e-7]
                if sel.size:
                    lam, pi, viol = self.best_prices(m, {kk: vv[sel] for kk, vv in P.items()}, col[sel])
                    if viol > 1e-6 * D.F[m]:
                        new += add_cut(m, lam, 1.0, pi)
            return new

        if self.lp_rounds(h, nx, separate):
            return "infeasible", None
        # a level retried after its MILP ran out of budget (run()): before the MILP, the prices that cap each
        # server's user count most (most_users; a few seconds at 20×4), then the LP again
        lowered = False
        for m in range(M if strong else 0):
            Pm = {kk: vv[by_m[m]] for kk, vv in P.items()}
            for _ in range(3):
                c = int(card[m])
                if c == 0 or by_m[m].size == 0 or self.clock() > min(self.deadline, self.level_end):
                    break
                lam, pi, val = self.count_prices(m, Pm, on[by_m[m]], c)
                if val <= 1.0 + 1e-9 or not add_cut(m, lam, 1.0, pi) or card[m] >= c:
                    break
                lowered = True
        if lowered and self.lp_rounds(h, nx, separate):
            return "infeasible", None
        for _ in range(self.max_rounds):
            st = self.run_highs(h, "milp_solves")
            if st != "optimal":
                return st, None
            x = np.asarray(h.getSolution().col_value)[:nx] > 0.5
            server, k = np.zeros(N, int), np.zeros(N, int)
            server[on[x]], k[on[x]] = om[x], ok[x]
            self.stats["checks"] += 1
            warm = np.array([[np.median([p[i] for p in self.prices[m]]) if self.prices[m] else 0.0 for m in range(M)]
                             for i in (0, 1)])
            ex, lam, pi = tm.check(server, k, levels, lam0=warm[0], pi0=warm[1], proof_only=True)[:3]
            bad = np.nonzero(ex > 1e-12 * D.F)[0]
            if bad.size == 0:
                value = self.offer(server, k)
                self.polish()
                return "feasible", value
            new = 0
            for m in bad:
                self.prices[m].add((float(lam[m]), float(pi[m])))
                new += add_cut(int(m), float(lam[m]), 1.0, float(pi[m]))
            if new == 0:     # the separating cut is already there (rounding): stop, honestly
                return "limit", None
        return "limit", None

    # -- main -------------------------------------------------------------------------------------
    def run(self, warm=None):
        D = self.D
        rows = np.arange(D.N)
        if not D.possible.any(axis=(1, 2)).all():
            n = int(np.argmin(D.possible.any(axis=(1, 2))))
            self.infeasible = (f"user {n} has no possible option: its split cap, rate floor or deadline cannot "
                               "be met even with a whole server's resources")
            return None, np.inf, "infeasible"
        self.start(warm)
        self.lb = max(self.lb, self.alone * (1 - 1e-12))     # (compression.py's start may have proven more)
        self.tracer.bound(min(self.lb, self.ub))
        status = "optimal"
        if self.inc is None:       # only deadlines can make every start infeasible: find any point first
            st, _ = self.level_feasible(np.inf)
            if st == "infeasible":
                self.infeasible = ("the feasibility MILP at the users' own deadlines (a relaxation: one possible "
                                   "option per user, the user caps, the servers' resource cuts) is infeasible")
                return None, np.inf, "infeasible"
            if st == "limit":
                return None, self.lb, "time_limit"
        q = 0.5          # the next level sits at a share q of the bracket below the incumbent
        fail = np.inf    # the lowest level left open within its budget: the next ones go below it
        retreat = not D.compression      # (compression.py keeps one level until the time is out)
        retry = None     # a level left open once: tried again with the count caps' prices searched
        while self.ub - self.lb > self.tol():
            if self.clock() > self.deadline:
                status = "time_limit"
                break
            T = self.ub - max(0.5 * self.tol(), q * (self.ub - self.lb))
            budget = LEVEL_SHARE * (self.deadline - self.t0)
            strong = retry is not None
            if strong:
                T, retry = retry, None
            elif fail <= T:
                T = self.lb + 0.5 * (fail - self.lb)
                if T - self.lb <= RETREAT_MIN * self.ub:    # nothing left to gain below: the open level
                    T, budget, strong = fail, np.inf, True  # again, with all the time left
            if retreat:
                self.level_end = self.clock() + budget
            st, val = self.level_feasible(T, strong=True) if strong else self.level_feasible(T)
            self.level_end = np.inf
            self.stats["levels"].append((T, st))
            if self.log:
                self.log(f"level {T:.12g}: {st}; bound {self.lb:.12g} incumbent {self.ub:.12g}")
            if st == "infeasible":
                # the bound moved up: the incumbent may well be optimal, so aim the next proof close to it
                self.lb = T
                self.tracer.bound(min(self.lb, self.ub))
                q /= 16.0
            elif st == "feasible":
                q = 0.5
            elif self.clock() >= self.deadline:
                status = "time_limit"
                break
            elif retreat and np.isfinite(budget):
                # the level is open (out of its budget): the levels between it and the bound are easier to
                # prove (the LP alone proves those far below), so the bound still rises in the time left;
                # first it is tried once more with the count caps' prices searched (strong)
                if strong:
                    fail = T
                else:
                    retry = T
            else:
                status = "stalled"
                break
            self.tracer.iteration()
        gap_ok = self.ub - self.lb <= self.tol() * (1 + 1e-9)
        return self.inc, min(self.lb, self.ub), ("optimal" if gap_ok else status)
