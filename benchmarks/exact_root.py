"""CPU and wall time of the exact solver's root alone (the budget Lagrangian, docs/exact.md §2), `oa` method.

    python benchmarks/exact_root.py --size 1000x50 --seeds 0 1 [--rel-gap 1e-6] [--variant default]

Per seed: the root's Lagrangian bound, the incumbent after the root, their relative gap, the dual
evaluations, and CPU (this process, HiGHS included) and wall seconds. Run it with another checkout's
plugin on PYTHONPATH to compare two versions side by side.
"""

from __future__ import annotations

import argparse
import time

from mecsplit.instance import generate
from mecsplit.solve import Problem
from mecsplit.variant import load_variant
from mecsplit_exact.bnb import BnB, QuietTracer
from mecsplit_exact.plugin import data_for


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="default")
    ap.add_argument("--size", default="1000x50")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--rel-gap", type=float, default=1e-6)
    a = ap.parse_args(argv)
    # the MILP step replaced by the root's own bound: the run stops after the root (works on older checkouts too)
    BnB.outer_approximation = lambda self, best: best["L"]
    v = load_variant(a.variant)
    n, m = (int(x) for x in a.size.lower().split("x"))
    for seed in a.seeds:
        D = data_for(Problem(v, generate(v, n, m, seed), seed, None, None))
        b = BnB(D, QuietTracer(), a.rel_gap, 1e-12, 100000, None, method="oa", colgen="off")
        c0, w0 = time.process_time(), time.perf_counter()
        b.run()
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        L = b.stats["root_lagrangian_bound"]
        print(f"{a.variant} {n}x{m} seed {seed}: root bound {L:.10f}, incumbent {b.ub:.10f}, gap {(b.ub - L) / abs(b.ub):.2e}, "
              f"dual evaluations {b.stats['dual_evals']}, CPU {cpu:.1f} s, wall {wall:.1f} s", flush=True)


if __name__ == "__main__":
    main()
