"""The keep ratio ρ of SFT's compression block (sft-2025) in the min–max delay solver (docs/exact.md §9).

User n uploads S_n(ρ) = D_n(ρ·q + H₂(ρ)) + c₀ bit (blocks/compression.py), and the users share one
distortion budget Σ_n δ(ρ_n) ≤ N δ_max with δ(ρ) = (1 − ρ) + ε_q ρ (linear in ρ). S is concave, so the
fixed-split problem is not convex in ρ (docs/exact.md §8.5). What makes a certified search possible:

* the delay depends on ρ only through the upload s = S(ρ), and the pricing R_o(λ, μ, π; T, s) of
  timing.py is **convex in u = log s** (the set {W/fe + e^u/r(b) ≤ L} is convex in (fe, b, u): e^u/r(b) =
  exp(u − log r(b)) with log r concave) and increasing in s;
* on a **piece** [a, b] of ρ write ρ = a + t(b − a), t ∈ [0, 1]: δ is linear in t and log S(ρ) is concave in
  t (log of a concave positive function), so log S(ρ) ≥ the chord u(t) = (1 − t) log S(a) + t log S(b),
  equal at both ends, with an error O((b − a)²) inside.

Each option (server, split, piece) gets a binary x_o and a continuous y_o = t·x_o ∈ [0, t_max x_o]. The
distortion row Σ x_o δ(a_o) + y_o (δ(b_o) − δ(a_o)) ≤ N δ_max is exact, and a feasibility cut of
minmax.py at prices (λ, μ, π) becomes, with the tangent of the convex t ↦ R_o(u(t)) at any t_o,

    Σ_{o on m} [R_o(t_o) − R_o'(t_o) t_o] x_o + R_o'(t_o) y_o ≤ λ B_m + μ F_m + π slot,

R_o' = ν s/r(b) · (log S(b) − log S(a)) (envelope theorem; ν = −∂R/∂T from timing.py). Every real point
satisfies these rows with its own t (upload ≥ the chord's, R increasing, tangent ≤ R), so the level MILP
is a relaxation: **infeasible ⇒ the level is a lower bound**. A MILP solution (x, y) is checked at the
chord's uploads (a failing server gives a cut at its prices and the solution's t, which that solution
violates), then at the real ρ = a + t(b − a) (uploads S(ρ)): met ⇒ a real point meeting the level, whose
exact makespan is an incumbent; missed ⇒ the pieces with t inside (0, 1) are split at that ρ (spatial
branching) and the level is solved again. With no distortion budget ρ only sets the upload, and the
pieces are the points ρ_min, ρ_max (S concave: its least value is at an end).

A tangent removes an integer point only at its own t; an integer point that fails its chord check first
gets the **cut over the assignment alone** (``assignment_cut``, docs/exact.md §9): the servers' cuts plus
the budget row (multiplier 1), each option's bracket bounded by c_o = min_t R_o(chord(t)) + δ_o(t), give
Σ_o c_o x_o ≤ Σ_m (λ_m B_m + μ_m F_m) + N δ_max for every real point whatever its t.

Incumbents (several servers): a local search that carries each user's ρ and exchanges ρ between users
(``polish``: Σρ kept is Σδ kept), and a first level just above the bound no level needs (``probe_alone``),
where the optimum of sft-2025 50×10 and 20×4 seed 0 lies (docs/exact.md §9).
"""

from __future__ import annotations

import copy

import numpy as np

from mecsplit import quiet

from .minmax import LEVEL_SHARE, MinMax, zoom_max
from .minmax_local import candidates
from .subproblems import LN2, SAFETY, rate
from .timing import Timing

try:
    import highspy
except ImportError:  # pragma: no cover - declared dependency
    highspy = None

PRESOLVE_MAX_OPTIONS = 2000   # level MILPs over more options than this run without HiGHS' presolve (level_milp)


