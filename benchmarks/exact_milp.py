"""The exact solver's first assignment MILP (docs/exact.md §2c), taken out and run by HiGHS alone.

    python benchmarks/exact_milp.py --size 200x20 --seed 2 --limit 30 [--option mip_lp_age_limit=30 ...]
    python benchmarks/exact_milp.py --size 200x20 --seed 7 --limit 20 --heuristics
    python benchmarks/exact_milp.py --size 200x20 --seed 2 --limit 30 --prices 60 --band 0.8

Runs ``exact`` (rel_gap 1e-6) up to its first MILP round, writes that MILP to a temporary MPS file, and
solves it with highspy, in one of two ways:

* **bound** (default): the solver's own settings (oa.NUMERICS, oa.SEARCH), the incumbent's MILP value as
  cutoff, and the given HiGHS options. It prints the relative gap between the incumbent and HiGHS' dual
  bound at the limit, or the time at which that gap reached 1e-6.
* **--heuristics**: HiGHS' own heuristics on and no cutoff, then the best solution it found costed exactly
  and polished by the local search (docs/exact.md §2d, §2e). It prints both values relative to the
  solver's incumbent.

``--prices N --band R`` sets the MILP's edge-cut grid: N prices per server on [R·μ*, μ*/R] (the solver
uses 20 on [μ*/2, 2μ*]). The numbers of docs/exact.md §5 "Session 10" and "Session 13" come from here. HiGHS' time is
wall time: run it on an idle machine.

``--form aggregate`` (docs/exact.md §5 "Session 13") runs the same MILP with its cuts through per-server
aggregates: each server's edge and uplink cut matrices factored by SVD to rank r, r aggregate columns
g = Vᵀx and a user count per server, each cut then a row over its cost column and those aggregates; the
rank-r residual bound ρ_j times the count is subtracted, so every row stays valid. HiGHS' presolve is
off for this form (``--option presolve=on`` to see why: it hands back aggregates off their rows).
Variants with deadlines (whole-server and feasibility cuts) are refused.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import highspy
import numpy as np

import mecsplit_exact.bnb as bnb
import mecsplit_exact.oa as oa
from mecsplit import quiet
from mecsplit.errors import InputError
from mecsplit.instance import generate
from mecsplit.solve import solve
from mecsplit.variant import load_variant
from mecsplit_exact.fixed import solve_fixed
from mecsplit_exact.local import LocalSearch
from mecsplit_exact.subproblems import Data


class _Taken(Exception):
    pass


def first_milp(variant, inst, path, prices=None, band=0.5):
    """Run exact until its first MILP round; write that MILP to ``path``. Returns (MILP, incumbent's
    exact objective, its MILP value, the absolute tolerance at 1e-6)."""
    got = {}
    run = oa.AssignmentMILP.solve

    def take(self, time_limit_s, abs_gap, start=None, *a, **kw):
        self.h.writeModel(path)
        inc = kw["incumbent"]()
        got.update(milp=self, obj=inc["obj"], value=float(self.cost @ self.point(inc["server"], inc["k"])))
        raise _Taken

    grid = bnb.price_points
    oa.AssignmentMILP.solve = take
    if prices is not None:
        bnb.price_points = lambda D, c, lo_ratio=0.5, n=40, eq=False: oa.price_points(
            D, c, band, prices if n >= 12 else n, eq)
    try:
        solve(variant, inst, "exact", {"rel_gap": 1e-6, "second_core": False})
    finally:
        oa.AssignmentMILP.solve, bnb.price_points = run, grid
    if "milp" not in got:
        raise SystemExit("exact certified the instance before any MILP round: nothing to take out")
    return got["milp"], got["obj"], got["value"], 1e-6 * abs(got["obj"])


def factored_cuts(milp, rank_tol=1e-10):
    """Each cost column's cut rows (one cost column per row: no deadlines) as a rank-r factorisation over
    its server's options: (column, options, Vt (r × options, scaled by the singular values), C (rows × r),
    ρ (rows), rhs (rows)), with
    C_j·Vt·x − ρ_j·Σx ≤ the row's value Σ vals·x for every x in [0, 1] (ρ_j ≥ every entry's excess)."""
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
            if np.abs(over).max() <= rank_tol:              # (both ways: the form stays as tight as the cuts)
                break
        # the singular values go into the aggregates, so that C = U has entries ≤ 1 and HiGHS' feasibility
        # tolerance on g = Vt·x moves no cut by more than that tolerance (with C = U·S it moved the
        # uplink cuts by 1e-6 of the scaled objective at 20×4)
        out.append((col, opts, S[:r, None] * Vt[:r], U[:, :r], np.maximum(over.max(axis=1), 0.0),
                    np.array([rhs for _, _, rhs in rows])))
    return out


def aggregated(milp):
    """``milp``'s HiGHS model with its cut rows (the last len(milp.rows) rows: without deadlines every
    row added after the model's own is a cut, oa.AssignmentMILP._row) replaced by rows over per-server
    aggregates (module doc). Returns (model, total rank)."""
    inf = highspy.kHighsInf
    # presolve off: HiGHS' presolve substitutes the free aggregates, and its postsolve handed them back up
    # to 8e-7 off their rows (default 20×4), so that the bound could even exceed the incumbent
    # (hardware-2024 200×20 seed 0, by 8.2e-7 of the objective)
    h = quiet.highs({"presolve": "off"})
    h.passModel(milp.h.getLp())
    own = h.getNumRow() - len(milp.rows)
    h.deleteRows(len(milp.rows), np.arange(own, h.getNumRow(), dtype=np.int32))
    ranks = 0
    for col, opts, Vt, C, rho, rhs in factored_cuts(milp):
        r = Vt.shape[0]
        ranks += r
        first = h.getNumCol()
        h.addVars(r + 1, np.full(r + 1, -inf), np.full(r + 1, inf))
        for q, row in enumerate(list(Vt) + [np.ones(opts.size)]):      # g_q = Vt_q·x, and the user count
            idx = np.concatenate([opts, [first + q]]).astype(np.int32)
            h.addRow(0.0, 0.0, idx.size, idx, np.concatenate([row, [-1.0]]))
        for j in range(rhs.size):     # z − C_j·g + ρ_j·count ≥ rhs_j
            idx = np.concatenate([[col], first + np.arange(r + 1)]).astype(np.int32)
            h.addRow(rhs[j], inf, idx.size, idx, np.concatenate([[1.0], -C[j], [rho[j]]]))
    return h, ranks


class OneLine(argparse.ArgumentParser):
    """Bad arguments: one line and exit 2 (no usage block)."""

    def error(self, message):
        self.exit(2, f"exact_milp.py: error: {message}\n")


def positive(text):
    x = float(text)
    if not (x > 0 and x < float("inf")):
        raise argparse.ArgumentTypeError(f"got {text!r} (allowed: a finite number > 0)")
    return x


def share(text):
    x = float(text)
    if not 0 < x < 1:
        raise argparse.ArgumentTypeError(f"got {text!r} (allowed: a number in (0, 1))")
    return x


def count(text):
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"got {text!r} (allowed: a whole number >= 1)")
    return n


def size(text):
    try:
        n, m = map(count, text.lower().split("x"))
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(f"got {text!r} (allowed: USERSxSERVERS, e.g. 200x20)") from None
    return n, m


def setting(kv):
    if "=" not in kv:
        raise argparse.ArgumentTypeError(f"{kv!r} is not NAME=VALUE")
    k, v = kv.split("=", 1)
    low = v.lower()
    if low in ("true", "false"):
        return k, low == "true"
    for cast in (int, float):
        try:
            return k, cast(v)
        except ValueError:
            pass
    return k, v


def main(argv=None):
    ap = OneLine(description=__doc__.split("\n")[0])
    ap.add_argument("--variant", default="default")
    ap.add_argument("--size", default=(200, 20), type=size, help="USERSxSERVERS")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=positive, default=30.0, help="HiGHS' time limit (wall s)")
    ap.add_argument("--random-seed", type=int, default=0, help="HiGHS' random_seed")
    ap.add_argument("--option", action="append", default=[], type=setting, help="a HiGHS option, name=value")
    ap.add_argument("--heuristics", action="store_true", help="HiGHS' heuristics on, no cutoff, then polish")
    ap.add_argument("--prices", type=count, default=None, help="edge-cut prices per server (the solver: 20)")
    ap.add_argument("--band", type=share, default=0.5, help="the grid spans [band·μ*, μ*/band]")
    ap.add_argument("--form", choices=("dense", "aggregate"), default="dense",
                    help="the MILP as the solver builds it, or its cuts through per-server aggregates")
    a = ap.parse_args(argv)
    n, m = a.size
    try:
        v = load_variant(a.variant)
        inst = generate(v, n, m, a.seed)
    except InputError as e:
        ap.exit(2, f"exact_milp.py: error: {e}\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "milp.mps")
        try:
            milp, obj, value, tol = first_milp(v, inst, path, a.prices, a.band)
        except InputError as e:     # e.g. a variant exact does not take: one line
            ap.exit(2, f"exact_milp.py: error: {e}\n")
        if a.form == "dense":
            h = quiet.highs()
            h.readModel(path)
        elif milp.D.has_deadline:
            ap.exit(2, f"exact_milp.py: error: --form aggregate: variant {a.variant!r} has deadlines (allowed: "
                       "a variant without per-user deadlines)\n")
        else:
            h, ranks = aggregated(milp)
    settings = {**oa.NUMERICS, "time_limit": a.limit, "random_seed": a.random_seed}
    if not a.heuristics:
        settings.update(oa.SEARCH)
        settings["objective_bound"] = value + 1e-9
    settings.update(dict(a.option))
    for k, x in settings.items():
        if h.setOptionValue(k, x) != highspy.HighsStatus.kOk:
            print(f"exact_milp.py: error: --option {k}={x!r}: HiGHS has no such option or refused the value "
                  "(allowed: a HiGHS option name and a value of its type)", file=sys.stderr)
            raise SystemExit(2)
    to_obj = milp.to_objective      # a MILP bound in objective units, with the solver's own margins
    t0 = time.perf_counter()
    hit, best, marks = [None], [-np.inf], {}

    def progress(ev):
        best[0] = max(best[0], ev.data_out.mip_dual_bound)
        for T in (5, 10, 20, 30, 60):        # the bound at these times (wall s)
            if time.perf_counter() - t0 <= T:
                marks[T] = best[0]
        if hit[0] is None and obj - to_obj(best[0]) <= tol:
            hit[0] = time.perf_counter() - t0
            ev.data_in.user_interrupt = not a.heuristics

    h.cbMipInterrupt.subscribe(progress)
    h.run()
    info = h.getInfo()
    took = time.perf_counter() - t0
    form = (f"form {a.form}" + (f" (total rank {ranks})" if a.form == "aggregate" else "")
            + f", {len(h.getLp().a_matrix_.value_)} nonzeros, {info.mip_node_count} nodes")
    part = 1.0 / milp.sc     # the MILP's scale: the incumbent less every user's least own cost (oa, bnb)
    head = (f"{a.variant} {n}x{m} seed {a.seed}: incumbent {obj:.10g} (its assignment-dependent part {part:.6g}, "
            f"{part / abs(obj):.2%}); HiGHS {dict(a.option) or 'as the solver'}; {form}")
    if not a.heuristics and h.getModelStatus() == highspy.HighsModelStatus.kInfeasible:
        # nothing below the cutoff (the incumbent's MILP value): the incumbent is the MILP's optimum
        print(f"{head}: no MILP solution below the incumbent's value, proven at {time.perf_counter() - t0:.1f} s")
        return
    if not a.heuristics:
        lb = to_obj(max(best[0], info.mip_dual_bound))
        if hit[0] is not None:
            print(f"{head}: gap 1e-6 reached at {hit[0]:.1f} s")
        elif h.getModelStatus() == highspy.HighsModelStatus.kOptimal:   # a MILP point below the incumbent's value
            print(f"{head}: MILP solved in {time.perf_counter() - t0:.1f} s, its optimum {(obj - lb) / abs(obj):.3e} "
                  "below the incumbent (the solver then costs that point exactly, cuts it and re-solves: §2c)")
        else:
            over = "".join(f", {T} s: {(obj - to_obj(b)) / abs(obj):.3e}" for T, b in sorted(marks.items()) if T < took)
            print(f"{head}: gap {(obj - lb) / abs(obj):.3e} at {a.limit:g} s" + (f" (gap at{over[1:]})" if over else ""))
        return
    if info.primal_solution_status != 2:
        print(f"{head}, heuristics: no solution in {a.limit:g} s")
        return
    server, k = milp.assignment(np.asarray(h.getSolution().col_value)[: milp.nx])
    D = Data(v, inst)
    r = solve_fixed(D, server, k, improve_alpha=False)
    found = r["obj"]
    kept = [r]

    def offer(s, kk):
        q = solve_fixed(D, s, kk, improve_alpha=False)
        if q is not None and q["obj"] < kept[0]["obj"]:
            kept[0] = q
        return q

    t1 = time.perf_counter()
    LocalSearch(D).improve(r, t1 + 120.0, time.perf_counter, offer)
    rel = lambda x: (x - obj) / abs(obj)
    print(f"{head}, heuristics: its best solution {rel(found):+.2e} relative to the incumbent, polished "
          f"{rel(kept[0]['obj']):+.2e} ({kept[0]['obj']:.10g}, polish {time.perf_counter() - t1:.1f} s)")


if __name__ == "__main__":
    main()
