"""Size vs time-to-certify (and gap at the limit) of the exact plugin, with SCIP and Gurobi as anchors.

    python benchmarks/bench_exact.py --sizes 10x3 50x10 200x20 1000x50 --seeds 0 1 --limit 60 \
        --scip-sizes 2x1 3x2 4x2 --scip-limit 60 [--anchors scip gurobi] [--variant default] [-o table.md]

Prints a markdown table: per (solver, size, seed) the status, wall time (s), CPU time (s: user + system
of this process, every thread included, and of its child processes — the measure that survives other jobs on a shared machine),
objective, bound, gap, nodes and the framework's verification verdict. The anchors run through the ``scip`` and ``gurobi``
solvers of plugins/mecsplit-peers when installed, else they are skipped (noted in the table); Gurobi
with Threads = 1, every solve one at a time. On the anchor sizes (``--scip-sizes``) the exact plugin
runs first and each anchor's optimum and bound are cross-checked against it (``agree`` rows: a bound
above the other's verified objective by more than 1e-6 relative, or two certified optima apart by
more than 1e-6), and a last table gives each anchor's time as a multiple of exact's (where both
certified) or its gap at the limit. With ``--solver-seeds`` every exact run of ``--sizes`` is repeated
with each of those solve seeds (HiGHS' random seed and the neighbourhood search's draws: another path
through the same search), and a last table gives per instance the median and slowest time to the
certificate over them.
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import sys
import time

from mecsplit.errors import InputError
from mecsplit.instance import generate
from mecsplit.plugins import get_manager
from mecsplit.result import relative_gap
from mecsplit.solve import solve
from mecsplit.variant import load_variant


def whole(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"got {s!r} (allowed: a whole number ≥ 0)")
    return v


def size(s: str) -> tuple[int, int]:
    n, m = s.lower().split("x")
    return int(n), int(m)


GAPS = (1e-4, 1e-5, 1e-6)


def time_to_gap(r, g):
    """First time in the trace at which incumbent − bound ≤ g·|incumbent| (a certificate at
    relative tolerance g), or None. Trace bounds above the final reported bound are not trusted
    (a solver whose final certificate was withdrawn, e.g. SCIP failing the score check, gets none),
    except within 1e-9 of it (HiGHS' final dual bound can sit ~1e-11 below the last one it streamed:
    exact at default 50×10 seed 0 with mip_pscost_minreliable 8); those count as the final bound."""
    final = r.bound if r.bound is not None else -float("inf")
    for t in r.trace:
        inc, lb = t.get("incumbent"), t.get("bound")
        if lb is not None and lb <= final + 1e-9 * abs(final):
            lb = min(lb, final)
            if (rg := relative_gap(inc, lb)) is not None and rg <= g:
                return t["t_s"]
    return None


def row(solver, n, m, seed, r, cpu):
    nodes = r.extra.get("nodes", r.iterations) if isinstance(r.extra, dict) else r.iterations
    f = lambda x, p=10: "—" if x is None else f"{x:.{p}g}"
    gap = "—" if r.gap is None else f"{100 * r.gap:.2e} %"
    tg = " | ".join("—" if (x := time_to_gap(r, g)) is None else f"{x:.2f}" for g in GAPS)
    return (f"| {solver} | {n}×{m} | {seed} | {r.status.value if hasattr(r.status, 'value') else r.status} | "
            f"{r.wall_time_s:.2f} | {cpu:.2f} | {f(r.objective)} | {f(r.bound)} | {gap} | {tg} | {nodes} | {r.verification['verdict']} |")


def cpu_timed(fn, *args, **kw):
    """(fn(*args, **kw), its CPU seconds: user + system of this process, every thread (HiGHS') included, and
    of the child processes it waited for (exact's incumbent worker on a second core))."""
    def used():
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + ch.ru_utime + ch.ru_stime

    c0 = used()
    out = fn(*args, **kw)
    return out, used() - c0


def profiled(outdir, name, fn, *args, **kw):
    """fn(*args, **kw), under cProfile with CPU time (process_time: robust to other jobs on the machine) when
    ``outdir`` is set; the stats go to outdir/name.pstats and the top 25 by cumulative time to stderr."""
    if not outdir:
        return fn(*args, **kw)
    import cProfile
    import os
    import pstats

    os.makedirs(outdir, exist_ok=True)
    prof = cProfile.Profile(time.process_time)
    out = prof.runcall(fn, *args, **kw)
    prof.dump_stats(os.path.join(outdir, f"{name}.pstats"))
    print(f"--- profile {name} (CPU s)", file=sys.stderr)
    pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    return out


def cross_check(anchor, re_, ra):
    """Disagreements between exact's result and an anchor's (both verified by the framework)."""
    bad = []
    if ra.objective is not None and re_.bound is not None and re_.bound > ra.objective * (1 + 1e-6):
        bad.append(f"exact bound > {anchor} objective")
    if ra.bound is not None and re_.objective is not None and ra.bound > re_.objective * (1 + 1e-6):
        bad.append(f"{anchor} bound > exact objective")
    if ra.status.value == "optimal" and re_.status.value == "optimal" and \
            abs(ra.objective - re_.objective) > 1e-6 * abs(re_.objective):
        bad.append("optima differ")
    if ra.bound is not None and re_.objective is not None and ra.bound > re_.objective:
        bad.append(f"({anchor} bound exceeds exact's objective by {ra.bound / re_.objective - 1:.1e} relative)")
    return bad


def ratio(re_, ra, cpu_e, cpu_a):
    if ra.status.value == "optimal" and re_.status.value == "optimal":
        return (f"{ra.wall_time_s / re_.wall_time_s:.3g}× ({ra.wall_time_s:.2f} s vs {re_.wall_time_s:.2f} s); "
                f"CPU {cpu_a / max(cpu_e, 1e-9):.3g}× ({cpu_a:.2f} s vs {cpu_e:.2f} s)")
    gap = "—" if ra.gap is None else f"{ra.gap:.1e}"
    return f"{ra.status.value} at {ra.wall_time_s:.0f} s, gap {gap} (exact {re_.status.value} in {re_.wall_time_s:.2f} s)"


def note(r):
    """The exact run's structure, for the row's comment."""
    if "dinkelbach_steps" in r.extra:   # ratio objective (docs/exact.md §6): one exact solve per step
        steps = ", ".join(f"{x['status']}/{x['oa_rounds']}" for x in r.extra["inner"])
        return f"Dinkelbach steps {r.extra['dinkelbach_steps']} (status/oa rounds: {steps})"
    return (f"root bound {r.extra.get('root_bound')}, root {r.extra.get('root_time_s')} s, "
            f"oa rounds {r.extra.get('oa_rounds')}, oa options {r.extra.get('oa_options')}")


class Parser(argparse.ArgumentParser):
    def error(self, message):   # one line, exit 2
        self.exit(2, f"bench_exact.py: {message}\n")


def main(argv=None):
    ap = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="default")
    ap.add_argument("--sizes", nargs="*", default=["10x3", "50x10", "200x20", "1000x50"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--limit", type=float, default=60.0, help="time limit per exact run (s)")
    ap.add_argument("--limits", nargs="*", type=float, default=None, help="per-size time limits (s), overrides --limit")
    ap.add_argument("--scip-sizes", nargs="*", default=["2x1", "3x2", "4x2"], help="sizes on which the anchors run")
    ap.add_argument("--scip-limit", type=float, default=60.0, help="time limit per anchor run (s)")
    ap.add_argument("--anchors", nargs="*", default=["scip", "gurobi"], choices=("scip", "gurobi"))
    ap.add_argument("--rel-gap", type=float, default=1e-7)
    ap.add_argument("--method", default="oa", choices=("oa", "bnb"),
                    help="exact's method: outer-approximation MILP (oa) or Lagrangian branch-and-bound (bnb)")
    ap.add_argument("--local-search", default="on", choices=("on", "off"),
                    help="exact's local search for incumbents (off: the ablation)")
    ap.add_argument("--second-core", default="on", choices=("on", "off"),
                    help="exact's incumbent worker on a second core, 2,000–5,000 user–server pairs (off: the ablation)")
    ap.add_argument("--colgen", default="off", choices=("off", "root", "all"),
                    help="exact's server-subset (set-partitioning) bound: off | root | all nodes")
    ap.add_argument("--highs-threads", type=whole, default=None,
                    help="exact's highs_threads (HiGHS' threads; default 1, 0: HiGHS' own choice)")
    ap.add_argument("--solver-seeds", nargs="+", type=whole, default=None,
                    help="repeat each exact run of --sizes with these solve seeds (default: the instance's seed)")
    ap.add_argument("--node-limit", type=int, default=None,
                    help="exact's node_limit (oa: HiGHS nodes per MILP round; 1 stops right after the root)")
    ap.add_argument("--profile", default=None, metavar="DIR",
                    help="profile each exact run of --sizes (cProfile, CPU time): DIR/exact-NxM-seedS-solverT.pstats, top functions to stderr")
    ap.add_argument("-o", "--output", default=None)
    a = ap.parse_args(argv)
    try:
        return run(a)
    except InputError as e:   # a variant, option or size the framework refuses: one line
        print(f"bench_exact.py: {e}", file=sys.stderr)
        return 2


def run(a):
    v = load_variant(a.variant)
    xopts = {"rel_gap": a.rel_gap, "colgen": a.colgen, "method": a.method, "local_search": a.local_search == "on",
             "second_core": a.second_core == "on"}
    if a.node_limit is not None:
        xopts["node_limit"] = a.node_limit
    if a.highs_threads is not None:
        xopts["highs_threads"] = a.highs_threads
    lines = [f"variant `{a.variant}`, exact method {a.method}, rel_gap {a.rel_gap:g}, colgen {a.colgen}, local search {a.local_search}, second core {a.second_core}, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; t(gap ≤ g): first time (s) the trace held a "
             "certificate at relative gap g", "",
             "| solver | size | seed | status | time (s) | CPU (s) | objective | bound | gap | t(gap ≤ 1e-4) | t(≤ 1e-5) | t(≤ 1e-6) | nodes | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    mgr = get_manager()
    ratios = []
    for s in a.scip_sizes:
        n, m = size(s)
        for seed in a.seeds:
            inst = generate(v, n, m, seed)
            re_, cpu_e = cpu_timed(solve, v, inst, "exact", xopts, time_limit_s=a.scip_limit, seed=seed)
            lines.append(row("exact", n, m, seed, re_, cpu_e))
            for anchor in a.anchors:
                if anchor not in mgr.solvers or mgr.solver(anchor).missing_requirements():
                    lines.append(f"| {anchor} | {n}×{m} | {seed} | not installed | | | | | | | | | | |")
                    continue
                opts = {"rel_gap": a.rel_gap} | ({"threads": 1} if anchor == "gurobi" else {})
                try:
                    ra, cpu = cpu_timed(solve, v, inst, anchor, opts, time_limit_s=a.scip_limit, seed=seed)
                except InputError as e:   # e.g. Gurobi's size-limited licence: "unavailable for this size"
                    lines.append(f"| {anchor} | {n}×{m} | {seed} | unavailable | | | | | | | | | | | <!-- {e.problem} -->")
                    ratios.append((anchor, n, m, seed, "unavailable (licence size limit)"))
                    continue
                lines.append(row(anchor, n, m, seed, ra, cpu))
                bad = cross_check(anchor, re_, ra)
                lines.append(f"| agree | {n}×{m} | {seed} | {'yes' if not bad else '; '.join(bad)} | | | | | | | | | | |")
                ratios.append((anchor, n, m, seed, ratio(re_, ra, cpu_e, cpu)))
            print("\n".join(lines[-1 - 2 * len(a.anchors):]), file=sys.stderr)
    spread = []   # (size, instance seed, times to the certificate over the solver seeds)
    for j, s in enumerate(a.sizes):
        n, m = size(s)
        lim = a.limits[j] if a.limits else a.limit
        for seed in a.seeds:
            inst = generate(v, n, m, seed)
            times = []
            for sseed in a.solver_seeds or [seed]:
                label = seed if a.solver_seeds is None else f"{seed} (solver {sseed})"
                r, cpu = cpu_timed(profiled, a.profile, f"exact-{n}x{m}-seed{seed}-solver{sseed}", solve, v, inst,
                                   "exact", xopts, time_limit_s=lim, seed=sseed)
                t = time_to_gap(r, a.rel_gap)
                times.append(math.inf if t is None else t)
                lines.append(row("exact", n, m, label, r, cpu) + f" <!-- limit {lim:g} s, {note(r)} -->")
                print(lines[-1], file=sys.stderr)
            spread.append((f"{n}×{m}", seed, times))
    if a.solver_seeds and len(a.solver_seeds) > 1:
        fmt = lambda x: "not certified" if math.isinf(x) else f"{x:.2f}"
        lines += ["", f"Exact's time (s) to a certificate at rel_gap {a.rel_gap:g} over solver seeds "
                  f"{' '.join(map(str, a.solver_seeds))} (not certified within the limit: counted as slower than any):", "",
                  "| size | seed | certified | median | slowest | each |", "|---|---|---|---|---|---|"]
        lines += [f"| {sz} | {seed} | {sum(map(math.isfinite, ts))}/{len(ts)} | {fmt(statistics.median(ts))} | {fmt(max(ts))} | "
                  f"{' / '.join(map(fmt, ts))} |" for sz, seed, ts in spread]
    if ratios:
        lines += ["", f"Anchor time ÷ exact time at rel_gap {a.rel_gap:g} (both certified; wall, then CPU), else the anchor's status and gap:", "",
                  "| anchor | size | seed | anchor ÷ exact |", "|---|---|---|---|"]
        lines += [f"| {an} | {n}×{m} | {seed} | {txt} |" for an, n, m, seed, txt in ratios]
    out = "\n".join(lines)
    print(out)
    if a.output:
        with open(a.output, "w") as fh:
            fh.write(out + "\n")


if __name__ == "__main__":
    sys.exit(main())