class Pieces:
    first_pieces = 8      # equal pieces of [ρ_min, ρ_eq] at the start
    """The ρ pieces (a global table of intervals [lo, hi]) and which pieces each user's partition of
    [ρ_min, ρ_max] holds (mask (N, J))."""

    def __init__(self, block, inst):
        p = block.p
        self.size_Mbit = lambda rho: block.size_Mbit(inst, rho)      # (J, 1) ρ → (J, N) Mbit: the block's own S
        self.N = inst.N
        self.delay = bool(inst.block("uplink")["delay"])
        self.rmin, self.rmax = float(p["rho_min"]), float(p["rho_max"])
        self.eps = block.eps_coef()
        self.budget = p["accuracy"] == "distortion_budget"
        self.dmax = float(p["distortion_max"])
        self.lo, self.hi, self.index = [], [], {}
        if self.budget:
            # equal pieces up to ρ_eq (S(ρ_eq) = S(ρ_max) below S's maximum), then [ρ_eq, ρ_max]
            top = self.rho_eq()
            brk = list(np.linspace(self.rmin, top, int(self.first_pieces) + 1)) + ([self.rmax] if top < self.rmax else [])
            for a, b in zip(brk[:-1], brk[1:]):
                self.add(a, b)
        else:
            for r in (self.rmin, self.rmax):
                self.add(r, r)
        self.mask = np.ones((self.N, len(self.lo)), bool)
        self.refresh()

    def rho_eq(self):
        """The ρ below S's maximum with S(ρ) = S(ρ_max), or ρ_max when S increases on the whole range."""
        q = np.linspace(self.rmin, self.rmax, 2001)
        S = self.size_Mbit(q[:, None])[:, 0]
        top = int(np.argmax(S))
        if top == q.size - 1 or S[0] >= S[-1]:
            return self.rmax
        a, b = q[0], q[top]     # S increasing on [a, b], S(a) < S(ρ_max) ≤ S(b): bisection
        for _ in range(100):
            c = 0.5 * (a + b)
            a, b = (c, b) if self.size_Mbit(np.array([[c]]))[0, 0] < S[-1] else (a, c)
        return float(a)

    def delta(self, rho):
        """δ(ρ) = (1 − ρ) + ε_q ρ (compression.py (A1))."""
        return (1.0 - rho) + self.eps * rho

    def add(self, a, b):
        key = (float(a), float(b))
        if key not in self.index:
            self.index[key] = len(self.lo)
            self.lo.append(key[0])
            self.hi.append(key[1])
        return self.index[key]

    def refresh(self):
        """Per piece the uploads at its ends (N, J) Mbit (0 when the upload is not in the delay)."""
        self.lo_a, self.hi_a = np.array(self.lo), np.array(self.hi)
        f = 1.0 if self.delay else 0.0
        self.S_lo = self.size_Mbit(self.lo_a[:, None]).T * f
        self.S_hi = self.size_Mbit(self.hi_a[:, None]).T * f
        self.s = np.minimum(self.S_lo, self.S_hi)                 # the least upload on the piece
        self.J = self.lo_a.size

    def split(self, n, j, at):
        """Replace user n's piece j by [lo, at] and [at, hi]."""
        new = [self.add(self.lo[j], at), self.add(at, self.hi[j])]
        if self.mask.shape[1] < len(self.lo):
            self.mask = np.hstack([self.mask, np.zeros((self.N, len(self.lo) - self.mask.shape[1]), bool)])
        self.mask[n, j] = False
        self.mask[n, new] = True

    def meet_budget(self, rho, order):
        """ρ raised, users in ``order`` towards ρ_max, until Σδ(ρ) ≤ N δ_max less a 1e-12 margin (HiGHS
        meets the budget row to 1e-9; an incumbent's ρ needs no piece)."""
        rho = np.array(rho, float)
        if not self.budget or self.eps >= 1.0:
            return rho
        need = (np.sum(self.delta(rho)) - self.N * self.dmax * (1 - 1e-12)) / (1.0 - self.eps)
        for n in order:
            if need <= 0:
                break
            step = min(self.rmax - rho[n], need)
            rho[n] += step
            need -= step
        return rho


def extreme_splits(D):
    """A copy of the data whose options keep only each user's smallest and largest possible split.

    Why nothing is lost (min–max delay, two tiers): split α leaves the compute time
    a_α + W_α/fe = α tU/f_max + (Υ − α) tE/fe, so with upload time u the least edge share meeting a level T
    is fe(α) = (Υ − α) tE / (T − u − α tU/f_max), and d fe/dα has the sign of (Υ tU/f_max − (T − u)) for every
    α: monotone in α. So at every (T, u) one of the two extreme splits needs no more fe than α does, with
    the same b and ρ: any point using α is matched by one using an extreme split, its delay no larger.
    (Checked against enumeration over every split in tests/test_exact_compression.py.)"""
    D = copy.copy(D)
    fin = np.isfinite(D.user_part)
    keep = np.zeros_like(fin)
    rows = np.arange(D.N)
    keep[rows, D.k_lo] = True
    keep[rows, D.k_hi] = True
    D.possible = D.possible & (keep & fin)[:, None, :]
    return D


def expand(base, pieces):
    """A copy of the data whose options are (server, split, piece): option index kv = k·J + j."""
    D = copy.copy(base)
    J, K0 = pieces.J, base.K
    D.pieces, D.J = pieces, J
    D.k_of, D.j_of = np.repeat(np.arange(K0), J), np.tile(np.arange(J), K0)
    for name in ("alphas", "betas", "w", "wc"):
        setattr(D, name, np.repeat(getattr(base, name), J))
    D.K = K0 * J
    D.user_part = np.where(pieces.mask[:, D.j_of], np.repeat(base.user_part, J, axis=1), np.inf)
    D.possible = np.repeat(base.possible, J, axis=2) & pieces.mask[:, None, D.j_of]
    return D


class CTiming(Timing):
    """timing.Timing with per-option uploads: ``opt_s`` (flat, one per option priced) when set, the real
    uploads ``s`` (N,) while ``fixed``, else the least upload of the option's piece."""

    def __init__(self, D):
        super().__init__(D)
        self.fixed, self.opt_s = False, None

    def parts(self, n, m, k):
        P = super().parts(n, m, k)
        if self.opt_s is not None:
            P["s"] = self.opt_s
        elif not self.fixed:
            P["s"] = self.D.pieces.s[n, self.D.j_of[k]]
        return P


