"""Local search for min–max incumbents (docs/exact.md §8.8): moves off the bottleneck server, screened by
weak duality and accepted only after timing.py's exact check.

The incumbent's servers have makespans T_m and prices (λ_m, π_m) (``MinMax.offer`` keeps both). At the
target level T' just below the largest makespan, and at any prices, server m's dual value
E_m = Σ_{o on m} R_o(λ_m, 1, π_m; T') − λ_m B_m − π_m slot − F_m is a **lower bound** on the excess
G − F_m of its user set (§8.4): E_m > 0 proves the set cannot meet T'. A move changes the sums of one or two servers by
option values R alone, so every candidate is screened at once:

* split change of a user n on the bottleneck m*:         E_m* − R_n + R*(n, m*)
* move of n from m* to m':                               E_m* − R_n,  E_m' + R*(n, m')
* swap of n on m* with n' on m':                         E_m* − R_n + R*(n', m*),  E_m' − R_n' + R*(n, m')

with R*(n, m) = min_k R(n, m, k) the user's best split on m at m's prices. Candidates whose touched servers
all keep E ≤ 0 are checked exactly at T' (``Timing.check``) in the order of their largest E / F; the first
that passes is offered (its exact makespan, ``MinMax.offer``) and the search repeats from it. It stops when
no candidate passes, when two servers share the largest makespan (no single move helps), or at its budget.
Only the incumbent's quality depends on this: a point is accepted after exact makespans, as every incumbent.
"""

from __future__ import annotations

import time

import numpy as np

#: target level below the largest makespan (relative): a move must lower the min–max value at least this much
STEP = 1e-7


def candidates(mm, screen=True):
    """The moves off the incumbent's bottleneck server that the screen keeps, best first: (target level T,
    bottleneck m*, [(score, new server array, new k array, touched servers)]); score = the largest E / F of
    the touched servers after the move (> 0: proven unable to meet T, dropped unless ``screen`` is False).
    None when the incumbent has no single bottleneck (two servers at its value: no single move lowers it)."""
    D, tm, inc = mm.D, mm.tm, mm.inc
    N, M = D.N, D.M
    rows = np.arange(N)
    slot = D.slot if D.three else 0.0
    server, k, Tm, obj = inc["server"], inc["k"], np.asarray(inc["levels"], float), inc["obj"]
    T = obj * (1 - STEP)
    hot = np.nonzero(Tm > T)[0]
    if hot.size != 1:
        return None
    ms = int(hot[0])
    levels = np.minimum(T, D.deadline_s)
    cnt = np.bincount(server, minlength=M)
    # every option able to meet T, priced at its server's incumbent prices
    poss = D.possible & (mm.min_delay <= levels[:, None, None])
    on, om, ok = np.nonzero(poss)
    R = np.full((N, M, D.K), np.inf)
    R[on, om, ok] = tm.price(on, om, ok, levels[on], inc["lam"][om], 1.0, inc["pi"][om])[0]
    best_k = np.argmin(R, axis=2)
    Rstar = np.take_along_axis(R, best_k[:, :, None], axis=2)[:, :, 0]        # (N, M)
    Rcur = R[rows, server, k]
    miss = ~np.isfinite(Rcur)           # options that cannot meet T at all (E = inf while they stay)
    Rfin = np.where(miss, 0.0, Rcur)
    E0 = np.bincount(server, weights=Rfin, minlength=M) - inc["lam"] * D.B - inc["pi"] * slot - D.F
    n_miss = np.bincount(server, weights=miss, minlength=M)
    E = np.where(n_miss > 0, np.inf, E0)
    out = []

    def add(score, n, m2, n2=None):
        if score <= 0 or (not screen and np.isfinite(score)):
            s2, k2 = server.copy(), k.copy()
            s2[n], k2[n] = m2, best_k[n, m2]
            if n2 is not None:
                s2[n2], k2[n2] = ms, best_k[n2, ms]
            out.append((float(score), s2, k2, np.unique([ms, m2])))

    for n in np.nonzero(server == ms)[0]:
        base = E0[ms] - Rfin[n] if n_miss[ms] == miss[n] else np.inf       # m* without n
        if best_k[n, ms] != k[n]:                                          # split change
            add((base + Rstar[n, ms]) / D.F[ms], n, ms)
        for m2 in range(M):
            if m2 == ms:
                continue
            if cnt[m2] < D.user_cap[m2] and not (D.eq_f and cnt[ms] == 1):  # move
                add(max(base / D.F[ms], (E[m2] + Rstar[n, m2]) / D.F[m2]), n, m2)
            for n2 in np.nonzero(server == m2)[0]:                        # swap
                rest = E0[m2] - Rfin[n2] if n_miss[m2] == miss[n2] else np.inf     # m2 without n2
                add(max((base + Rstar[n2, ms]) / D.F[ms], (rest + Rstar[n, m2]) / D.F[m2]), n, m2, n2)
    out.sort(key=lambda c: c[0])
    return T, ms, out


def polish(mm, budget_s: float, max_checks: int = 8) -> int:
    """Improve ``mm``'s (a minmax.MinMax) incumbent by local search for at most ``budget_s`` seconds (wall,
    and never past the solve's deadline): ``mm.local_moves()`` gives the screened moves best first,
    ``mm.try_move`` checks one exactly and offers it. Returns the number of accepted moves."""
    end = min(mm.deadline, time.perf_counter() + budget_s)
    moves = 0
    while mm.inc is not None and time.perf_counter() < end:
        obj, found = mm.inc["obj"], mm.local_moves()
        if found is None:
            break
        levels, cands = found
        for cand in cands[:max_checks]:
            if time.perf_counter() >= end:
                break
            if mm.try_move(cand, levels) < obj:
                moves += 1
                break
        else:
            break
    mm.stats["local_moves"] = mm.stats.get("local_moves", 0) + moves
    return moves
