"""Measurements behind docs/exact.md §2b (why the server-subset bound helps, and where it stops).

    python benchmarks/exact_structure.py enum 10 3 0      # set-partitioning LP by full enumeration
    python benchmarks/exact_structure.py spread 50 10 0   # reduced-cost spread, pricing-tree closure
    python benchmarks/exact_structure.py milp 200 20 4 --limit 60   # the assignment MILP, two forms (§5)

``enum``: every non-empty user subset of every server is solved exactly (fixed.py, bandwidth and
frequency budgets both kept), then the set-partitioning LP and MIP run on HiGHS; prints their gaps
next to the budget-Lagrangian root gap. 2^N − 1 subsets per server: N ≤ 12 (≈ 90 s at 10×3).

``spread``: at the maximised budget Lagrangian of the root, each user's cost on its k-th best server
minus its best (how many servers lie within the gap), how many users are near indifference, and
whether each server's pricing tree closes within 3,000 / 30,000 nodes at those prices.

``milp``: the first assignment MILP of the default method (§2c: root, polish, cuts at the price grid and
the incumbent's prices), run by HiGHS from the incumbent for ``--limit`` s on one thread, as built
(``dense``: every cut row over the server's option columns) and with the same cuts through per-server
aggregates (``aggregate``: each server's edge and uplink cut matrices factored by SVD to rank r, r
aggregate columns g = Vᵀx per server, each cut then a row over z and the aggregates; the rank-r residual
bound ρ_j times the server's user count is subtracted, so every row stays valid). Prints HiGHS' nodes
its dual bound's and its best point's gaps to the incumbent (relative), and the dual bound's at 5 / 10 / 20 /
30 / 60 s. (The MILP's optimum can lie below the incumbent: the solver would then cost that point exactly,
cut it and run the next round, §2c.)
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
import time

import numpy as np

from mecsplit import quiet
from mecsplit.errors import InputError
from mecsplit.instance import generate
from mecsplit.variant import load_variant
from mecsplit_exact.bnb import BnB, QuietTracer
from mecsplit_exact.colgen import Pricer, ServerTable, mu_grid
from mecsplit_exact.fixed import solve_fixed
from mecsplit_exact.lagrangian import Master, _scales, maximise
from mecsplit_exact.oa import NUMERICS, SEARCH
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


class FirstMILP(BnB):
    """The default method up to its first MILP round, which it keeps (self.milp) instead of solving."""

    milp = None   # (none when the root closes the gap)

    def _oa_rounds(self, milp, bound, *rest):
        self.milp = milp
        return bound


def factored_cuts(milp, rank_tol=1e-10):
    """Each cost column's cut rows (the default variant: one cost column per row) as a rank-r factorisation
    over the server's options: (column, options, Vt (r × options), C (rows × r), ρ (rows), rhs (rows)),
    with C_j·Vt·x − ρ_j·Σx ≤ the row's value Σ vals·x for every x in [0, 1] (ρ_j ≥ every entry's excess)."""
    groups = {}
    for col, sel, vals, rhs in milp.rows:
        groups.setdefault(int(col[0]), []).append((sel, vals, rhs))
    out = []
    for col, rows in groups.items():
        opts = milp.by_server[(col - milp.nx) % milp.D.M]
        R = np.zeros((len(rows), opts.size))
        for j, (sel, vals, _) in enumerate(rows):
            R[j, np.searchsorted(opts, sel)] = vals
        U, S, Vt = np.linalg.svd(R, full_matrices=False)
        for r in range(1, S.size + 1):
            over = (U[:, :r] * S[:r]) @ Vt[:r] - R          # rank-r value minus the cut's value
            if over.max() <= rank_tol:
                break
        out.append((col, opts, Vt[:r], U[:, :r] * S[:r], np.maximum(over.max(axis=1), 0.0),
                    np.array([rhs for _, _, rhs in rows])))
    return out


def aggregated(milp):
    """A HiGHS model of ``milp`` whose cut rows go through per-server aggregates (module doc); returns
    (model, total rank)."""
    import highspy
    D, nx, inf = milp.D, milp.nx, highspy.kHighsInf
    h = quiet.highs()
    ncol = nx + 2 * D.M
    h.addVars(ncol, np.zeros(ncol), np.concatenate([np.ones(nx), np.full(2 * D.M, inf)]))
    h.changeColsCost(ncol, np.arange(ncol, dtype=np.int32), milp.cost)
    h.changeColsIntegrality(nx, np.arange(nx, dtype=np.int32), np.full(nx, highspy.HighsVarType.kInteger))
    for n in range(D.N):
        idx = np.nonzero(milp.on == n)[0].astype(np.int32)
        h.addRow(1.0, 1.0, idx.size, idx, np.ones(idx.size))
    ranks = 0
    for col, opts, Vt, C, rho, rhs in factored_cuts(milp):
        r = Vt.shape[0]
        ranks += r
        first = ncol
        ncol += r + 1
        h.addVars(r + 1, np.full(r + 1, -inf), np.full(r + 1, inf))
        for q, row in enumerate(list(Vt) + [np.ones(opts.size)]):      # g_q = Vt_q·x, and the user count
            idx = np.concatenate([opts, [first + q]]).astype(np.int32)
            h.addRow(0.0, 0.0, idx.size, idx, np.concatenate([row, [-1.0]]))
        for j in range(rhs.size):     # z − C_j·g + ρ_j·count ≥ rhs_j
            idx = np.concatenate([[col], first + np.arange(r + 1)]).astype(np.int32)
            h.addRow(rhs[j], inf, idx.size, idx, np.concatenate([[1.0], -C[j], [rho[j]]]))
    return h, ranks


def run_milp(h, milp, inc, rel_gap, limit_s, extra=None):
    """HiGHS on ``h`` (the MILP's columns first) from the incumbent; the dual bound's relative gap to it."""
    import highspy
    for o, val in {**NUMERICS, **SEARCH, "time_limit": limit_s,
                   "mip_abs_gap": 0.5 * rel_gap * inc["obj"] * milp.sc, **(extra or {})}.items():
        if h.setOptionValue(o, val) != highspy.HighsStatus.kOk:
            print(f"exact_structure.py: --highs {o}={val}: HiGHS refused it (allowed: a HiGHS option and a value of its type)",
                  file=sys.stderr)
            raise SystemExit(2)
    start = np.zeros(h.getNumCol())
    start[: milp.nx + 2 * milp.D.M] = milp.start_vector(inc["server"], inc["k"])
    sol = highspy.HighsSolution()
    sol.col_value, sol.value_valid = list(start), True
    h.setSolution(sol)
    marks, t0 = {}, time.perf_counter()

    def progress(ev):
        t = time.perf_counter() - t0
        for T in (5, 10, 20, 30, 60):
            if t <= T:
                marks[T] = ev.data_out.mip_dual_bound

    h.cbMipInterrupt.subscribe(progress)
    h.run()
    h.cbMipInterrupt.unsubscribe(progress)
    gap = lambda lb: (inc["obj"] - milp.to_objective(lb)) / inc["obj"]
    info = h.getInfo()
    took = time.perf_counter() - t0
    return (f"{h.modelStatusToString(h.getModelStatus())} in {took:.1f} s, {info.mip_node_count} nodes, "
            f"{len(h.getLp().a_matrix_.value_)} nonzeros; MILP optimum ≥ incumbent − {gap(info.mip_dual_bound):.3g}, "
            f"its best point incumbent − {gap(info.objective_function_value):.3g}"
            + "".join(f"; at {T} s: {gap(b):.3g}" for T, b in sorted(marks.items()) if T <= took))


def milp_forms(D, seed, limit_s, forms, extra, rel_gap=1e-6):
    with quiet.highs_options(random_seed=seed, threads=1):
        b = FirstMILP(D, QuietTracer(), rel_gap, 1e-12, 10**9, None, method="oa", seed=seed)
        b.run()
        milp, inc = b.milp, b.inc
        if milp is None:
            print(f"incumbent {inc['obj']:.12g}: the root closed the gap, no MILP")
            return
        fixed = float(np.sum(D.user_part[np.arange(D.N), inc["k"]]))    # the users' own part at its splits
        print(f"incumbent {inc['obj']:.12g} (servers' part {inc['obj'] - fixed:.6g}, {(inc['obj'] - fixed) / inc['obj']:.3%}); "
              f"{milp.nx} options, {len(milp.rows)} cut rows")
        if "dense" in forms:
            print(f"  dense:     {run_milp(milp.h, milp, inc, rel_gap, limit_s, extra)}")
        if "aggregate" in forms:
            h, ranks = aggregated(milp)
            print(f"  aggregate: {run_milp(h, milp, inc, rel_gap, limit_s, extra)} (total rank {ranks} over {2 * D.M} cost columns)")


class Parser(argparse.ArgumentParser):
    def error(self, message):   # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv=None):
    ap = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("enum", "spread", "milp"))
    ap.add_argument("N", type=int)
    ap.add_argument("M", type=int)
    ap.add_argument("seed", type=int)
    ap.add_argument("--variant", default="default")
    ap.add_argument("--limit", type=float, default=60.0, help="milp: HiGHS' time limit per form (s)")
    ap.add_argument("--forms", nargs="+", default=["dense", "aggregate"], choices=("dense", "aggregate"), help="milp: the forms run")
    ap.add_argument("--highs", nargs="*", default=[], metavar="OPTION=VALUE", help="milp: HiGHS options over the solver's")
    a = ap.parse_args(argv)
    try:
        v = load_variant(a.variant)
        D = Data(v, generate(v, a.N, a.M, a.seed))
    except InputError as e:   # a variant or size the framework refuses: one line
        print(f"exact_structure.py: {e}", file=sys.stderr)
        return 2
    if a.what == "milp":
        extra = {}
        for kv in a.highs:
            key, _, val = kv.partition("=")
            try:
                extra[key] = {"true": True, "false": False}[val.lower()] if val.lower() in ("true", "false") else (
                    int(val) if val.lstrip("-").isdigit() else float(val))
            except ValueError:
                ap.error(f"--highs {kv!r}: allowed: OPTION=VALUE, the value a number, true or false")
        return milp_forms(D, a.seed, a.limit, a.forms, extra)
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
