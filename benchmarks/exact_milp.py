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
uses 20 on [μ*/2, 2μ*]). The numbers of docs/exact.md §5 "Session 10" come from here. HiGHS' time is
wall time: run it on an idle machine.
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
    a = ap.parse_args(argv)
    n, m = a.size
    try:
        v = load_variant(a.variant)
        inst = generate(v, n, m, a.seed)
    except InputError as e:
        ap.exit(2, f"exact_milp.py: error: {e}\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "milp.mps")
        milp, obj, value, tol = first_milp(v, inst, path, a.prices, a.band)
        h = quiet.highs()
        h.readModel(path)
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
    hit, best = [None], [-np.inf]

    def progress(ev):
        best[0] = max(best[0], ev.data_out.mip_dual_bound)
        if hit[0] is None and obj - to_obj(best[0]) <= tol:
            hit[0] = time.perf_counter() - t0
            ev.data_in.user_interrupt = not a.heuristics

    h.cbMipInterrupt.subscribe(progress)
    h.run()
    info = h.getInfo()
    head = f"{a.variant} {n}x{m} seed {a.seed}: incumbent {obj:.10g}; HiGHS {dict(a.option) or 'as the solver'}"
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
            print(f"{head}: gap {(obj - lb) / abs(obj):.3e} at {a.limit:g} s ({info.mip_node_count} nodes)")
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
