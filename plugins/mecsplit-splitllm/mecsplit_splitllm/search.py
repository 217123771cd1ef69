"""The ``splitllm`` solver: cut enumeration per user and association moves around the exact resource step
(docs/splitllm.md §2).

1. start: every user on the edge with the best rate at an equal share, at most ⌈N/M⌉ per edge; its cut the
   (α, β) that minimises its own delay at equal shares among all integer cuts its memory caps allow;
2. resources: the exact min-max step of :mod:`.resources` (certified per server for the fixed cuts);
3. cut moves: for each user of each edge (slowest edge first), every allowed (α, β) is screened by the
   Lagrangian bound g_m(λ) at the current weights — a valid lower bound on that edge's optimal delay with the
   candidate cut, computed in O(1) per candidate — and the most promising candidates are re-solved exactly;
   the first that lowers the edge's min-max delay is kept;
4. association moves: every user of the slowest edge is tried on every other edge, and swapped with every
   user of another edge (cuts kept where allowed, else re-chosen); the best move that lowers the larger of
   the two edges' delays is kept (the best single move, else the first improving swap); then 3 again.
Stops when neither move improves, or at the time limit. Every accepted point is feasible by construction and
the final point is checked by the framework's evaluator.
"""

from __future__ import annotations

import numpy as np

from .resources import rate, solve_resources


