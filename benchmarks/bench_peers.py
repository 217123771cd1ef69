"""Peer solvers on tiny instances: SCIP (raw vs perspective formulation), MindtPy OA, and enumeration.

    python benchmarks/bench_peers.py                       # default variant, 32 layers, 60 s limit
    python benchmarks/bench_peers.py --layers 4 --time-limit 60 --sizes 1x1,2x1,2x2,3x2,4x2 --out peers.json

Every cell runs in its own process with a hard wall-clock kill at limit + grace (SCIP can overrun its own
limit). Columns: wall time (s, whole solve incl. model build), status, verified incumbent (evaluator's
objective), bound (exact solvers only), gap = (incumbent - bound)/|incumbent|, verdict.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CELLS = [("scip", {"formulation": "raw"}, "scip raw"), ("scip", {"formulation": "perspective"}, "scip perspective"),
         ("mindtpy-oa", {}, "mindtpy-oa"), ("enumerate", {}, "enumerate")]


def one_cell(args) -> dict:
    from mecsplit.instance import generate
    from mecsplit.solve import solve
    from mecsplit.variant import load_variant

    ov = {"blocks": {"llm": {"layers": args.layers}}} if args.layers else None
    v = load_variant(args.variant, overrides=ov)
    N, M = map(int, args.cell_size.split("x"))
    inst = generate(v, N, M, seed=args.seed)
    r = solve(v, inst, args.cell_solver, json.loads(args.cell_options), time_limit_s=args.time_limit)
    return {"status": r.status.value, "objective": r.objective, "bound": r.bound, "gap": r.gap,
            "wall_s": r.wall_time_s, "verdict": r.verification["verdict"], "flags": r.verification["flags"],
            "message": r.message[:200], "nodes": r.extra.get("nodes"), "assignments": r.extra.get("assignments"),
            "scip_bound": r.extra.get("scip_bound"), "mindtpy_lb": r.extra.get("mindtpy_lb")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="default")
    ap.add_argument("--layers", type=int, default=0, help="override llm.layers (0: the variant's own)")
    ap.add_argument("--sizes", default="1x1,2x1,2x2,3x2,4x2")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=60.0, help="per cell, s")
    ap.add_argument("--grace", type=float, default=60.0, help="s past the limit before the cell is killed")
    ap.add_argument("--solvers", default=",".join(c[2] for c in CELLS))
    ap.add_argument("--out", default="")
    ap.add_argument("--cell-size", help=argparse.SUPPRESS)
    ap.add_argument("--cell-solver", help=argparse.SUPPRESS)
    ap.add_argument("--cell-options", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cell_size:
        print("RESULT " + json.dumps(one_cell(args)))
        return
    want = set(args.solvers.split(","))
    rows = []
    print(f"# variant {args.variant}, layers {args.layers or 'variant default'}, seed {args.seed}, "
          f"time limit {args.time_limit:g} s\n")
    print("| size | solver | wall (s) | status | incumbent | bound | gap | verdict | SCIP's own bound / MindtPy LB (not certified) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        for solver, opts, label in CELLS:
            if label not in want:
                continue
            cmd = [sys.executable, __file__, "--variant", args.variant, "--layers", str(args.layers), "--seed", str(args.seed),
                   "--time-limit", str(args.time_limit), "--cell-size", size, "--cell-solver", solver,
                   "--cell-options", json.dumps(opts)]
            t0 = time.perf_counter()
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.time_limit + args.grace)
                line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
                res = json.loads(line[-1][7:]) if line else {"status": "crash", "message": p.stderr[-300:]}
            except subprocess.TimeoutExpired:
                res = {"status": "killed", "message": f"no answer {args.time_limit + args.grace:g} s after start"}
            res.setdefault("wall_s", time.perf_counter() - t0)
            res.update(size=size, solver=label)
            rows.append(res)
            f = lambda x, d=6: "–" if x is None else (f"{x:.{d}f}" if isinstance(x, float) else str(x))  # noqa: E731
            print(f"| {size} | {label} | {res['wall_s']:.2f} | {res['status']} | {f(res.get('objective'))} | "
                  f"{f(res.get('bound'))} | {f(res.get('gap'), 2) if res.get('gap') is None else format(res['gap'], '.2e')} | "
                  f"{res.get('verdict', '–')} | {f(res.get('scip_bound') if res.get('scip_bound') is not None else res.get('mindtpy_lb'))} |",
                  flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"args": vars(args), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
