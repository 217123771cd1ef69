"""The exact solver's driver: the budget-Lagrangian root, then either the assignment MILP with
outer-approximated server costs (``method="oa"``, oa.py, docs/exact.md §2c) or Lagrangian
branch-and-bound over user→server assignments and split ranges (``method="bnb"``, docs/exact.md §4).

A node restricts every user to a set of servers (``allowed``, (N, M) bool) and a range of split
indices [klo, khi]. Its bound is the maximised Lagrangian dual (lagrangian.py); incumbents come from
the Lagrangian assignment, repaired and solved exactly with fixed.py. Branching: the user whose
master-LP weights are split over servers (child 1: only its heaviest server; child 2: not that
server), else split over α on one server (α ≤ ⌊ᾱ⌋ | α ≥ ⌊ᾱ⌋+1), else the closest Lagrangian tie.
"""

from __future__ import annotations

import heapq
import itertools
import time

import numpy as np

from .colgen import ColGen, Pool, pool_assignment
from .fixed import solve_fixed, to_solution
from .lagrangian import DualEval, Master, _scales, maximise
from .local import LocalSearch
from .oa import AssignmentMILP, kept_options, price_points
from .primal import PrimalWorker, available
from .timing import Timing

PATIENCE = 10     # its draws in a row without improvement before it stops
NEAR = 0.9        # its sub-MILPs add 8 edge-cut prices per server on [0.9 μ, μ/0.9] around the incumbent's μ
LARGE = 5000      # user–server pairs above which the MILP gets fewer cut prices and the neighbourhood search runs
WORKER = 2000     # user–server pairs from which (up to LARGE) a second core looks for incumbents (primal.py)


class QuietTracer:
    """A tracer that records nothing: for inner solves whose objective is not the caller's (Dinkelbach
    steps) and for direct use of BnB in tests and scripts."""

    def incumbent(self, objective, solution=None):
        pass

    def bound(self, bound):
        pass

    def iteration(self, k=None):
        pass


class Gap:
    """Clock, incumbent value and gap tolerance shared by the drivers (BnB, minmax.MinMax); they set
    ``inc`` (a dict with "obj"), ``rel_gap`` and ``abs_gap``."""

    def clock(self):
        return time.perf_counter()

    @property
    def ub(self):
        """The incumbent's objective (inf before the first one)."""
        return np.inf if self.inc is None else self.inc["obj"]

    def tol(self):
        return 0.0 if self.inc is None else max(self.abs_gap, self.rel_gap * abs(self.inc["obj"]))


