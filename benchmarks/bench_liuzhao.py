"""Speed of the Liu–Zhao plugin (mecsplit-liuzhao).

    python benchmarks/bench_liuzhao.py                 # all sections
    python benchmarks/bench_liuzhao.py --section convex --section scaling
    python benchmarks/bench_liuzhao.py --section scaling --max-users 500
    python benchmarks/bench_liuzhao.py --section association --variant hardware-2024 --seeds 1 2 3 4 5 6

Sections
* convex  — the FP step's convex solve: numpy KKT block solves (what the plugin uses) vs Ipopt
            (mecsplit.ipopt.solve_nlp, cyipopt) on the same fixed-association, fixed-α problem:
            wall time and objective (both checked by the evaluator);
* targets — liu-zhao through mecsplit.solve.solve at 50×10 (target ≤ 1 s) and 1000×50 (≤ 60 s);
* scaling — wall time vs users (M = max(10, N/20)), and the fitted exponent t ∝ N^k;
* association — the faithful association (liu-zhao: ⌈N/M⌉-capped greedy start, CCCP step with
            tentative equal shares) against the certified optimum of `exact`, with each inferred
            choice changed on its own (start=uncapped; association=load, i.e. liu-zhao-load) and both,
            at 50×10 on the given seeds: gap, time, largest server load.
Wall times are those recorded by the framework (Result.wall_time_s), on this machine (2 cores shared
with other jobs: rerun to see the spread).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from mecsplit.evaluate import evaluate
from mecsplit.instance import generate
from mecsplit.solve import solve
from mecsplit.variant import load_variant
from mecsplit_liuzhao.fp import fp_resources

VARIANTS = ("liu-zhao-2024", "default", "hardware-2024")


def _row(cells):
    print("| " + " | ".join(f"{c:.4g}" if isinstance(c, float) else str(c) for c in cells) + " |")
    sys.stdout.flush()


def convex(sizes=((10, 3), (50, 10))):
    from mecsplit.ipopt import solve_nlp
    from mecsplit.model import build_model, extract_solution, load_solution

    print("\n### Convex solve of the fixed-association, fixed-α resource problem: numpy KKT (FP) vs Ipopt\n")
    print("| variant | N×M | FP numpy [s] | FP iterations | FP objective | Ipopt [s] (compile) | Ipopt iterations | Ipopt objective | Ipopt status | rel. diff (Ipopt−FP)/FP |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for vname in VARIANTS:
        v = load_variant(vname)
        for N, M in sizes:
            inst = generate(v, N, M, seed=1)
            server = np.arange(N) % M
            t = time.perf_counter()
            r0 = fp_resources(v, inst, server)                 # relaxed α, rounded, re-optimised
            alpha = r0.x["alpha"]
            t = time.perf_counter()
            r = fp_resources(v, inst, server, alpha, fix_alpha=True)
            t_fp = time.perf_counter() - t
            ev = evaluate(v, inst, r.solution)
            assert ev.feasible
            m = build_model(v, inst)
            start = {**inst.reference_solution(), "server": server, "alpha": alpha}
            start = {k: np.asarray(val).tolist() for k, val in start.items()}
            start["fe_GHz"] = (inst.block("edge_compute")["F_max_GHz"][server] / np.bincount(server)[server]).tolist()
            start["b_MHz"] = (inst.block("uplink")["b_max_MHz"][server] / np.bincount(server)[server]).tolist()
            load_solution(m, v, inst, start, fix=("server", "alpha"))
            t = time.perf_counter()
            nr = solve_nlp(m, options={"max_iter": 3000, "tol": 1e-10})
            t_ip = time.perf_counter() - t
            sol = extract_solution(m, v, inst)
            evi = evaluate(v, inst, sol)
            obj_ip = evi.objective if evi.feasible else float("nan")
            _row([vname, f"{N}×{M}", t_fp, r.iterations, ev.objective, f"{t_ip:.3g} ({nr.compile_time_s:.3g})", nr.iterations,
                  obj_ip, nr.status + ("" if evi.feasible else f", infeasible {evi.max_violation:.1e}"),
                  (obj_ip - ev.objective) / ev.objective])


def targets(reps=3):
    print("\n### liu-zhao wall time through mecsplit.solve.solve (targets: 50×10 ≤ 1 s, 1000×50 ≤ 60 s)\n")
    print("| variant | N×M | wall time [s] (median of reps) | all reps [s] | outer cycles | association LP solves | verdict (last rep) |")
    print("|---|---|---|---|---|---|---|")
    for vname in VARIANTS:
        v = load_variant(vname)
        for (N, M), k in (((50, 10), reps), ((1000, 50), 1)):
            ts, res = [], None
            for s in range(k):
                inst = generate(v, N, M, seed=s)
                res = solve(v, inst, "liu-zhao", seed=s)
                ts.append(res.wall_time_s)
            lps = sum(c["lp_solves"] for c in res.extra.get("cccp", []))
            _row([vname, f"{N}×{M}", float(np.median(ts)), ", ".join(f"{t:.2f}" for t in ts), res.iterations, lps,
                  f"{res.verification['verdict']}, objective {res.objective:.6g}"])
            if N == 1000 and res.wall_time_s > 60:   # the same with the framework's time limit
                res = solve(v, inst, "liu-zhao", seed=0, time_limit_s=55.0)
                lps = sum(c["lp_solves"] for c in res.extra.get("cccp", []))
                _row([vname, f"{N}×{M}, time_limit_s=55", res.wall_time_s, f"{res.wall_time_s:.2f}", res.iterations, lps,
                      f"{res.verification['verdict']}, objective {res.objective:.6g}"])


def scaling(max_users=1000, vname="default"):
    print(f"\n### liu-zhao wall time vs users ({vname}, M = max(10, N/20), seed 0)\n")
    print("| users | servers | wall time [s] | s per user | outer cycles | FP iterations (per step) | LP solves |")
    print("|---|---|---|---|---|---|---|")
    v = load_variant(vname)
    Ns, Ts = [], []
    for N in (50, 100, 200, 500, 1000):
        if N > max_users:
            break
        M = max(10, N // 20)
        inst = generate(v, N, M, seed=0)
        r = solve(v, inst, "liu-zhao", seed=0)
        assert r.verification["verdict"] == "ok"
        Ns.append(N)
        Ts.append(r.wall_time_s)
        _row([N, M, r.wall_time_s, r.wall_time_s / N, r.iterations, str(r.extra["fp_iterations"]),
              sum(c["lp_solves"] for c in r.extra["cccp"])])
    if len(Ns) >= 2:
        k = np.polyfit(np.log(Ns), np.log(Ts), 1)[0]
        print(f"\nfitted exponent: wall time ∝ N^{k:.2f} (N = {Ns[0]}..{Ns[-1]})")


ASSOCIATION = (("faithful: capped start + CCCP (liu-zhao)", "liu-zhao", {}),
               ("uncapped start + CCCP", "liu-zhao", {"start": "uncapped"}),
               ("CCCP, tentative = current", "liu-zhao", {"tentative": "current"}),
               ("capped start + load moves (liu-zhao-load)", "liu-zhao-load", {}),
               ("uncapped start + load moves", "liu-zhao-load", {"start": "uncapped"}),
               ("greedy-fp (the start alone)", "greedy-fp", {}))


def association(vname="hardware-2024", seeds=(1, 2, 3, 4), size=(50, 10), exact_limit=120.0, rel_gap=1e-6):
    """Each method's gap to the certified optimum (exact at ``rel_gap``), its time, its server loads;
    every result verified by the evaluator."""
    v = load_variant(vname)
    N, M = size
    print(f"\n### Association against the certified optimum ({vname}, {N}×{M}, ⌈N/M⌉ = {-(-N // M)})\n")
    print("| seed | method | objective | gap to optimum | time [s] | users per server (min–max) | verdict |")
    print("|---|---|---|---|---|---|---|")
    gaps = {name: [] for name, _, _ in ASSOCIATION}
    for seed in seeds:
        inst = generate(v, N, M, seed=seed)
        ex = solve(v, inst, "exact", {"rel_gap": rel_gap}, exact_limit, seed=seed)
        cnt = np.bincount(ex.solution["server"], minlength=M)
        _row([seed, f"exact ({ex.status}, proven gap {ex.gap:.1e})", ex.objective, "0", ex.wall_time_s,
              f"{cnt.min()}–{cnt.max()}", ex.verification["verdict"]])
        assert ex.status == "optimal" and ex.verification["verdict"] == "ok", "not certified: raise --exact-limit"
        for name, solver, opts in ASSOCIATION:
            r = solve(v, inst, solver, opts, 60.0, seed=seed)
            assert r.verification["verdict"] == "ok", (name, r.verification)
            g = (r.objective - ex.objective) / ex.objective
            gaps[name].append(g)
            cnt = np.bincount(r.solution["server"], minlength=M)
            _row([seed, name, r.objective, f"{100 * g:.3g} % ({1 + g:.3g}×)", r.wall_time_s, f"{cnt.min()}–{cnt.max()}",
                  r.verification["verdict"]])
    print(f"\n| method | median gap | worst gap | seeds within 0.01 % |\n|---|---|---|---|")
    for name, g in gaps.items():
        _row([name, f"{100 * float(np.median(g)):.3g} %", f"{100 * max(g):.3g} %", f"{sum(x <= 1e-4 for x in g)}/{len(g)}"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--section", action="append", choices=["convex", "targets", "scaling", "association"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4], help="instance seeds of the association section")
    ap.add_argument("--exact-limit", type=float, default=120.0, help="association: exact's time limit (s)")
    ap.add_argument("--rel-gap", type=float, default=1e-6, help="association: exact's relative gap")
    ap.add_argument("--max-users", type=int, default=1000)
    ap.add_argument("--variant", default="default", help="variant of the scaling and association sections")
    args = ap.parse_args(argv)
    sec = args.section or ["convex", "targets", "scaling"]
    t0 = time.perf_counter()
    if "convex" in sec:
        convex()
    if "targets" in sec:
        targets()
    if "scaling" in sec:
        for vn in ([args.variant] if args.variant != "all" else ["default", "hardware-2024"]):
            scaling(args.max_users, vn)
    if "association" in sec:
        association(args.variant, args.seeds, exact_limit=args.exact_limit, rel_gap=args.rel_gap)
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