class CompressionMinMax(MinMax):
    """minmax.MinMax over options (server, split, ρ piece) with the chord relaxation of the module
    docstring: its own level MILP (x, y), real points from t, pieces split where the chord is not met."""

    # the cut over x alone at an integer point that fails its chord check (with presolve; docs §9)
    assignment_cuts = True
    # the first level's place above the alone bound (relative; probe_alone)
    probe = 1e-5

    def __init__(self, D, tracer, rel_gap, abs_gap, time_limit_s, log=None, max_splits=5000):
        self.base, self.pc = extreme_splits(D), D.pieces
        D = self.base
        super().__init__(expand(D, D.pieces), tracer, rel_gap, abs_gap, time_limit_s, log)
        self.max_splits = max_splits
        self.rebuild()
        self.stats.update(splits=0, pieces=self.pc.J, refined_levels=0, chord_cuts=0, assignment_cuts=0)

    def rebuild(self):
        self.pc.refresh()
        self.D = expand(self.base, self.pc)
        self.tm = CTiming(self.D)
        self.tm.deadline = self.deadline
        N, M = self.D.N, self.D.M
        md = self.tm.min_delay(np.arange(N)[:, None, None], np.arange(M)[None, :, None], np.arange(self.D.K)[None, None, :])
        self.min_delay = np.where(self.D.possible, md, np.inf)

    # -- real points ------------------------------------------------------------------------------------
    def upload(self, rho):
        return self.pc.size_Mbit(np.asarray(rho, float)[None, :])[0] * (1.0 if self.pc.delay else 0.0)

    def offer(self, server, kv, rho=None):
        """Exact makespan of an assignment with real keep ratios ``rho`` (default: each piece's end with
        the smaller upload, raised to the budget)."""
        kv = np.asarray(kv, int)
        if rho is None:
            j = self.D.j_of[kv]
            rho = np.where(self.pc.S_hi[np.arange(self.D.N), j] <= self.pc.S_lo[np.arange(self.D.N), j],
                           self.pc.hi_a[j], self.pc.lo_a[j])
        order = np.argsort(np.min(self.min_delay, axis=(1, 2)))     # least loaded users raised first
        rho = self.pc.meet_budget(np.clip(rho, self.pc.rmin, self.pc.rmax), order)
        self._rho, self._alpha = rho, self.D.alphas[kv]
        tm = self.tm
        tm.s, tm.fixed = self.upload(rho), True
        try:
            return super().offer(server, kv)
        finally:
            tm.fixed = False

    def solution(self):
        r = self.inc
        r.setdefault("rho", self._rho.copy())
        r.setdefault("alpha", self._alpha.copy())
        D = self.D
        return {"server": r["server"].tolist(), "alpha": r["alpha"].tolist(), "f_GHz": D.f_max.tolist(),
                "fe_GHz": r["fe"].tolist(), "p_W": D.p_hi.tolist(), "b_MHz": r["b"].tolist(), "rho": r["rho"].tolist()}

    def polish(self):
        """minmax_local.py's local search with each user's keep ratio carried (``local_moves``: its moves off
        the bottleneck server at the users' own uploads S_n(ρ_n), plus ``rho_exchanges``). Not on one server:
        there only split changes remain, and on sft-2025 20×1 they cost more in the levels' path than they
        gained (seeds 0, 1: 61 / 85 s of CPU against 24 / 26; docs/exact.md §9)."""
        if self.D.M < 2:
            return
        try:
            super().polish()
        finally:
            self.tm.fixed = False

    def local_moves(self):
        """minmax_local.candidates at the incumbent's uploads, each move keeping the users' ρ, plus the ρ
        exchanges; best first: (levels, [(score, server, k, touched servers, ρ)]). Screened as
        minmax_local.py does (E_m > 0 proves a move cannot meet the target); only the incumbent depends on
        this, every accepted point is verified as every incumbent."""
        if self.ub - self.alone <= self.tol():     # at the bound no level needs: nothing to gain
            return None
        rho = np.asarray(self.inc["rho"], float)
        s = self.upload(rho)
        self.tm.s, self.tm.fixed = s, True
        found = candidates(self)
        if found is None:
            return None
        T, ms, cands = found
        levels = np.minimum(T, self.D.deadline_s)
        cands = [c + (rho,) for c in cands] + self.rho_exchanges(T, ms, levels, s)
        cands.sort(key=lambda c: c[0])
        return levels, cands

    def try_move(self, cand, levels):
        _, server, k, touched, rho = cand
        self.tm.s, self.tm.fixed = self.upload(rho), True
        ex = self.tm.check(server, k, levels, only=touched, proof_only=True)[0]
        return self.offer(server, k, rho) if np.all(ex[touched] <= 1e-12 * self.D.F[touched]) else np.inf

    def rho_exchanges(self, T, ms, levels, s, screen=True, grid=16):
        """The ρ-exchange moves of ``polish`` at target T off bottleneck server ms (uploads ``s`` fixed on
        ``self.tm``): a user n on ms and a user n' elsewhere take ρ_n − Δ and ρ_n' + Δ (Σρ kept, so Σδ too:
        δ(ρ) = 1 − (1 − ε_q)ρ for every user), among them the swap (ρ_n', ρ_n); Δ on a grid of the range that
        keeps both in [ρ_min, ρ_max], only where n's upload falls. Per pair the Δ with the best score,
        score = the largest E / F of the two touched servers after the move (> 0: proven unable to meet T,
        dropped unless ``screen`` is False). Returns [(score, server, kv, touched servers, ρ)]."""
        D, tm, inc, pc = self.D, self.tm, self.inc, self.pc
        server, kv, rho = inc["server"], inc["k"], np.asarray(inc["rho"], float)
        lam, pi = inc["lam"], inc["pi"]
        rows = np.arange(D.N)
        slot = D.slot if D.three else 0.0
        Rcur = tm.price(rows, server, kv, levels, lam[server], 1.0, pi[server])[0]
        if not np.all(np.isfinite(Rcur[server != ms])):
            return []
        miss = ~np.isfinite(Rcur)       # options on ms that cannot meet T at all: only n's own may be among them
        Rfin = np.where(miss, 0.0, Rcur)
        E = np.bincount(server, weights=Rfin, minlength=D.M) - lam * D.B - pi * slot - D.F
        hot, cold = np.nonzero(server == ms)[0], np.nonzero(server != ms)[0]
        n1, n2 = np.repeat(hot, cold.size), np.tile(cold, hot.size)
        tot = rho[n1] + rho[n2]
        lo, hi = np.maximum(pc.rmin, tot - pc.rmax), np.minimum(pc.rmax, tot - pc.rmin)
        r1 = np.concatenate([lo[:, None] + np.linspace(0.0, 1.0, grid + 1)[None, :] * (hi - lo)[:, None],
                             rho[n2][:, None]], axis=1)                     # (pairs, G): n's new ρ; the last: the swap
        r1 = np.clip(r1, pc.rmin, pc.rmax)
        r2 = np.clip(tot[:, None] - r1, pc.rmin, pc.rmax)
        P, G = r1.shape
        f = 1.0 if pc.delay else 0.0
        N1, N2 = np.repeat(n1, G), np.repeat(n2, G)
        s1 = pc.size_Mbit(r1.reshape(-1, 1))[np.arange(P * G), N1] * f
        s2 = pc.size_Mbit(r2.reshape(-1, 1))[np.arange(P * G), N2] * f
        keep = (s1 < s[N1] * (1 - 1e-9)) & (np.abs(r1.ravel() + r2.ravel() - np.repeat(tot, G)) <= 1e-12)
        if not keep.any():
            return []
        idx = np.nonzero(keep)[0]
        nn = np.concatenate([N1[idx], N2[idx]])
        tm.opt_s = np.concatenate([s1[idx], s2[idx]])
        try:
            R = tm.price(nn, server[nn], kv[nn], levels[nn], lam[server[nn]], 1.0, pi[server[nn]])[0]
        finally:
            tm.opt_s = None
        R1, R2 = R[:idx.size], R[idx.size:]
        alone_miss = (np.count_nonzero(miss) == 0) | ((np.count_nonzero(miss) == 1) & miss[N1[idx]])
        base = np.where(alone_miss, E[ms] - Rfin[N1[idx]] + R1, np.inf)
        m2 = server[N2[idx]]
        score = np.full(P * G, np.inf)
        score[idx] = np.maximum(base / D.F[ms], (E[m2] - Rcur[N2[idx]] + R2) / D.F[m2])
        best = np.argmin(score.reshape(P, G), axis=1)
        out = []
        for i in range(P):
            sc = float(score[i * G + best[i]])
            if sc <= 0 or (not screen and np.isfinite(sc)):
                rr = rho.copy()
                rr[n1[i]], rr[n2[i]] = r1[i, best[i]], r2[i, best[i]]
                out.append((sc, server, kv, np.unique([ms, server[n2[i]]]), rr))
        return out

    def start(self, warm=None):
        if warm is not None and "rho" in warm:
            k0 = np.searchsorted(self.base.alphas, np.clip(np.rint(warm["alpha"]), self.base.alphas[0], self.base.alphas[-1]))
            self.offer(np.asarray(warm["server"], int), np.minimum(k0, self.base.k_hi) * self.pc.J, warm["rho"])
        super().start(None)
        self.probe_alone()

    def probe_alone(self):
        """The first level: just above the bound that no level needs (the largest least delay of a user alone
        on a server), within a share of the time left (left open when it runs out). On several servers the
        optimum can sit there — the bottleneck user alone, the others fitting below (sft-2025 50×10 seeds 0–2:
        the optimum is that bound) — and a level close to it is found feasible in a few MILP rounds (20×4
        seed 0: a point within 4.4e-5 of it in 2.4 s), where the bisection from the middle of the bracket
        reached it only after many levels. Infeasible there: the bound moves up (the level MILP is a
        relaxation). Not on one server, where the optimum lies far above (20×1: 1.24 against 0.55)."""
        T = self.alone * (1 + self.probe)
        if self.inc is None or self.D.M < 2 or self.ub - T <= self.tol():
            return
        self.level_end = self.clock() + LEVEL_SHARE * max(self.deadline - self.clock(), 0.0)
        try:
            st, _ = self.level_feasible(T)
        finally:
            self.level_end = np.inf
        self.stats["levels"].append((T, st))
        if st == "infeasible":
            self.lb = T

    # -- the level problem ----------------------------------------------------------------------------------
    def level_feasible(self, T):
        self.ub0 = self.ub      # the incumbent when the level started (level_milp's acceptance rule)
        refined = False
        while True:
            st, val, sol = self.level_milp(T)
            if st != "split":
                self.stats["refined_levels"] += int(refined)
                if st == "feasible":
                    self.polish()
                return st, val
            if self.clock() > self.deadline or not self.refine(*sol):
                return "limit", None
            refined = True

    def options_at(self, T):
        """The level's option table (flat arrays over the options able to meet T): on, om, ok, levels
        ``lev``, the piece's end uploads Sa, Sb (Mbit), dlog = log(Sb/Sa), t_max (the largest t whose chord
        upload still meets the level with the whole server), δ at the piece's ends da, db, and ``by_m``.
        None when some user has no such option (then T is infeasible)."""
        D, tm, pc = self.D, self.tm, self.pc
        levels = np.minimum(T, D.deadline_s)
        poss = D.possible & (self.min_delay <= levels[:, None, None])
        if not poss.any(axis=(1, 2)).all():
            return None
        on, om, ok = np.nonzero(poss)
        j = D.j_of[ok]
        Sa, Sb = pc.S_lo[on, j], pc.S_hi[on, j]
        with np.errstate(divide="ignore", invalid="ignore"):
            dlog = np.where((Sa > 0) & (Sb > 0), np.log(Sb / Sa), 0.0)
        tm.opt_s = np.zeros(on.size)
        d0 = tm.min_delay(on, om, ok)
        tm.opt_s = None
        P0 = tm.parts(on, om, ok)
        s_max = (levels[on] - d0) * rate(1.0, P0["B"], P0["c"])
        with np.errstate(divide="ignore", invalid="ignore"):
            tmax = np.where(dlog > 0, np.log(np.maximum(s_max, 1e-300) / Sa) / np.where(dlog > 0, dlog, 1.0), 1.0)
        tmax = np.where(pc.hi_a[j] > pc.lo_a[j], np.clip(tmax, 0.0, 1.0), 0.0)
        return {"on": on, "om": om, "ok": ok, "lev": levels[on], "levels": levels, "Sa": Sa, "Sb": Sb, "dlog": dlog,
                "tmax": tmax, "da": pc.delta(pc.lo_a[j]), "db": pc.delta(pc.hi_a[j]),
                "by_m": [np.nonzero(om == m)[0] for m in range(D.M)]}

    def level_milp(self, T):
        """One MILP (x, y) at level T with separation. Returns ("infeasible" | "feasible" | "limit", value,
        None) or ("split", None, (kv, t, ρ)) when the chord's point passes and the real one does not."""
        D, tm, pc = self.D, self.tm, self.pc
        N, M = D.N, D.M
        O = self.options_at(T)
        if O is None:
            return "infeasible", None, None
        on, om, ok, levels, Sa, Sb, dlog, tmax, by_m = (O[k] for k in ("on", "om", "ok", "levels", "Sa", "Sb", "dlog",
                                                                       "tmax", "by_m"))
        nx = on.size

        def chord(t, sel):
            return Sa[sel] ** (1 - t) * Sb[sel] ** t

        # presolve only on small level MILPs: on sft-2025 50×10 (4,140 options) HiGHS 1.16's presolve
        # (probing and what follows it) ignores time_limit — a level MILP with 26 s left ran 65 s in
        # presolve, where feasibility jump without it answers in 1 s; on small ones it pays (docs §8.7)
        presolve = "on" if nx <= PRESOLVE_MAX_OPTIONS else "off"
        h = quiet.highs({"mip_feasibility_tolerance": 1e-9, "primal_feasibility_tolerance": 1e-9, "presolve": presolve})
        h.addVars(nx, np.zeros(nx), np.ones(nx))
        h.addVars(nx, np.zeros(nx), tmax)                        # y_o = t_o x_o
        X, Y = np.arange(nx, dtype=np.int32), np.arange(nx, 2 * nx, dtype=np.int32)
        for i in range(nx):                                       # y_o ≤ t_max x_o
            h.addRow(-highspy.kHighsInf, 0.0, 2, np.array([Y[i], X[i]], np.int32), np.array([1.0, -tmax[i]]))
        for n in range(N):
            idx = X[on == n]
            h.addRow(1.0, 1.0, idx.size, idx, np.ones(idx.size))
        for m in range(M):
            lo = 1.0 if D.eq_f else 0.0
            if by_m[m].size and (lo > 0 or D.user_cap[m] < N):
                h.addRow(lo, float(D.user_cap[m]), by_m[m].size, X[by_m[m]], np.ones(by_m[m].size))
        if pc.budget:        # Σ x δ(a) + y (δ(b) − δ(a)) ≤ N δ_max (loosened by 1e-12 for rounding)
            da, db = O["da"], O["db"]
            h.addRow(-highspy.kHighsInf, N * pc.dmax * (1 + 1e-12), 2 * nx, np.concatenate([X, Y]),
                     np.concatenate([da, db - da]))
        slot = D.slot if D.three else 0.0
        keys = set()

        def add_cut(m, lam, mu, pi, t):
            """The cut of the module docstring on server m at prices (λ, μ, π), tangents at t (per option)."""
            sel = by_m[m]
            key = (m, float(lam), float(mu), float(pi), t[sel].round(12).tobytes())
            if key in keys or sel.size == 0:
                return 0
            keys.add(key)
            ts = np.minimum(t[sel], tmax[sel] * (1 - 1e-6))   # tangents inside the domain (exact slopes)
            st = chord(ts, sel)
            tm.opt_s = st
            try:
                P = tm.prepare(on[sel], om[sel], ok[sel], levels[on[sel]])
                v, fe, bb, fc, nu = tm.price(None, None, None, None, lam, mu, pi, prep=P)
            finally:
                tm.opt_s = None
            g = self.slope(st, bb, P["c"], nu, lam, P["B"]) * dlog[sel]
            if not np.all(np.isfinite(v)) or not np.all(np.isfinite(g)):
                return 0
            rhs = lam * D.B[m] + mu * D.F[m] + pi * slot
            cx = v - g * ts
            cx, cy = (cx - SAFETY * np.abs(v)) / rhs, g / rhs     # lowered: rounding may only weaken the row
            h.addRow(-highspy.kHighsInf, 1.0 + SAFETY, 2 * sel.size, np.concatenate([X[sel], Y[sel]]),
                     np.concatenate([cx, cy]))
            self.stats["cuts"] += 1
            return 1

        zero, one = np.zeros(nx), tmax.copy()
        for m in range(M):
            dirs = [(0.0, 1.0, 0.0), (1.0, 0.0, 0.0)] + ([(0.0, 0.0, 1.0)] if D.three else [])
            # and around the median of the seen prices: without these 7 + 7 (the LP rounds alone) HiGHS overran
            # its time limit by minutes on sft-2025 50×10 (docs §8.7)
            pts = sorted(self.prices[m])
            if pts:
                lc, pc_ = (float(np.median([p_[i] for p_ in pts])) for i in (0, 1))
                pts = (set(pts) | {(lc * f, pc_) for f in np.geomspace(0.25, 4.0, 7)}
                       | {(lc, pc_ * f) for f in np.geomspace(0.25, 4.0, 7)})
            dirs += [(lam, 1.0, pi) for lam, pi in pts]
            for lam, mu, pi in dirs:
                for t in (zero, 0.5 * one, one):
                    add_cut(m, lam, mu, pi, t)

        def separate(col):
            """minmax.best_prices at the LP point with the uploads of its chords: the cut with tangents at the
            point's own t (t = y/x) is violated by exactly the dual value it reports."""
            x = col[:nx]
            tt = np.where(x > 1e-7, np.clip(col[nx:] / np.maximum(x, 1e-300), 0.0, tmax), 0.5 * tmax)
            new = 0
            for m in range(M):
                sel = by_m[m][x[by_m[m]] > 1e-7]
                if sel.size == 0:
                    continue
                tm.opt_s = chord(np.minimum(tt[sel], tmax[sel] * (1 - 1e-6)), sel)
                try:
                    P = tm.prepare(on[sel], om[sel], ok[sel], levels[on[sel]])
                finally:
                    tm.opt_s = None
                lam, pi, viol = self.best_prices(m, P, x[sel])
                if viol > 1e-6 * D.F[m]:
                    new += add_cut(m, lam, 1.0, pi, tt)
            return new

        if self.lp_rounds(h, nx, separate):
            return "infeasible", None, None
        for _ in range(self.max_rounds):
            st = self.run_highs(h, "milp_solves")
            if st != "optimal":
                return st, None, None
            col = np.asarray(h.getSolution().col_value)
            x = col[:nx] > 0.5
            server, kv, t = np.zeros(N, int), np.zeros(N, int), np.zeros(N)
            server[on[x]], kv[on[x]] = om[x], ok[x]
            t_opt = np.clip(np.where(x, col[nx:], 0.0), 0.0, tmax)
            t[on[x]] = t_opt[x]
            self.stats["checks"] += 1
            jj = D.j_of[kv]
            rows = np.arange(N)
            s_chord = pc.S_lo[rows, jj] ** (1 - t) * pc.S_hi[rows, jj] ** t
            tm.s, tm.fixed = s_chord, True
            try:
                ex, lam, pi = tm.check(server, kv, levels)[:3]
            finally:
                tm.fixed = False
            bad = np.nonzero(ex > 1e-12 * D.F)[0]
            if bad.size and self.assignment_cuts and pc.budget:
                # the assignment with all its t at once (module docstring): one row instead of Kelley rounds in t
                row = self.assignment_cut(O, np.nonzero(x)[0], lam)
                if row is not None:
                    h.addRow(-highspy.kHighsInf, 1.0 + SAFETY, row[0].size, X[row[0]], row[1])
                    self.stats["assignment_cuts"] += 1
                    continue
            if bad.size:
                new = 0
                tt = np.where(x, t_opt, 0.5 * tmax)      # tangents at the solution's t (others: the middle)
                for m in bad:
                    if np.isfinite(ex[m]):
                        self.prices[m].add((float(lam[m]), float(pi[m])))
                        new += add_cut(int(m), float(lam[m]), 1.0, float(pi[m]), tt)
                self.stats["chord_cuts"] += new
                if new:
                    continue
                # the separating cut is already there (the point meets it within HiGHS's 1e-9 and the cut's
                # SAFETY, not the check's 1e-12): the real point below decides, as for a chord point that passes
            rho = pc.meet_budget(pc.lo_a[jj] + t * (pc.hi_a[jj] - pc.lo_a[jj]), np.argsort(np.min(self.min_delay, axis=(1, 2))))
            # the real point's exact makespan. Refinement brings it to T only in the limit (the MILP has no
            # objective and returns points on the relaxation's boundary, so each split moves the real point
            # a share closer), and rounding (the budget row met to 1e-9, repaired by meet_budget) can leave
            # that limit a hair above T. So a real point counts as this level's answer once it lies within
            # half of the way from the incumbent at the level's start down to T: a new incumbent that shrinks
            # the bracket. Only "infeasible" moves the bound, so this rule cannot affect the certificate.
            val = self.offer(server, kv, rho)
            if val <= T * (1 + 1e-12) or val <= T + 0.5 * (self.ub0 - T):
                return "feasible", val, None
            return "split", None, (kv, t, rho)
        return "limit", None, None

    # -- the cut over the assignment alone ----------------------------------------------------------------
    def least_cost(self, O, sel, lam, mu, iters=24):
        """Per entry i (option sel[i] of the level's table O, prices λ_i, μ_i) a lower bound on
        c = min_{t ∈ [0, t_max]} h(t),  h(t) = R_o(λ, μ; T, chord(t)) + δ_o(t)  (two tiers: π = 0).

        h is convex (R convex in u = log s, u and δ linear in t). Rising chord (log S(b) > log S(a)):
        bisection on the sign of h' = R' + δ(b) − δ(a) (R' from ``slope``, a subgradient), and the bound is
        where the tangents at the bracket's ends cross (each tangent lies below h on the whole domain); at
        an end (h'(0) ≥ 0, or h' ≤ 0 near t_max) the tangent there. Flat or falling chord (R does not rise
        in t): min R + min δ = R(least upload) + min(δ(0), δ(t_max)), below h everywhere. Returns (c, t)
        with t where h was lowest (evaluated)."""
        tm = self.tm
        on, om, ok, lev, Sa, Sb, dl, tmx, da, db = (O[k][sel] for k in
                                                    ("on", "om", "ok", "lev", "Sa", "Sb", "dlog", "tmax", "da", "db"))
        dd = db - da
        lam, mu = np.broadcast_to(np.asarray(lam, float), sel.shape), np.broadcast_to(np.asarray(mu, float), sel.shape)

        def hg(t, i):
            s = np.where(dl[i] > 0, Sa[i] ** (1 - t) * Sb[i] ** t, np.minimum(Sa[i], Sb[i]))
            tm.opt_s = s
            try:
                P = tm.prepare(on[i], om[i], ok[i], lev[i])
                v, _, b, _, nu = tm.price(None, None, None, None, lam[i], mu[i], 0.0, prep=P)
            finally:
                tm.opt_s = None
            g = np.where(dl[i] > 0, self.slope(s, b, P["c"], nu, lam[i], P["B"]) * dl[i], 0.0)
            return v + da[i] + t * dd[i], g + dd[i]

        allx = np.arange(sel.size)
        t1 = tmx * (1 - 1e-6)      # tangents inside R's domain (exact slopes), extended to t_max
        h0, g0 = hg(np.zeros(sel.size), allx)
        h1, g1 = hg(t1, allx)
        c = np.where(g0 >= 0, h0, h1 + np.minimum(g1, 0.0) * (tmx - t1))
        t_at = np.where(g0 >= 0, 0.0, t1)
        lo_t, lo_h, lo_g = np.zeros(sel.size), h0.copy(), g0.copy()
        hi_t, hi_h, hi_g = t1.copy(), h1.copy(), g1.copy()
        act = np.nonzero((dl > 0) & (g0 < 0) & (g1 > 0))[0]
        for _ in range(iters):
            if act.size == 0:
                break
            mid = 0.5 * (lo_t[act] + hi_t[act])
            hm, gm = hg(mid, act)
            up = gm > 0
            hi_t[act], hi_h[act], hi_g[act] = (np.where(up, mid, hi_t[act]), np.where(up, hm, hi_h[act]),
                                               np.where(up, gm, hi_g[act]))
            lo_t[act], lo_h[act], lo_g[act] = (np.where(up, lo_t[act], mid), np.where(up, lo_h[act], hm),
                                               np.where(up, lo_g[act], gm))
            act = act[gm != 0]
        mid = (dl > 0) & (g0 < 0) & (g1 > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            tx = (hi_h - hi_g * hi_t - lo_h + lo_g * lo_t) / (lo_g - hi_g)        # where the two tangents cross
            cross = np.minimum(lo_h + lo_g * (np.clip(tx, lo_t, hi_t) - lo_t), np.minimum(lo_h, hi_h))
        c = np.where(mid, cross, c)
        t_at = np.where(mid, np.where(lo_h <= hi_h, lo_t, hi_t), t_at)
        # flat / falling chords, and any entry whose tangents were not finite: the separate minima
        sep = ~(dl > 0) | ~np.isfinite(c)
        if sep.any():
            i = np.nonzero(sep)[0]
            r0, _ = hg(np.zeros(i.size), i)            # at the least upload for dl ≤ 0; at t = 0 (= least) for dl > 0
            c[i] = r0 - da[i] + np.minimum(da[i], da[i] + tmx[i] * dd[i])
            t_at[i] = np.where(dd[i] < 0, tmx[i], 0.0)
        return c, t_at

    def server_dual(self, O, sel, lam_c, mu_c):
        """Prices (λ, μ) of one server with a large q(λ, μ) = Σ_{o ∈ sel} c_o(λ, μ) − λB_m − μF_m (c from
        ``least_cost``): q is the Lagrangian dual of min Σ δ_o(t_o) s.t. the server's budgets at the chord
        uploads (concave in (λ, μ): each c_o is a minimum of functions linear in them); (0, 0) gives
        Σ min δ. Log grid 7 × 7 over e^±6 around (λ_c, μ_c), zoomed in four times, each c by 10 halvings
        of t's bracket (still a lower bound: ``least_cost``); any prices give a valid row, so the search
        need not be exact. Returns (λ, μ, q)."""
        D = self.D
        m = int(O["om"][sel[0]])
        c0, _ = self.least_cost(O, sel, 0.0, 0.0)
        n = sel.size

        def q(L, Mu):      # ℓ = λ/μ: the server's bandwidth price in GHz/MHz
            c, _ = self.least_cost(O, np.tile(sel, L.size), np.repeat(L * Mu, n), np.repeat(Mu, n), iters=10)
            return c.reshape(L.size, n).sum(axis=1) - Mu * (L * D.B[m] + D.F[m])

        (ell, mu), val = zoom_max(q, (lam_c / mu_c, mu_c), points=7, shrink=3.0, floor=float(np.sum(c0)))
        return (0.0, 0.0, val) if ell is None else (ell * mu, mu, val)

    def assignment_cut(self, O, xs, lam):
        """The cut over x alone at the integer point whose options are ``xs`` (a row (indices, coefficients)
        scaled to a right-hand side of 1, or None when no prices found make it violated).

        Validity: a real point (x, ρ) meeting the level has, with t its place on its pieces, per server m
        and any prices (λ_m, μ_m) ≥ 0: Σ_{o on m} x_o R_o(λ_m, μ_m; chord(t_o)) ≤ λ_m B_m + μ_m F_m (the
        feasibility cut of minmax.py at the chord's upload, which is at most the real one), and
        Σ_o x_o δ_o(t_o) ≤ N δ_max (exact on the pieces). Their sum with the budget's multiplier
        normalised to 1 (each server's prices then carry its own scale) is
        Σ_o x_o [R_o(t_o) + δ_o(t_o)] ≤ Σ_m (λ_m B_m + μ_m F_m) + N δ_max, and each bracket is at least
        c_o = min_t R_o(chord(t)) + δ_o(t):  Σ_o c_o x_o ≤ Σ_m (λ_m B_m + μ_m F_m) + N δ_max  holds for every
        real point whatever its t. With the prices maximising each server's dual at the point (servers
        without its users at prices 0: their options then cost min δ), the point violates the row by
        Σ_m q_m − N δ_max > 0 exactly when no t's let it meet the budget at the chord uploads (convex, so
        strong duality) — one row removes it for all t, where the tangent cuts need one round per t."""
        D, pc = self.D, self.pc
        nx = O["on"].size
        coef = np.zeros(nx)
        rhs, total = pc.N * pc.dmax, 0.0
        used = np.unique(O["om"][xs])
        prices = {}
        for m in used:
            sel = xs[O["om"][xs] == m]
            lam_c = lam[m] if lam[m] > 0 else D.F[m] / D.B[m]
            # μ's scale: δ's total fall over the pieces against the server's capacity
            mu_c = max(float(np.sum(O["da"][sel] - O["db"][sel])), 1e-6) / D.F[m]
            lm, mu, q = self.server_dual(O, sel, lam_c, mu_c)
            prices[m] = (lm, mu)
            total += q
        if total <= rhs * (1 + 1e-9):
            return None
        for m in range(D.M):
            lm, mu = prices.get(m, (0.0, 0.0))
            sel = O["by_m"][m]
            if sel.size:
                coef[sel] = self.least_cost(O, sel, lm, mu)[0]
            rhs += lm * D.B[m] + mu * D.F[m]
        if not np.all(np.isfinite(coef)) or coef[xs].sum() <= rhs * (1 + 1e-9):
            return None
        coef = (coef - SAFETY * np.abs(coef)) / rhs       # lowered: rounding may only weaken the row
        return np.arange(nx, dtype=np.int32), coef

    @staticmethod
    def slope(s, b, c, nu_c, lam, B):
        """dR_o/du (u = log s) at the priced point: ν s/r(b), ν the delay constraint's multiplier, taken as
        max(ν_b, ν_c) with ν_b = λ/A(b) (A = s r'/r², the bandwidth's stationarity) and ν_c the compute
        shares' (timing.price). Where b is free both agree; where b sits at the least bandwidth meeting
        the level (shares at their largest) R = λ b_least(s) + const and ν_b ≥ ν_c is the derivative; where
        b = B with the shares inside, ν_c ≥ ν_b is; at the end of R's domain (b = B, shares at their
        largest) the left derivative is the larger of the two savings, and any slope ≥ it is a subgradient
        there. A subgradient in every case (checked on random points in tests/test_exact_compression.py)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            z = c / b
            r = b * np.log1p(z) / LN2
            r1 = (np.log1p(z) - z / (1 + z)) / LN2
            nu_b = np.where(lam > 0, lam * r * r / (s * r1), 0.0)
            return np.where(s > 0, np.maximum(nu_b, nu_c) * s / r, 0.0)

    def refine(self, kv, t, rho):
        """Split the pieces of the last solution with t inside (0, 1) at the ρ it took. False when none can
        be split (widths at rounding level)."""
        pc, D = self.pc, self.D
        j = D.j_of[kv]
        done = 0
        for n in range(D.N):
            a, b = pc.lo[j[n]], pc.hi[j[n]]
            if not (1e-9 < t[n] < 1 - 1e-9) or b - a <= 1e-12 * b or self.stats["splits"] >= self.max_splits:
                continue
            pc.split(n, int(j[n]), float(rho[n]))
            done += 1
            self.stats["splits"] += 1
        if done:
            self.rebuild()
            self.stats["pieces"] = pc.J
        return done > 0
