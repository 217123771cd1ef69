"""Cuts for the ``peak_memory`` objective (docs/splitllm.md §2), exact for a fixed association.

For a target peak P, let every user take, among its allowed cuts whose device memory and edge stream are
≤ P, the one with the largest β (then the largest α). The cloud's peak is non-increasing in every β_n and
an SFL edge's sum is non-increasing in every α_n (β = Υ there), so this choice gives the smallest cloud and
edge peaks any cut choice within P can give, and "its overall peak ≤ P" is monotone in P: a bisection on P
finds the least peak (to ``rtol``). The association is the greedy one; the resources are then the exact
min-delay ones for those cuts, so among equal peaks the point is also fast.
"""

from __future__ import annotations

import numpy as np

from mecsplit.blocks.memory import peak_memory_GB


def _choice(sc, cands, P):
    alpha, beta = np.zeros(len(cands)), np.zeros(len(cands))
    for n, c in enumerate(cands):   # the per-user forms of blocks.memory.user_memory_GB
        dev = sc.d_0[n] + c[:, 0] * sc.d_l[n]
        edge = (c[:, 1] - c[:, 0]) * sc.e_l[n] + sc.e_0[n]
        ok = (dev <= P) & (edge <= P)
        if not ok.any():
            return None
        k = np.flatnonzero(ok)[np.lexsort((c[ok, 0], c[ok, 1]))[-1]]
        alpha[n], beta[n] = c[k]
    return alpha, beta


def min_peak_cuts(variant, inst, sc, server, tracer=None, rtol=1e-10):
    cands = [sc.cuts(n, server[n]) for n in range(sc.N)]
    if any(c.size == 0 for c in cands):
        return None

    def peak(ab):
        return peak_memory_GB(inst, {"server": server, "alpha": ab[0], "beta": ab[1]})["overall"]

    best = _choice(sc, cands, np.inf)
    lo, hi = 0.0, peak(best)
    while hi - lo > rtol * hi and not (tracer is not None and tracer.out_of_time()):
        mid = 0.5 * (lo + hi)
        ab = _choice(sc, cands, mid)
        if ab is not None and peak(ab) <= mid:
            best, hi = ab, peak(ab)
        else:
            lo = mid
    return best