class Search:
    def __init__(self, sc, tracer=None, max_exact: int = 6, rel: float = 1e-7):
        self.sc, self.tracer, self.max_exact, self.rel = sc, tracer, max_exact, rel
        self.exact_solves = 0
        self.moves = {"cut": 0, "association": 0}

    # --- building blocks ---------------------------------------------------------------------------
    def out_of_time(self) -> bool:
        return self.tracer is not None and self.tracer.out_of_time()

    def solve_server(self, m, server, alpha, beta, lam=None, target=None):
        """Resources of the users on edge m (a Resources over that subset, and the subset's index): exact
        (certified to 1e-9), or with ``target`` only until the edge's delay is known to be below it or not."""
        idx = np.flatnonzero(server == m)
        self.exact_solves += 1
        if idx.size == 0:
            return idx, None
        sub = self.sc.subset(idx)
        return idx, solve_resources(sub, server[idx], alpha[idx], beta[idx], lam=None if lam is None else lam[idx], target=target)

    def greedy_association(self) -> np.ndarray:
        sc = self.sc
        if sc.pinned == "device":
            return np.zeros(sc.N, int)
        cap, counts = -(-sc.N // sc.M), np.zeros(sc.M)
        server = np.empty(sc.N, int)
        best = (sc.q / np.maximum(sc.B[None, :], 1e-300)).max(axis=1)
        for n in np.argsort(-best, kind="stable"):
            b = sc.B / (counts + 1.0)
            r = np.where(counts < cap, rate(sc.q[n], np.maximum(b, 1e-300)), -np.inf)
            server[n] = int(np.argmax(r))
            counts[server[n]] += 1
        return server

    def own_best_cut(self, n, m, counts) -> np.ndarray | None:
        """The allowed cut minimising user n's delay at equal shares on edge m (None: no allowed cut)."""
        sc, cand = self.sc, self.sc.cuts(n, m)
        if cand.size == 0:
            return None
        k = max(counts[m], 1)
        a, b = cand[:, 0], cand[:, 1]
        d = a * sc.t[n] + (b - a) * sc.e[n, m] / max(sc.F[m] / k, 1e-300)
        if sc.cloud:
            d = d + (sc.Y - b) * sc.c[n] / (sc.C / k)
        return cand[int(np.argmin(d))]

    # --- the search --------------------------------------------------------------------------------
    def run(self, server=None):
        sc = self.sc
        server = self.greedy_association() if server is None else np.asarray(server, int)
        counts = np.bincount(server, minlength=sc.M)
        alpha, beta = np.zeros(sc.N), np.zeros(sc.N)
        for n in range(sc.N):
            cut = self.own_best_cut(n, server[n], counts)
            if cut is None:
                return None
            alpha[n], beta[n] = cut
        state = {m: self.solve_server(m, server, alpha, beta) for m in range(sc.M)}
        self._report(state)
        while not self.out_of_time():
            improved = False
            for m in self._by_delay(state):
                improved |= self.improve_cuts(m, server, alpha, beta, state)
            if sc.pinned is None and sc.M > 1:
                improved |= self.move_users(server, alpha, beta, state)
            self._report(state)
            if not improved:
                break
        return self.polish(server, alpha, beta)   # moves were decided early; the final resources are exact

    def polish(self, server, alpha, beta):
        """Exact resources for given association and cuts (no moves)."""
        state = {m: self.solve_server(m, server, alpha, beta) for m in range(self.sc.M)}
        return server, alpha, beta, self._assemble(state)

    def _by_delay(self, state):
        return sorted(state, key=lambda m: -(state[m][1].tau[m] if state[m][1] is not None else 0.0))

    def _tau(self, state, m) -> float:
        return float(state[m][1].tau[m]) if state[m][1] is not None else 0.0

    def _report(self, state):
        if self.tracer is not None:
            self.tracer.iteration()

    def improve_cuts(self, m, server, alpha, beta, state) -> bool:
        """Cut moves on edge m (step 3); updates alpha, beta, state in place."""
        sc, any_better = self.sc, False
        idx, res = state[m]
        if res is None or sc.pinned is not None:
            return False
        for pos, n in enumerate(idx):
            if self.out_of_time():
                break
            idx, res = state[m]
            cand = sc.cuts(n, m)
            if len(cand) <= 1:
                continue
            lam, rows = res.lam, np.arange(len(idx))
            a_all, b_all = alpha[idx], beta[idx]
            c0 = a_all * sc.t[idx] + sc.h[idx, m]
            bw = res.delay - c0 - (b_all - a_all) * sc.e[idx, m] / res.fe - ((sc.Y - b_all) * sc.c[idx] / res.fc if sc.cloud else 0.0)
            We = (b_all - a_all) * sc.e[idx, m]
            Wc = (sc.Y - b_all) * sc.c[idx] if sc.cloud else np.zeros(len(idx))
            others = rows != pos
            base = float(np.sum(lam[others] * (c0[others] + bw[others]))) + lam[pos] * bw[pos]
            Ae, Ac = float(np.sum(np.sqrt(lam[others] * We[others]))), float(np.sum(np.sqrt(lam[others] * Wc[others])))
            ca, cb = cand[:, 0], cand[:, 1]
            lb = (base + lam[pos] * (ca * sc.t[n] + sc.h[n, m])
                  + (Ae + np.sqrt(lam[pos] * (cb - ca) * sc.e[n, m])) ** 2 / sc.F[m])
            if sc.cloud:
                lb = lb + (Ac + np.sqrt(lam[pos] * (sc.Y - cb) * sc.c[n])) ** 2 / sc.C
            tau = self._tau(state, m)
            same = (ca == alpha[n]) & (cb == beta[n])
            order = [k for k in np.argsort(lb) if not same[k] and lb[k] < tau * (1 - self.rel)][: self.max_exact]
            for k in order:
                old = alpha[n], beta[n]
                alpha[n], beta[n] = ca[k], cb[k]
                new = self.solve_server(m, server, alpha, beta, lam=self._lam_full(state, m), target=tau * (1 - self.rel))
                if new[1].tau[m] < tau * (1 - self.rel):
                    state[m] = new
                    self.moves["cut"] += 1
                    any_better = True
                    break
                alpha[n], beta[n] = old
        return any_better

    def _lam_full(self, state, m):
        lam = np.ones(self.sc.N)
        idx, res = state[m]
        if res is not None:
            lam[idx] = res.lam
        return lam

    def move_users(self, server, alpha, beta, state) -> bool:
        """Association moves out of the slowest edge (step 4): the best move of one user to another edge
        that lowers the larger of the two edges' delays, else the first such swap of two users between the
        slowest edge and another."""
        sc = self.sc
        m = self._by_delay(state)[0]
        tau = self._tau(state, m)
        best = None
        tries = [(n, m2, None) for n in np.flatnonzero(server == m) for m2 in range(sc.M) if m2 != m]
        tries += [(n, server[k], k) for n in np.flatnonzero(server == m) for k in np.flatnonzero(server != m)]
        for n, m2, k in tries:
            if self.out_of_time():
                break
            s2, a2, b2 = server.copy(), alpha.copy(), beta.copy()
            s2[n] = m2
            if k is not None:
                s2[k] = m
            ok = True
            for u in (n,) if k is None else (n, k):
                cut = self._cut_on(u, s2[u], alpha, beta, np.bincount(s2, minlength=sc.M))
                if cut is None:
                    ok = False
                    break
                a2[u], b2[u] = cut
            if not ok:
                continue
            goal = tau * (1 - self.rel) if best is None else min(tau * (1 - self.rel), best[0])
            out = self.solve_server(m, s2, a2, b2, lam=self._lam_full(state, m), target=goal)
            if out[1] is not None and out[1].lower[m] >= goal:
                continue
            into = self.solve_server(m2, s2, a2, b2, lam=self._lam_full(state, m2), target=goal)
            worst = max(self._tau({m: out}, m), self._tau({m2: into}, m2))
            if worst < goal:
                best = (worst, s2, a2, b2, m2, out, into)
                if k is not None:   # swaps: the first improving one (they are many)
                    break
        if best is None:
            return False
        _, s2, a2, b2, m2, out, into = best
        server[:], alpha[:], beta[:] = s2, a2, b2
        state[m], state[m2] = out, into
        self.moves["association"] += 1
        return True

    def _cut_on(self, n, m, alpha, beta, counts):
        """User n's cut on edge m: its current one if allowed there, else its own best at equal shares."""
        cand = self.sc.cuts(n, m)
        if cand.size and np.any((cand[:, 0] == alpha[n]) & (cand[:, 1] == beta[n])):
            return alpha[n], beta[n]
        return self.own_best_cut(n, m, counts)

    def _assemble(self, state):
        sc = self.sc
        b, fe, fc, d = np.zeros(sc.N), np.zeros(sc.N), np.zeros(sc.N), np.zeros(sc.N)
        lower = 0.0
        for m, (idx, res) in state.items():
            if res is None:
                continue
            b[idx], fe[idx], fc[idx], d[idx] = res.b, res.fe, res.fc, res.delay
            lower = max(lower, float(res.lower[m]))
        return {"b_MHz": b, "fe_GHz": fe, "fc_GHz": fc, "delay_s": d, "resource_lower_bound_s": lower}
