"""The exact solver's local search (docs/exact.md §2d) from a random assignment, with the quick screen
on and off: wall time, passes, exact solves and the local optimum reached.

    python benchmarks/exact_local.py --size 200x20 --seed 0 [--variant default] [--repeat 2]

Each run builds its own data (the bandwidth blocks memoised by fixed.py are not shared between runs);
the runs alternate, quick first on odd repeats. The start: every user on a server drawn with the seed,
with its cheapest split. Wall time: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from mecsplit.errors import InputError
from mecsplit.instance import generate
from mecsplit.variant import load_variant
from mecsplit_exact.fixed import solve_fixed
from mecsplit_exact.local import LocalSearch
from mecsplit_exact.plugin import CAPABILITIES
from mecsplit_exact.subproblems import Data


def size(text):
    try:
        n, m = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r} (allowed: USERSxSERVERS, e.g. 200x20)")
    if n < 1 or m < 1:
        raise argparse.ArgumentTypeError(f"got {text!r} (allowed: at least 1 user and 1 server)")
    return n, m


def count(text):
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"got {text!r} (allowed: an integer ≥ 1)")
    return v


class Parser(argparse.ArgumentParser):
    def error(self, message):   # one line, exit 2
        self.exit(2, f"exact_local.py: {message}\n")


def run(variant, inst, seed, quick):
    D = Data(variant, inst)
    rng = np.random.default_rng(seed)
    start = solve_fixed(D, rng.integers(0, D.M, D.N), np.argmin(D.user_part, axis=1), improve_alpha=False)
    if start is None:
        return None
    ls = LocalSearch(D, quick=quick)
    t = time.perf_counter()
    r = ls.improve(start, np.inf, time.perf_counter, lambda s, k: solve_fixed(D, s, k, improve_alpha=False),
                   max_solves=10**6)
    return time.perf_counter() - t, start["obj"], r["obj"], ls.stats


def main(argv=None):
    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", default="default")
    ap.add_argument("--size", type=size, default=(200, 20), help="USERSxSERVERS")
    ap.add_argument("--seed", type=int, default=0, help="instance seed (also the start's)")
    ap.add_argument("--repeat", type=count, default=1)
    a = ap.parse_args(argv)
    try:
        v = load_variant(a.variant)
        inst = generate(v, *a.size, a.seed)
        D = Data(v, inst)
    except InputError as e:
        print(f"exact_local.py: {e}", file=sys.stderr)
        return 2
    why = CAPABILITIES.why_not(v) or (
        "the local search runs with the weighted_sum and cost_per_quality objectives, without per-user deadlines"
        if v.objective.kind == "max_delay" or D.has_deadline else None)
    if why:
        print(f"exact_local.py: variant {a.variant!r}: {why}", file=sys.stderr)
        return 2
    print("| screen | wall s | passes (quick) | exact solves | start | local optimum |\n|---|---|---|---|---|---|")
    for rep in range(a.repeat):
        for quick in ((True, False) if rep % 2 == 0 else (False, True)):
            out = run(v, inst, a.seed, quick)
            if out is None:
                print(f"| {'quick' if quick else 'full'} | — | the random start is not feasible | | | |")
                continue
            t, s0, s1, st = out
            print(f"| {'quick' if quick else 'full'} | {t:.2f} | {st['passes']} ({st['quick_passes']}) | "
                  f"{st['exact_solves']} | {s0:.10f} | {s1:.10f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
