"""Summary of a stored `sft-figures` run (docs/sft.md §5): per group and method, the mean expected delay,
traffic per round and device-memory use, and sft-alm's delay and traffic reduction against each method
(mean over the group's instances of 1 − sft-alm / method, verified results only).

    python benchmarks/sft_summary.py [--db bench-results/results.sqlite]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from collections import defaultdict

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="bench-results/results.sqlite")
    ap.add_argument("--suite", default="sft-figures")
    args = ap.parse_args()
    con = sqlite3.connect(args.db)
    rows = con.execute("""SELECT m.grp, r.solver, r.n_users, r.seed, r.overrides, r.wall_time_s, r.result_json FROM membership m
                          JOIN results r ON r.cell_hash = m.cell_hash WHERE m.suite = ? AND m.role = 'cell' AND r.verdict = 'ok'""",
                       (args.suite,)).fetchall()
    data = defaultdict(dict)           # (group, instance) -> solver -> metrics
    for grp, solver, n, seed, ov, wall, res in rows:
        m = json.loads(res)["metrics"]
        data[(grp, (n, seed, ov))][solver] = {**m, "wall_time_s": wall}
    groups = sorted({g for g, _ in data})
    print(f"{'group':16s} {'method':20s} {'n':>3s} {'delay s':>9s} {'Mbit/round':>11s} {'mem/cap':>8s} {'wall s':>7s} "
          f"{'alm delay red.':>15s} {'alm traffic red.':>17s}")
    for g in groups:
        inst = [v for (gg, _), v in data.items() if gg == g]
        methods = sorted({s for v in inst for s in v}, key=lambda s: (s != "sft-alm", s))
        for s in methods:
            pts = [v for v in inst if s in v]
            both = [v for v in pts if "sft-alm" in v]
            mean = lambda k: float(np.mean([v[s][k] for v in pts]))   # noqa: E731
            red = lambda k: float(np.mean([1 - v["sft-alm"][k] / v[s][k] for v in both])) if both else float("nan")  # noqa: E731
            print(f"{g:16s} {s:20s} {len(pts):3d} {mean('max_delay_s'):9.4g} {mean('comm_bit_per_round') / 1e6:11.4g} "
                  f"{mean('device_memory_of_cap_max'):8.3f} {mean('wall_time_s'):7.2f} {red('max_delay_s'):15.1%} "
                  f"{red('comm_bit_per_round'):17.1%}")


if __name__ == "__main__":
    main()
