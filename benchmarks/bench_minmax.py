"""The min–max-delay path of the exact plugin (sft-2025, splitllm-2025; docs/exact.md §8–§9), this checkout
against another one in the same run.

    python benchmarks/bench_minmax.py --cases sft-2025:20x1:0 splitllm-2025:20x4:2 --limit 60 \
        [--peer /tmp/levels-old] [-o table.md]

Each case runs in its own process, one at a time (this checkout, then the peer's, when ``--peer`` names
a checkout whose ``framework`` and ``plugins/mecsplit-exact`` are put first on PYTHONPATH), at
rel_gap 1e-6. Prints a markdown table: status, CPU s (user + system of the solving process — the number
that survives other jobs on a shared machine), wall s, objective, bound, gap, the framework's
verification verdict, and the CPU ratio peer / this where both certified. ``uptime``'s load is printed
with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ONE = """
import json, sys, time
from mecsplit.instance import generate
from mecsplit.solve import solve
from mecsplit.variant import load_variant
variant, n, m, seed, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
v = load_variant(variant)
inst = generate(v, n, m, seed=seed)
c0, w0 = time.process_time(), time.perf_counter()
r = solve(v, inst, "exact", {"rel_gap": 1e-6}, time_limit_s=limit)
print(json.dumps({"status": r.status.value, "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - w0,
                  "objective": r.objective, "bound": r.bound, "verdict": r.verification.get("verdict")}))
"""


def one(case, limit, root=None):
    variant, size, seed = case.split(":")
    n, m = size.lower().split("x")
    env = dict(os.environ)
    if root:
        env["PYTHONPATH"] = os.pathsep.join([f"{root}/framework", f"{root}/plugins/mecsplit-exact"])
    out = subprocess.run([sys.executable, "-c", ONE, variant, n, m, seed, str(limit)], env=env,
                         capture_output=True, text=True)
    if out.returncode:
        return {"status": "error: " + out.stderr.strip().splitlines()[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def row(case, who, r):
    if "cpu_s" not in r:
        return f"| {case} | {who} | {r['status']} | | | | | | |"
    obj, bd = r["objective"], r["bound"]
    gap = (obj - bd) / abs(obj) if obj is not None and bd is not None else None
    f = lambda x, p=".7g": "" if x is None else format(x, p)  # noqa: E731
    return (f"| {case} | {who} | {r['status']} | {r['cpu_s']:.1f} | {r['wall_s']:.1f} | {f(obj)} | {f(bd)} | "
            f"{f(gap, '.2e')} | {r['verdict']} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", required=True, help="variant:NxM:seed ...")
    ap.add_argument("--limit", type=float, default=60.0, help="time limit per solve (s, wall)")
    ap.add_argument("--peer", help="another checkout to run the same cases with")
    ap.add_argument("-o", "--out", help="also write the table here")
    a = ap.parse_args(argv)
    lines = ["| case | code | status | CPU s | wall s | objective | bound | gap | verdict |", "|---|---|---|---|---|---|---|---|---|"]
    ratios = []
    for case in a.cases:
        new = one(case, a.limit)
        lines.append(row(case, "this", new))
        print(lines[-1], flush=True)
        if a.peer:
            old = one(case, a.limit, a.peer)
            lines.append(row(case, "peer", old))
            print(lines[-1], flush=True)
            if new.get("status") == old.get("status") == "optimal":
                ratios.append(f"{case}: peer/this CPU = {old['cpu_s'] / new['cpu_s']:.2f}")
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    text = "\n".join(lines + [""] + ratios + [f"load after: {load}"])
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
