"""Reproduce the orderings of Liu & Zhao (MobiHoc'24) Figs. 2-5 with the mecsplit-liuzhao solvers.

Every run goes through ``mecsplit.solve.solve`` (the framework's evaluator); a flagged result aborts.

    python benchmarks/liuzhao_figures.py                       # all figures, variant "default", 3 seeds
    python benchmarks/liuzhao_figures.py --fig 3 --variant hardware-2024
    python benchmarks/liuzhao_figures.py --fig 4 --seeds 2

Output: markdown tables (means over seeds). Units: energy J (total over users), delay s (average
per user, one training iteration), stability = mean AS_n bound (dimensionless).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from mecsplit.instance import generate
from mecsplit.solve import solve
from mecsplit.variant import load_variant

METRIC = {"energy": ("total_energy_J", "J"), "delay": ("avg_delay_s", "s"), "stability": ("mean_stability", "1")}


def run(variant, inst, solver, seed=0, options=None):
    r = solve(variant, inst, solver, options=options, seed=seed)
    if r.verification["verdict"] != "ok" or r.status.value != "feasible":
        sys.exit(f"{solver} on {variant.name} {inst.N}x{inst.M} seed {inst.seed}: {r.status.value} {r.verification} {r.message}")
    return r


def table(title, header, rows):
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r) + " |")
    sys.stdout.flush()


def ordering(means: dict) -> str:
    """Best first; methods within 1e-6 (relative) of each other are joined by "=" (ties)."""
    items = sorted(means.items(), key=lambda kv: kv[1])
    out = items[0][0]
    for (k0, v0), (k, v) in zip(items, items[1:]):
        out += (" = " if abs(v - v0) <= 1e-6 * max(abs(v), abs(v0)) else " < ") + k
    return out


def fig3(vname, seeds, N, M, weights):
    methods = ("liu-zhao", "ao", "alpha-only", "resources-only")
    for ledger in ("energy", "delay", "stability"):
        key, unit = METRIC[ledger]
        rows, orders = [], []
        for w in weights:
            v = load_variant(vname, overrides={"objective": {"weights": {ledger: float(w)}}})
            vals = {m: [] for m in methods}
            for s in range(seeds):
                inst = generate(v, N, M, seed=s)
                for m in methods:
                    vals[m].append(run(v, inst, m, seed=s).metrics[key])
            means = {m: statistics.fmean(x) for m, x in vals.items()}
            rows.append([w, *[means[m] for m in methods], ordering(means)])
        table(f"Fig. 3 ({ledger}): {key} [{unit}] vs w_{ledger} ({vname}, {N}x{M}, {seeds} seeds)",
              [f"w_{ledger}", *methods, "ordering (best first)"], rows)


def fig5(vname, seeds, users, M):
    methods = ("liu-zhao", "greedy-fp", "random-fp")
    v = load_variant(vname)
    for ledger in ("energy", "delay"):
        key, unit = METRIC[ledger]
        rows = []
        for N in users:
            vals = {m: [] for m in methods}
            for s in range(seeds):
                inst = generate(v, N, M, seed=s)
                for m in methods:
                    vals[m].append(run(v, inst, m, seed=s).metrics[key])
            means = {m: statistics.fmean(x) for m, x in vals.items()}
            rows.append([N, *[means[m] for m in methods], ordering(means)])
        table(f"Fig. 5 ({ledger}): {key} [{unit}] vs users ({vname}, M={M}, {seeds} seeds)",
              ["users", *methods, "ordering (best first)"], rows)


def fig5_objective(vname, seeds, users, M):
    methods = ("liu-zhao", "greedy-fp", "random-fp")
    v = load_variant(vname)
    rows = []
    for N in users:
        vals = {m: [] for m in methods}
        for s in range(seeds):
            inst = generate(v, N, M, seed=s)
            for m in methods:
                vals[m].append(run(v, inst, m, seed=s).objective)
        means = {m: statistics.fmean(x) for m, x in vals.items()}
        rows.append([N, *[means[m] for m in methods], ordering(means)])
    table(f"Fig. 5 (objective the solvers minimise) vs users ({vname}, M={M}, {seeds} seeds)",
          ["users", *methods, "ordering (best first)"], rows)


MULTI = {"inits": "relaxed,local,edge"}   # liu-zhao restarted from its own start and both pinned baselines


def fig2(vname, seeds, users, M):
    methods = {"liu-zhao": ("liu-zhao", None), "liu-zhao-3inits": ("liu-zhao", MULTI),
               "local-only": ("local-only", None), "edge-only": ("edge-only", None)}
    v = load_variant(vname)
    rows = []
    keys = ("objective", "energy", "delay")
    for N in users:
        vals = {(m, k): [] for m in methods for k in keys}
        for s in range(seeds):
            inst = generate(v, N, M, seed=s)
            for m, (solver, opts) in methods.items():
                r = run(v, inst, solver, seed=s, options=opts)
                vals[(m, "objective")].append(r.objective)
                vals[(m, "energy")].append(r.metrics["total_energy_J"])
                vals[(m, "delay")].append(r.metrics["avg_delay_s"])
        rows.append([N, *[statistics.fmean(vals[(m, k)]) for k in keys for m in methods]])
    table(f"Fig. 2: collaborative (liu-zhao) vs local-only (α=Υ−1) vs edge-only (α=1) ({vname}, M={M}, {seeds} seeds)",
          ["users", *[f"{k}{' [' + METRIC[k][1] + ']' if k in METRIC else ''} {m}" for k in keys for m in methods]], rows)


def fig4(vname, seeds, N, servers):
    v = load_variant(vname)
    rows = []
    for M in servers:
        per_start, lp, first_moves, cyc = [], [], [], []
        for s in range(seeds):
            inst = generate(v, N, M, seed=s)
            r = run(v, inst, "liu-zhao", seed=s)
            c0 = r.extra["cccp"][0]
            per_start += [st["iterations"] for st in c0["starts"]]
            lp.append(c0["lp_solves"])
            first_moves.append(c0["moved"])
            cyc.append(len(r.extra["cccp"]))
        rows.append([M, statistics.fmean(per_start), max(per_start), statistics.fmean(lp),
                     statistics.fmean(first_moves), statistics.fmean(cyc)])
    table(f"Fig. 4: CCCP association-step convergence, {N} users ({vname}, {seeds} seeds; first association step)",
          ["servers", "mean LP iterations per start", "max per start", "LP solves per step (all starts)",
           "users moved", "association steps until no decrease"], rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fig", action="append", choices=["2", "3", "4", "5"], help="figures to run (default all)")
    ap.add_argument("--variant", default="default")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--weights", default="1,2,4,6,8,10", help="Fig. 3 weight grid (the paper: 1..10)")
    args = ap.parse_args(argv)
    figs = args.fig or ["2", "3", "4", "5"]
    t0 = time.perf_counter()
    print(f"# Liu & Zhao figures on variant {args.variant!r} (benchmarks/liuzhao_figures.py)")
    if "3" in figs:
        fig3(args.variant, args.seeds, 50, 10, [float(w) for w in args.weights.split(",")])
    if "5" in figs:
        fig5(args.variant, args.seeds, (10, 20, 30, 40, 50, 60), 10)
        fig5_objective(args.variant, args.seeds, (10, 20, 30, 40, 50, 60), 10)
    if "2" in figs:
        fig2(args.variant, args.seeds, (10, 30, 50), 10)
    if "4" in figs:
        fig4(args.variant, args.seeds, 100, (2, 5, 10, 20))
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
