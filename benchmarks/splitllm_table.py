"""Tables of docs/splitllm.md from a store that ran the `splitllm-figures` suite.

    mecsplit bench run splitllm-figures --workers 2 --db bench-results/splitllm.sqlite
    python benchmarks/splitllm_table.py --db bench-results/splitllm.sqlite

Every number is the mean over the suite's seeds of the evaluator's metrics of verified results only
(verdict "ok"); a scheme with a missing or unverified cell is reported as such. Peak memory in GB
(1e9 bytes), delay = the variant's max_delay objective, s (one training iteration, all users).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
from collections import defaultdict

SCHEMES = [("splitllm", "SplitLLM, three tiers (Zhang et al. 2025)"),
           ("sl", "two-tier SL (Gupta & Raskar 2018)"),
           ("sfl", "SFL, one server-side model per user (Thapa et al. 2022)"),
           ("device", "device-only LoRA (Zhang et al. 2024)"),
           ("cloud", "cloud-centric (Hu et al. 2022)")]
TIERS = ("device", "edge", "cloud", "overall")


def load(db, suite):
    con = sqlite3.connect(db)
    rows = con.execute("SELECT m.grp, m.label, r.n_users, r.n_servers, r.seed, r.solver, r.verdict, r.status, r.objective, "
                       "r.wall_time_s, r.result_json, r.ref_key FROM membership m JOIN results r ON r.cell_hash = m.cell_hash "
                       "WHERE m.suite = ? AND m.role = 'cell'", (suite,)).fetchall()
    out = defaultdict(list)
    for grp, label, n, mm, seed, solver, verdict, status, obj, wall, rj, ref in rows:
        met = json.loads(rj).get("metrics") or {}
        out[grp].append({"label": label, "N": n, "M": mm, "seed": seed, "solver": solver, "ok": verdict == "ok",
                         "status": status, "objective": obj, "wall": wall, "metrics": met, "ref_key": ref})
    return out


def mean_metrics(cells, N=None):
    sel = [c for c in cells if N is None or c["N"] == N]
    if not sel or not all(c["ok"] for c in sel):
        return None, len(sel), sum(not c["ok"] for c in sel)
    keys = [f"peak_memory_GB.{t}" for t in TIERS] + ["max_delay_s", "wall"]
    return {k: statistics.fmean(c["wall"] if k == "wall" else c["metrics"][k] for c in sel) for k in keys}, len(sel), 0


def fmt(x, nd=3):
    return "n/a" if x is None else f"{x:.{nd}g}"


def table(title, header, rows):
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")


def reduction(ours, theirs):
    return "n/a" if not theirs else f"{100 * (1 - ours / theirs):+.1f} %"


def scheme_tables(groups, prefix, N, what):
    res = {tag: mean_metrics(groups.get(f"{prefix}-{tag}", []), N) for tag, _ in SCHEMES}
    rows = []
    for tag, title in SCHEMES:
        m, n, bad = res[tag]
        if m is None:
            rows.append([title] + [f"missing ({n} cells, {bad} unverified)"] * 6)
            continue
        rows.append([title] + [fmt(m[f"peak_memory_GB.{t}"]) for t in TIERS] + [fmt(m["max_delay_s"], 4), fmt(m["wall"], 2)])
    table(f"{what}: mean of {res['splitllm'][1]} seeds, {N} users × 4 edges", ["scheme", "device GB", "edge GB",
          "cloud GB", "overall peak GB", "max delay s", "solve s"], rows)
    ours = res["splitllm"][0]
    if ours is None:
        return
    rows = []
    for tag, title in SCHEMES[1:]:
        m = res[tag][0]
        if m is None:
            continue
        srv = lambda x: max(x["peak_memory_GB.edge"], x["peak_memory_GB.cloud"])   # noqa: E731
        rows.append([title, reduction(ours["peak_memory_GB.overall"], m["peak_memory_GB.overall"]),
                     reduction(srv(ours), srv(m)), reduction(ours["peak_memory_GB.edge"], m["peak_memory_GB.edge"]),
                     reduction(ours["peak_memory_GB.device"], m["peak_memory_GB.device"]),
                     f"{100 * (ours['max_delay_s'] / m['max_delay_s'] - 1):+.1f} %"])
    table(f"{what}: SplitLLM's peak-memory reduction against each baseline (1 − ours/theirs; negative = more memory) "
          "and its delay cost (ours/theirs − 1)", ["baseline", "overall peak", "fullest server (edge or cloud)", "edge",
                                                   "device", "delay cost"], rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="bench-results/splitllm.sqlite")
    ap.add_argument("--suite", default="splitllm-figures")
    a = ap.parse_args()
    g = load(a.db, a.suite)
    scheme_tables(g, "users", 20, "Delay-optimal points (objective max_delay), LLaMA-2-7B")
    scheme_tables(g, "memory", 20, "Least-peak points (objective peak_memory), LLaMA-2-7B")
    for mtag, mname in (("gpt2-xl", "GPT-2 XL"), ("llama32-3b", "LLaMA-3.2-3B")):
        scheme_tables(g, f"model-{mtag}", 20, f"Delay-optimal points, {mname}")
    sizes = sorted({c["N"] for c in g.get("users-splitllm", [])})
    rows = []
    for tag, title in SCHEMES:
        cells = g.get(f"users-{tag}", [])
        r = [title]
        for N in sizes:
            m = mean_metrics(cells, N)[0]
            r.append("n/a" if m is None else f"{m['peak_memory_GB.overall']:.3g} GB / {m['max_delay_s']:.3g} s")
        rows.append(r)
    table("Overall peak memory / max delay vs the number of users (4 edges, delay-optimal, mean over seeds)",
          ["scheme"] + [f"N = {N}" for N in sizes], rows)
    # the `gap` group is in the suite report's headline (gap to exact's certified optimum)


if __name__ == "__main__":
    main()
