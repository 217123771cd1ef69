"""SFT timescales at the paper's size (docs/sft.md §3-4): run from the repository root,

    python benchmarks/sft_timescales.py [--seeds 1 2 3] [--users 50]

prints, per seed of sft-2025-dynamic (8 slots): sft-alm's delay, wall and CPU time (its own process); the small-timescale step
timed with Ipopt and with scipy's SLSQP on the same (α, ρ) from the same start, their ratio and their
optima; and what adaptivity buys: sft-static (one allocation for all slots), sft-alm (per-slot spectrum
and server share), the per-slot re-optimisation of everything (mecsplit_sft.adaptivity).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mecsplit.instance import generate
from mecsplit.solve import solve
from mecsplit.variant import load_variant
from mecsplit_sft.adaptivity import reopt_per_slot
from mecsplit_sft.data import SftData
from mecsplit_sft.sqp import solve_slots


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--users", type=int, default=50)
    args = ap.parse_args()
    v = load_variant("sft-2025-dynamic")
    for seed in args.seeds:
        inst = generate(v, args.users, 1, seed=seed)
        cpu = time.process_time()
        r = solve(v, inst, "sft-alm")
        cpu = time.process_time() - cpu
        st = solve(v, inst, "sft-static")
        print(f"seed {seed}: sft-alm {r.objective:.6g} s in {r.wall_time_s:.2f} s wall, {cpu:.2f} s CPU "
              f"({r.verification['verdict']}; ALM {r.extra['alm_time_s']:.2f} s, SQP {r.extra['sqp_time_s']:.2f} s); "
              f"sft-static {st.objective:.6g} s ({st.verification['verdict']})")
        d, sol = SftData.of(v, inst), r.solution
        a, rho = np.asarray(sol["alpha"]), np.asarray(sol["rho"])
        fe0, b0 = d.equal_shares()
        times = {}
        for method in ("ipopt", "slsqp"):
            t0 = time.perf_counter()
            fe, b, res = solve_slots(d, a, rho, fe0, b0, method, cache={})
            times[method] = (time.perf_counter() - t0, d.objective(a, rho, fe, b), sum(x.ok for x in res))
            print(f"  small timescale, {method:5s}: {times[method][0]:.3f} s for {d.T} slots, expected delay "
                  f"{times[method][1]:.9g} s, {times[method][2]}/{d.T} converged, iterations {[x.iterations for x in res]}")
        print(f"  SLSQP / Ipopt time ratio {times['slsqp'][0] / times['ipopt'][0]:.1f}; "
              f"delay difference (SLSQP − Ipopt)/Ipopt {(times['slsqp'][1] - times['ipopt'][1]) / times['ipopt'][1]:.2e}")
        ro = reopt_per_slot(inst)
        print(f"  adaptivity: static {st.objective:.6g} s, two-timescale {r.objective:.6g} s "
              f"({(st.objective - r.objective) / st.objective:.1%} less), per-slot re-optimisation {ro['mean_delay_s']:.6g} s "
              f"({(st.objective - ro['mean_delay_s']) / st.objective:.1%} less than static; all slots verified: {ro['all_verified']})")


if __name__ == "__main__":
    main()
