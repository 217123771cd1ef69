"""Measurements behind docs/exact.md §2b (why the server-subset bound helps, and where it stops).

    python benchmarks/exact_structure.py enum 10 3 0      # set-partitioning LP by full enumeration
    python benchmarks/exact_structure.py spread 50 10 0   # reduced-cost spread, pricing-tree closure

``enum``: every non-empty user subset of every server is solved exactly (fixed.py, bandwidth and
frequency budgets both kept), then the set-partitioning LP and MIP run on HiGHS; prints their gaps
next to the budget-Lagrangian root gap. 2^N − 1 subsets per server: N ≤ 12 (≈ 90 s at 10×3).

``spread``: at the maximised budget Lagrangian of the root, each user's cost on its k-th best server
minus its best (how many servers lie within the gap), how many users are near indifference, and
whether each server's pricing tree closes within 3,000 / 30,000 nodes at those prices.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
import time

import numpy as np

from mecsplit.cliargs import OneLineParser
from mecsplit.errors import InputError
from mecsplit.instance import generate
from mecsplit.variant import load_variant
from mecsplit_exact.bnb import BnB, QuietTracer
from mecsplit_exact.colgen import Pricer, ServerTable, mu_grid
from mecsplit_exact.fixed import solve_fixed
from mecsplit_exact.lagrangian import Master, _scales, maximise
from mecsplit_exact.subproblems import Data


def root(D):
    b = BnB(D, QuietTracer(), 1e-12, 1e-15, 1, None, colgen="off")
    b.run()
    N, M = D.N, D.M
    allowed, klo, khi = np.ones((N, M), bool), np.zeros(N, int), np.full(N, D.K - 1)
    lam, mu = b.inc["lam"], b.inc["mu"]
    best, _, _ = maximise(D, b.ev, Master(D), lam, mu, allowed, klo, khi, sl=_scales(lam), sm=_scales(mu))
    return b, best


def one_server(D, users, m):
    """D restricted to ``users`` on server m (for exact per-subset solves)."""
    S = copy.copy(D)
    S.__dict__.pop("_bw_cache", None)
    us = np.asarray(users)
    S.N, S.M = us.size, 1
    for f in ("f", "A", "stab_c", "c0", "c1", "p_lo", "p_hi", "user_part"):
        setattr(S, f, getattr(D, f)[us])
    for f in ("t", "e", "a"):
        setattr(S, f, getattr(D, f)[us][:, [m]])
    S.F, S.B = D.F[[m]], D.B[[m]]
    return S


def enum(D):
    import highspy
    N, M = D.N, D.M
    cols = []
    for m in range(M):
        for r in range(1, N + 1):
            for us in itertools.combinations(range(N), r):
                res = solve_fixed(one_server(D, us, m), np.zeros(r, int), np.zeros(r, int))
                if res is not None:
                    cols.append((m, us, res["obj"]))
    nc = len(cols)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = nc, N + M
    lp.col_cost_ = np.array([c[2] for c in cols])
    lp.col_lower_, lp.col_upper_ = np.zeros(nc), np.ones(nc)
    lp.row_lower_ = np.concatenate([np.ones(N), np.ones(M) if D.eq_f else np.zeros(M)])
    lp.row_upper_ = np.ones(N + M)
    starts, idx = [0], []
    for m, us, _ in cols:
        idx += list(us) + [N + m]
        starts.append(len(idx))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.array(starts, np.int32)
    lp.a_matrix_.index_ = np.array(idx, np.int32)
    lp.a_matrix_.value_ = np.ones(len(idx))
    out = []
    for integer in (False, True):
        if integer:
            lp.integrality_ = [highspy.HighsVarType.kInteger] * nc
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("mip_rel_gap", 1e-12)
        h.passModel(lp)
        h.run()
        out.append(h.getInfo().objective_function_value)
    return nc, out[0], out[1]


def main(argv=None):
    ap = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("enum", "spread"))
    ap.add_argument("N", type=int)
    ap.add_argument("M", type=int)
    ap.add_argument("seed", type=int)
    ap.add_argument("--variant", default="default")
    a = ap.parse_args(argv)
    try:
        v = load_variant(a.variant)
        D = Data(v, generate(v, a.N, a.M, a.seed))
    except InputError as e:   # a variant or size the framework refuses: one line
        print(f"exact_structure.py: {e}", file=sys.stderr)
        return 2
    b, best = root(D)
    L, inc = best["L"], b.inc["obj"]
    if a.what == "enum":
        if a.N > 12:
            ap.error("enum: N ≤ 12 (2^N − 1 subsets per server)")
        t0 = time.perf_counter()
        nc, sp_lp, sp_ip = enum(D)
        print(f"{a.variant} {a.N}x{a.M} seed {a.seed}: {nc} columns in {time.perf_counter() - t0:.0f} s")
        print(f"optimum (SP MIP) {sp_ip:.12g}; budget-Lagrangian root gap {(sp_ip - L) / sp_ip:.3g}; "
              f"set-partitioning LP gap {(sp_ip - sp_lp) / sp_ip:.3g}")
        return
    rc = np.sort(best["vnm"] - best["v"][:, None], axis=1)
    gap = inc - L
    print(f"{a.variant} {a.N}x{a.M} seed {a.seed}: incumbent {inc:.12g}, root bound {L:.12g}, "
          f"gap {gap:.3g} abs / {gap / inc:.3g} rel")
    print(f"second-best server minus best (abs): max {rc[:, 1].max():.3g}, "
          f"users within gap/100: {(rc[:, 1] <= gap / 100).sum()} of {a.N}")
    for g in (gap, gap / 10, gap / 100):
        print(f"  servers within {g:.3g} of a user's best: mean {(rc <= g).sum(axis=1).mean():.2f}")
    U = b.ev.uplink(best["lam"])[0]
    klo, khi = np.zeros(a.N, int), np.full(a.N, D.K - 1)
    for m in range(a.M):
        tab = ServerTable(D, m, np.arange(a.N), klo, khi, mu_grid(best["mu"], m, D.eq_f, a.N))
        near = int((np.abs(Pricer(tab, U[:, m] - best["v"]).G0[:, np.searchsorted(tab.grid, best["mu"][m])]) < 1e-4).sum())
        res = []
        for cap in (3000, 30000):
            lb, found, nodes = Pricer(tab, U[:, m] - best["v"], node_cap=cap).run(not D.eq_f, 2e-10 * inc)
            bv = min([c[0] for c in found] + ([0.0] if not D.eq_f else []))
            res.append(f"cap {cap}: {nodes} nodes, open gap {bv - lb:.2g}")
        print(f"  server {m}: {near} users with |G| < 1e-4; " + "; ".join(res))


if __name__ == "__main__":
    sys.exit(main())