class BnB(Gap):
    def __init__(self, D, tracer, rel_gap, abs_gap, node_limit, time_limit_s, dual_iters=60, log=None, heur_every=1,
                 colgen="root", colgen_share=0.5, colgen_max_s=30.0, method="bnb", local_search=True,
                 second_core=False, seed=0, highs_threads=0):
        self.method = method
        self.seed = seed                     # the neighbourhood search's draws and the primal worker's HiGHS
        self.highs_threads = highs_threads   # the primal worker's HiGHS (the caller sets this process's: plugin.run)
        self.second_core = second_core
        self.heur_every = max(1, int(heur_every))
        self.colgen, self.colgen_share, self.colgen_max_s = colgen, colgen_share, colgen_max_s
        self.pool = Pool(D)
        self.D, self.tracer = D, tracer
        self.rel_gap, self.abs_gap, self.node_limit = rel_gap, abs_gap, node_limit
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + (time_limit_s if time_limit_s is not None else 1e18)
        self.dual_iters = dual_iters
        self.ev = DualEval(D)
        # the move/swap screen prices sets without deadlines: not used when some user has one
        self.local = LocalSearch(D, self.ev.uplink) if local_search and not D.has_deadline else None
        self.inc = None          # best fixed-assignment result
        self.infeasible = None   # the proof, when the problem is shown infeasible
        self.nodes = 0
        self.log = log
        self.stats = {"nodes": 0, "dual_evals": 0, "fixed_solves": 0, "root_bound": None, "root_time_s": None,
                      "root_lagrangian_bound": None, "colgen": None, "oa_rounds": 0, "oa_options": None, "oa_limited": False,
                      "oa_cuts": 0, "local_search": None}

    # -- helpers ---------------------------------------------------------------------------------
    def offer(self, server, k, improve_alpha=True):
        r = solve_fixed(self.D, server, k, improve_alpha)
        self.stats["fixed_solves"] += 1
        if r is None:
            return None
        if self.colgen != "off":
            self.pool.add_assignment(r["server"], r["k"], r["x"])
        if self.inc is None or r["obj"] < self.inc["obj"]:
            self.inc = r
            self.tracer.incumbent(r["obj"], to_solution(self.D, r))
        return r

    def repair(self, server, vnm):
        """Make an assignment respect the user caps (Data.user_cap: move the user whose move costs least
        from an over-full server to one with room) and, for equality frequency budgets, give every empty
        server the user whose move costs least. ``vnm`` (N, M): a user's cost on each server (inf where
        it has no possible option). Returns None when it cannot."""
        server = server.copy()
        D = self.D
        rows = np.arange(D.N)
        for _ in range(2 * D.N + D.M):
            cnt = np.bincount(server, minlength=D.M)
            cur = vnm[rows, server]
            over = np.nonzero(cnt > D.user_cap)[0]
            if over.size:
                with np.errstate(invalid="ignore"):      # inf − inf: users with no option there (excluded below)
                    delta = vnm - cur[:, None]
                delta[:, cnt >= D.user_cap] = np.inf
                delta[~np.isin(server, over)] = np.inf
            else:
                empty = np.nonzero(cnt == 0)[0] if D.eq_f else np.zeros(0, int)
                if empty.size == 0:
                    return server
                delta = np.full((D.N, D.M), np.inf)
                delta[:, empty[0]] = vnm[:, empty[0]] - cur
                delta[cnt[server] < 2] = np.inf
            if not np.isfinite(delta).any():
                return None
            n, m = np.unravel_index(int(np.argmin(delta)), delta.shape)
            server[n] = m
        return None

    def heuristic(self, ev, allowed, sol=None, tries=8):
        """Round the master LP (each user to its heaviest option; the Lagrangian argmin when no LP),
        repair empty servers ("eq"), solve exactly, then try the other servers of the most
        fractional users one at a time (keep improvements)."""
        D = self.D
        N, M = D.N, D.M
        rows = np.arange(N)
        server, k = ev["m"].copy(), ev["k"].copy()
        frac_users, Wn = [], None
        if sol is not None and len(sol["weights"]) == len(sol["user"]):
            w = np.clip(sol["weights"], 0.0, None)
            W = np.zeros((N, M))
            np.add.at(W, (sol["user"], sol["srv"]), w)
            tot = W.sum(axis=1)
            ok = tot > 0.5
            Wn = W / np.where(tot > 0, tot, 1.0)[:, None]
            server = np.where(ok, np.argmax(Wn, axis=1), server)
            k = ev["knm"][rows, server]
            frac = 1.0 - Wn.max(axis=1)
            frac_users = [int(n) for n in np.argsort(-frac) if frac[n] > 1e-6][:tries]
        server = np.where(allowed[rows, server], server, ev["m"])
        server = self.repair(server, ev["vnm"])
        if server is None:
            return None
        k = ev["knm"][rows, server]
        cur = self.offer(server, k)
        if cur is None or Wn is None:
            return cur
        for n in frac_users:
            if self.clock() > self.deadline:
                break
            for m in np.nonzero((Wn[n] > 1e-6) & allowed[n])[0]:
                if m == cur["server"][n]:
                    continue
                if self.clock() > self.deadline:
                    break
                s2, k2 = cur["server"].copy(), cur["k"].copy()
                s2[n], k2[n] = m, ev["knm"][n, m]
                r = self.offer(s2, k2)
                if r is not None and r["obj"] < cur["obj"]:
                    cur = r
        return cur

    # -- main --------------------------------------------------------------------------------------
    def run(self, warm=None):
        D = self.D
        N, M = D.N, D.M
        # incumbents: warm start, strongest-gain assignment, then the Lagrangian loop
        if not D.possible.any(axis=(1, 2)).all():    # some user has no possible option at all
            n = int(np.argmin(D.possible.any(axis=(1, 2))))
            self.infeasible = (f"user {n} has no possible option: its split cap, rate floor or deadline cannot "
                               "be met even with a whole server's resources")
            return None, -np.inf, "infeasible"
        if warm is not None:
            k = np.searchsorted(D.alphas, np.clip(np.rint(warm["alpha"]), D.alphas[0], D.alphas[-1]))
            self.offer(np.asarray(warm["server"], int), np.minimum(k, D.k_hi))
        # start: the strongest channel among the servers the user can use, repaired to the caps
        gain = np.where(D.possible.any(axis=2), D.a, -np.inf)
        start = self.repair(np.argmax(gain, axis=1), -gain)
        if start is not None:
            self.offer(start, np.argmax(D.possible[np.arange(N), start], axis=1))
        allowed = np.ones((N, M), bool)
        klo, khi = D.k_lo.copy(), D.k_hi.copy()
        if self.inc is None:      # no incumbent yet: the root works from zero prices (scaled like the data)
            lam, mu = np.zeros(M), np.zeros(M)
        else:
            lam, mu = self.inc["lam"].copy(), self.inc["mu"].copy()
        light = self.method == "oa"   # the MILP finds the incumbents there: a light root heuristic
        for _ in range(1 if light else 3):  # dual heuristic: Lagrangian assignment at the incumbent's KKT multipliers
            if self.clock() > self.deadline:
                break
            ev = self.ev(lam, mu, allowed, klo, khi)
            r = self.heuristic(ev, allowed)
            if r is None:
                break
            lam, mu = r["lam"], r["mu"]
        if self.inc is not None:
            lam, mu = self.inc["lam"].copy(), self.inc["mu"].copy()
        self.sl, self.sm = _scales(lam), _scales(mu)

        cnt = itertools.count()
        heap = [(-np.inf, next(cnt), allowed, klo, khi, lam, mu, Master(D))]
        global_lb = -np.inf
        status = "optimal"
        while heap:
            lb_open = heap[0][0]
            if lb_open > global_lb:
                global_lb = lb_open
                self.tracer.bound(min(global_lb, self.ub))
            if self.ub - global_lb <= self.tol():
                break
            if self.clock() > self.deadline:
                status = "time_limit"
                break
            if self.nodes >= self.node_limit:
                status = "node_limit"
                break
            plb, _, allowed, klo, khi, lam, mu, master = heapq.heappop(heap)
            if plb >= self.ub - self.tol():
                continue
            self.nodes += 1
            self.tracer.iteration()
            cutoff = self.ub - self.tol()
            # (stopping the root within a tenth of the tolerance, not 1e-9: 1000×50 root 65 → 42 CPU s, but
            # 200×20 seed 1 then failed to certify in 120 s twice, 16 CPU s without it — docs/exact.md §5)
            best, sol, its = maximise(D, self.ev, master, lam, mu, allowed, klo, khi, max_iter=self.dual_iters,
                                      cutoff=cutoff, deadline=self.deadline, clock=self.clock,
                                      sl=self.sl, sm=self.sm)
            self.stats["dual_evals"] += its + 1
            bound = max(plb, best["L"])
            if self.nodes == 1 or self.nodes % self.heur_every == 0 or bound < self.ub - 2 * self.tol() and self.nodes < 20:
                self.heuristic(best, allowed, sol, tries=(2 if light else 8) if self.nodes == 1 else 3)
            if self.nodes == 1:
                self.stats["root_lagrangian_bound"] = float(bound)
                self.tracer.bound(min(bound, self.ub))    # the root bound is the global bound
            if (self.colgen == "all" or self.colgen == "root" and self.nodes == 1) and bound < self.ub - self.tol():
                bound = max(bound, self.server_subsets(best, allowed, klo, khi))
            if self.nodes == 1:
                self.tracer.bound(min(bound, self.ub))
                self.stats["root_bound"] = float(bound)
                self.stats["root_time_s"] = self.clock() - self.t0
            if self.method == "oa" and bound < self.ub - self.tol():
                bound = max(bound, self.outer_approximation(best))
                global_lb = bound
                heap = []
                status = ("infeasible" if self.infeasible
                          else "optimal" if self.ub - bound <= self.tol() * (1 + 1e-9)
                          else "time_limit" if self.clock() >= self.deadline
                          else "node_limit" if self.stats["oa_limited"] else "stalled")
                break
            if self.log:
                self.log(f"node {self.nodes} bound {bound:.10g} inc {self.ub:.10g} open {len(heap)} its {its}")
            if bound >= self.ub - self.tol():
                continue
            br = self.choose(best, sol, allowed, klo, khi)
            if br is None:  # no branching candidate: node is a single option per user
                continue
            for ch_allowed, ch_klo, ch_khi in br:
                if D.eq_f and np.any(~ch_allowed.any(axis=0)):
                    continue  # some server can no longer be used: infeasible with "eq" budgets
                heapq.heappush(heap, (bound, next(cnt), ch_allowed, ch_klo, ch_khi, best["lam"], best["mu"],
                                      master.filtered(ch_allowed, ch_klo, ch_khi)))
        if not heap and status == "optimal":
            global_lb = max(global_lb, self.ub - self.tol())
        if self.stats["root_bound"] is not None:   # the root's bound holds for the whole tree
            global_lb = max(global_lb, self.stats["root_bound"])
        self.stats["nodes"] = self.nodes
        if self.infeasible:
            return None, np.inf, "infeasible"
        global_lb = min(global_lb, self.ub)
        if np.isfinite(global_lb):
            self.tracer.bound(global_lb)
        gap_ok = self.ub - global_lb <= self.tol() * (1 + 1e-9)
        return self.inc, global_lb, ("optimal" if gap_ok else status)

    def outer_approximation(self, best):
        """The assignment MILP with outer-approximated server costs (oa.py), cut at dense prices around
        the root's Lagrangian multipliers, re-solved with the cuts of every assignment it finds until
        the gap closes or time runs out. Returns its valid bound."""
        if self.clock() >= self.deadline:   # the root used the time: no MILP to build (1000×50: up to 1.5M binaries)
            return best["L"]
        D = self.D
        N, M = D.N, D.M
        inc = self.inc
        keep = kept_options(D, best, self.ub)
        if inc is not None:
            keep[np.arange(N), inc["server"], inc["k"]] = True
        base = float(np.sum(np.min(np.where(keep, D.user_part[:, None, :], np.inf), axis=(1, 2))))
        top = self.ub if inc is not None else best["L"]      # the scale of the assignment-dependent part
        milp = AssignmentMILP(D, keep, 1.0 / max(abs(top - base), 1e-9 * abs(top), 1e-300))
        self.stats["oa_options"] = milp.nx
        if self.ub - best["L"] > self.tol():
            # HiGHS' own primal heuristics are off (oa.SEARCH): the first MILP's cutoff comes from here; before
            # the cuts, so that the polished incumbent's own (exact) cuts are in the MILP
            self.polish()
        inc = self.inc
        dense = 20 if N * M <= LARGE else 12      # prices per server (fewer rows on large instances)
        mus = price_points(D, best["mu"], n=dense, eq=D.eq_f)
        lams = price_points(D, best["lam"], n=max(dense // 2, 2))
        cuts = 0
        own_mu, own_lam = (inc["mu"], inc["lam"]) if inc is not None else (best["mu"], best["lam"])
        for m in range(M):
            cuts += milp.add_cuts(m, [0.0, best["mu"][m], own_mu[m]] + mus[m], [0.0, best["lam"][m], own_lam[m]] + lams[m])
            if D.has_deadline:    # deadlines: whole-server cuts at price pairs, feasibility cuts (docs §7b)
                pairs = [(best["lam"][m], best["mu"][m]), (own_lam[m], own_mu[m])]
                pairs += [(c * best["lam"][m], c * best["mu"][m]) for c in (0.5, 0.7, 1.4, 2.0)]
                cuts += milp.add_joint_cuts(m, pairs)
                for lam in (0.0, np.inf, best["lam"][m] / max(best["mu"][m], 1e-300)):
                    cuts += milp.add_feasibility_cut(m, lam)
        bound = best["L"]

        exact = {}

        def costed(server, k):   # exact cost of a MILP solution (once), offered as an incumbent
            key = server.tobytes() + k.tobytes()
            if key not in exact:
                exact[key] = r = self.offer(server, k, improve_alpha=False) if np.all(server >= 0) else None
                if r is not None and self.inc is r:
                    # a new incumbent from HiGHS: polish it here, inside its callback, so the MILP and its
                    # search stay as they are (a polished start or a smaller MILP made HiGHS slower on
                    # 50×10; docs/exact.md §2d)
                    self.polish()
            return exact[key]

        def report(lb):   # HiGHS' running dual bound, streamed to the trace
            if lb > bound:
                self.tracer.bound(min(lb, self.ub))

        if N * M > LARGE:   # (at 50×10 its sub-MILPs, 40 % of the problem each, cost more than the MILP: §5)
            self.neighbourhoods(milp, best["mu"], bound)
        worker = None
        if (self.second_core and WORKER <= N * M <= LARGE and self.local is not None and self.ub - bound > self.tol()
                and available()):
            worker = PrimalWorker(D, milp, self.deadline - self.clock(), seed=self.seed, threads=self.highs_threads)
            self.stats["primal_worker"] = {"sent": 0, "improvements": 0}

        def incumbent():   # the worker's assignments, each costed exactly here before HiGHS is handed it
            if worker is not None:
                for server, k in worker.poll():
                    before = self.inc
                    self.offer(server, k, improve_alpha=False)
                    self.stats["primal_worker"]["improvements"] += self.inc is not before
            return self.inc

        try:
            return self._oa_rounds(milp, bound, cuts, costed, report, incumbent)
        finally:
            if worker is not None:
                worker.close()
                self.stats["primal_worker"]["sent"] = worker.sent

    def _oa_rounds(self, milp, bound, cuts, costed, report, incumbent):
        """The outer-approximation loop of outer_approximation: solve, cut every solution found at its own
        multipliers, re-solve until the gap closes, the MILP's optimum is costed exactly or time runs out."""
        D = self.D
        target = 0.5   # the MILP's gap target, as a share of the tolerance (room for the bound margin)
        while self.clock() < self.deadline:
            start = milp.start_vector(self.inc["server"], self.inc["k"]) if self.inc is not None else None
            lb, found, limited = milp.solve(self.deadline - self.clock(), target * self.tol(), start, report, costed,
                                            node_limit=self.node_limit,
                                            stop=lambda lb: (inc := incumbent()) is not None and inc["obj"] - lb <= self.tol(),
                                            incumbent=incumbent)
            self.stats["oa_rounds"] += 1
            if milp.infeasible:    # the MILP is a relaxation of the problem: no assignment is feasible
                self.infeasible = ("the assignment MILP, a relaxation (one possible option per user, the user caps, "
                                   "the rate floors' bandwidth within each budget), is infeasible (HiGHS)")
                return np.inf
            bound = max(bound, lb)
            new = 0
            for server, k in found:
                r = costed(server, k)
                if r is not None:
                    for m in np.unique(server):
                        new += milp.add_cuts(int(m), [r["mu"][m]], [r["lam"][m]])
                        if D.has_deadline:
                            new += milp.add_joint_cuts(int(m), [(r["lam"][m], r["mu"][m])])
                elif D.has_deadline:   # its servers cannot all meet the deadlines: cut them off
                    ex, lam = Timing(D).check(server, k, D.deadline_s)[:2]
                    for m in np.nonzero(ex > 0)[0]:
                        new += milp.add_feasibility_cut(int(m), float(lam[m]))
            if self.ub - bound > self.tol():
                self.polish()
            if self.inc is not None:   # the incumbent's own cuts (it may come from the local search, not HiGHS)
                for m in np.unique(self.inc["server"]):
                    new += milp.add_cuts(int(m), [self.inc["mu"][m]], [self.inc["lam"][m]])
            cuts += new
            self.tracer.bound(min(bound, self.ub))
            if self.log:
                self.log(f"oa round {self.stats['oa_rounds']} bound {bound:.10g} inc {self.ub:.10g} "
                         f"solutions {len(found)} new cuts {new}")
            self.stats["oa_limited"] = limited
            if self.ub - bound <= self.tol() or limited:
                break
            if new == 0:   # the MILP's optimum was costed exactly: only its gap target is left to tighten
                if target < 1e-3:
                    break
                target *= 0.1
        self.stats["oa_cuts"] = cuts
        self.stats["oa_stale_starts"] = milp.stale_starts
        return bound

    def neighbourhoods(self, milp, mu_root, bound, share=0.5, group=4):
        """Large-neighbourhood search (docs/exact.md §2d): the users of ``group`` servers re-assigned
        among them by a small MILP over the assignment MILP's cuts (AssignmentMILP.neighbourhood), the
        result solved exactly and kept if it improves, its servers then cut at their new multipliers.
        Two servers priced above their root multiplier (over-loaded) and two below, drawn with the
        solve's seed; stops after PATIENCE draws in a row without improvement, on ``share`` of the remaining
        time, or when the gap closes to the root bound. Only where the moves and swaps run (no deadlines)
        and M > group."""
        D = self.D
        if self.local is None or self.inc is None or D.M <= group:
            return
        t = self.clock()
        end = t + share * max(self.deadline - t, 0.0)
        rng = np.random.default_rng(self.seed)
        st = {"seed": self.seed, "tries": 0, "improvements": 0, "time_s": 0.0}
        fails = 0
        while fails < PATIENCE and self.clock() < end and self.ub - bound > self.tol():
            inc = self.inc
            order = np.argsort(inc["mu"] / np.where(mu_root > 0, mu_root, 1.0))
            half = D.M // 2
            g = np.concatenate([rng.choice(order[:half], group // 2, replace=False),
                                rng.choice(order[half:], group - group // 2, replace=False)])
            st["tries"] += 1
            near = None if D.eq_f else price_points(D, inc["mu"][g], NEAR, 8)   # a fine cost model near the incumbent
            cand = milp.neighbourhood(g, inc["server"], inc["k"], min(10.0, max(end - self.clock(), 0.01)), near)
            r = self.offer(*cand[:2]) if cand is not None else None
            if r is not None and r is self.inc and r["obj"] < inc["obj"]:
                st["improvements"] += 1
                fails = 0
                for m in g:
                    milp.add_cuts(int(m), [r["mu"][m]], [r["lam"][m]])
            else:
                fails += 1
        st["time_s"] = self.clock() - t
        self.stats["neighbourhoods"] = st

    def polish(self, share=0.3):
        """Local search (local.py) from the incumbent on a share of the remaining time; it stops by
        itself when no move or swap is predicted to improve."""
        if self.local is None or self.inc is None:
            return
        t = self.clock()
        end = t + share * max(self.deadline - t, 0.0)
        self.local.improve(self.inc, end, self.clock, lambda server, k: self.offer(server, k, improve_alpha=False))
        self.offer(self.inc["server"], self.inc["k"])      # re-chooses every split at the final prices
        self.local.stats["time_s"] += self.clock() - t
        self.stats["local_search"] = dict(self.local.stats)

    def server_subsets(self, best, allowed, klo, khi):
        """The set-partitioning bound of the node (colgen.py) from the budget Lagrangian's
        multipliers, on a share of the remaining time; then the best assignment made of the columns
        found is solved exactly as an incumbent. Returns the (valid) bound."""
        now = self.clock()
        budget = min(self.colgen_share * (self.deadline - now), self.colgen_max_s)
        cg = ColGen(self.D, self.pool, self.ev)
        if self.log:
            cg.log = self.log
        L, _ = cg.run(best["lam"], best["mu"], allowed, klo, khi, cutoff=self.inc["obj"] - self.tol(),
                      deadline=min(self.deadline, now + budget), clock=self.clock, pi0=best["v"])
        U = self.ev.uplink(best["lam"])[0]
        pick = pool_assignment(self.D, self.pool, U, time_limit_s=min(5.0, max(self.deadline - self.clock(), 0.1)))
        if pick is not None and np.all(allowed[np.arange(self.D.N), pick[0]]):
            self.offer(*pick)
        st = self.stats.setdefault("colgen", None) or {}
        for key, val in cg.stats.items():
            st[key] = st.get(key, 0) + val if key != "columns" else val
        st["time_s"] = st.get("time_s", 0.0) + self.clock() - now
        self.stats["colgen"] = st
        if self.log:
            self.log(f"set-partitioning bound {L:.12g} (Lagrangian {best['L']:.12g}) in {self.clock() - now:.2f} s")
        return L

    def choose(self, best, sol, allowed, klo, khi):
        D = self.D
        N, M = D.N, D.M
        cand = None
        if sol is not None and len(sol["weights"]) == len(sol["user"]):
            w = np.clip(sol["weights"], 0.0, None)
            W = np.zeros((N, M))
            np.add.at(W, (sol["user"], sol["srv"]), w)
            tot = W.sum(axis=1)
            Wn = W / np.where(tot > 0, tot, 1.0)[:, None]
            frac = 1.0 - Wn.max(axis=1)
            frac[allowed.sum(axis=1) <= 1] = 0.0
            n = int(np.argmax(frac))
            if frac[n] > 1e-6:
                cand = ("server", n, int(np.argmax(Wn[n])))
            else:
                ka = np.zeros(N)
                np.add.at(ka, sol["user"], w * sol["k"])
                ka = ka / np.where(tot > 0, tot, 1.0)
                fk = np.abs(ka - np.rint(ka))
                fk[khi <= klo] = 0.0
                n = int(np.argmax(fk))
                if fk[n] > 1e-6:
                    cand = ("alpha", n, int(np.floor(ka[n])))
        if cand is None:  # closest tie between a user's best option and its best on another server
            vnm = best["vnm"].copy()
            rows = np.arange(N)
            v1 = vnm[rows, best["m"]]
            vnm[rows, best["m"]] = np.inf
            gap = (vnm.min(axis=1) - v1) / np.maximum(np.abs(v1), 1e-300)
            gap[allowed.sum(axis=1) <= 1] = np.inf
            if np.isfinite(gap).any():
                n = int(np.argmin(gap))
                cand = ("server", n, int(best["m"][n]))
            else:
                # all servers fixed: split ranges left?
                open_k = np.nonzero(khi > klo)[0]
                if open_k.size == 0:
                    return None
                n = int(open_k[0])
                cand = ("alpha", n, int(np.clip(best["k"][n], klo[n], khi[n] - 1)))
        kind, n, j = cand
        if kind == "server":
            a1 = allowed.copy(); a1[n, :] = False; a1[n, j] = True
            a2 = allowed.copy(); a2[n, j] = False
            return [(a1, klo, khi), (a2, klo, khi)]
        j = int(np.clip(j, klo[n], khi[n] - 1))
        h1 = khi.copy(); h1[n] = j
        l2 = klo.copy(); l2[n] = j + 1
        return [(allowed, klo, h1), (allowed, l2, khi)]
