"""Per-instance pages of a report (HTML): every method's result on one problem (instance + objective)
— the reference, a table of the methods, the gap of each incumbent and bound over time, and per method the
verifier's verdict, the metrics, the trace and the solution."""

from __future__ import annotations

import html
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from .doc import Cell, Doc, fmt, slug
from .headline import fmt_gap
from .plots import plot_convergence

PLOT_LIMIT = 40        # instances with a plot (a plot costs ~0.3 s; the seed figures have ~300 problems)
TRACE_ROWS = 400       # trace rows shown per method (first and last halves)


def page_name(ref_key: str) -> str:
    return f"instances/{ref_key}.html"


def method_anchor(label: str) -> str:
    return "m-" + slug(label)


def run_href(r: dict[str, Any]) -> str:
    """Link from the suite's report folder to the run's section on its instance page."""
    return f"{page_name(r['ref_key'])}#{method_anchor(r['label'])}"


def write_instance_pages(out: Path, rows: list[dict[str, Any]], refs_used: dict[str, dict], styles: dict,
                         plots: int = PLOT_LIMIT) -> int:
    """``out/instances/<ref_key>.html`` for every problem in ``rows`` (the first ``plots`` of them with
    a plot of the gap over time); returns the number written."""
    d = out / "instances"
    d.mkdir(parents=True, exist_ok=True)
    for old in d.iterdir():
        old.unlink()
    by_key: dict[str, dict[tuple, dict]] = defaultdict(dict)
    for r in rows:
        by_key[r["ref_key"]].setdefault((r["cell_hash"], r["label"]), r)
    for i, (key, runs) in enumerate(sorted(by_key.items())):
        _page(d, key, sorted(runs.values(), key=_order), refs_used.get(key), styles, plot=i < plots)
    return len(by_key)


def _order(r):
    return (r.get("gap_to_reference") is None, r["objective"] if r["verdict"] == "ok" and r["objective"] is not None
            else float("inf"), r["label"])


def _page(d: Path, key: str, runs: list[dict], ref: dict | None, styles: dict, plot: bool) -> None:
    r0 = runs[0]
    sweep = f", {r0['sweep_param']} weight {r0['sweep_value']:g}" if r0["sweep_param"] else ""
    doc = Doc(f"{r0['variant']} {r0['n_users']}x{r0['n_servers']}, seed {r0['seed']}{sweep}")
    doc.raw("<p><a href='../report.html'>← suite report</a></p>")
    doc.p(f"Problem {key} (instance {r0['instance_hash']}, overrides {json.dumps(r0['overrides'], sort_keys=True)}). "
          + (f"Reference: {ref['value']!r} ({ref['kind']}, by {ref['solver']}"
             + (f", proven relative gap ≤ {fmt(ref['gap'])}" if ref.get("gap") is not None else "")
             + (f", {fmt(ref['wall_time_s'])} s" if ref.get("wall_time_s") is not None else "") + ")."
             if ref else "No reference."))
    doc.table(["method", "role", "status", "objective", "gap to reference", "bound", "time (s)", "iterations",
               "verdict", "flags"],
              [[Cell(r["label"], href="#" + method_anchor(r["label"])), r["role"], r["status"] + ("*" if r["killed"] else ""),
                Cell(r["objective"], r["objective"] if r["objective"] is not None else float("nan")),
                Cell(fmt_gap(r.get("gap_to_reference")), r["gap_to_reference"] if r.get("gap_to_reference") is not None
                     else float("nan")),
                Cell(r["bound"], r["bound"] if r["bound"] is not None else float("nan")),
                r["wall_time_s"], r["iterations"], r["verdict"], ", ".join(r["flags"])] for r in runs])
    if plot and plot_convergence(runs, d / f"{key}.png", "this instance", styles, iterations=False):
        doc.img(f"{key}.png", "gap of each incumbent and bound to the reference vs time")
    for r in runs:
        res = r["result"]
        doc.h(2, r["label"], method_anchor(r["label"]))
        doc.p(f"solver {r['solver']}, options {r['options']}, time limit {fmt(r['time_limit_s'])} s; status {r['status']}"
              f"{' (killed at the hard limit)' if r['killed'] else ''}; {res.get('message') or ''}")
        ver = res.get("verification") or {}
        viol = {k: v for k, v in (ver.get("violations") or {}).items() if v}
        doc.table(["verification", "value"],
                  [[Cell(k), Cell(json.dumps(ver.get(k)) if isinstance(ver.get(k), (list, dict)) else ver.get(k))]
                   for k in ("verdict", "feasible", "max_violation", "objective_evaluated", "objective_agrees", "flags")]
                  + [[Cell(f"violation: {k}"), v] for k, v in sorted(viol.items())])
        if res.get("metrics"):
            doc.table(["metric", "value"], [[Cell(k), v] for k, v in sorted(res["metrics"].items())],
                      summary=f"metrics ({len(res['metrics'])})")
        tr = res.get("trace") or []
        if tr:
            shown = tr if len(tr) <= TRACE_ROWS else tr[:TRACE_ROWS // 2] + tr[-TRACE_ROWS // 2:]
            doc.table(["t (s)", "iteration", "incumbent", "bound"],
                      [[p.get("t_s"), p.get("iteration"), p.get("incumbent"), p.get("bound")] for p in shown],
                      summary=f"trace ({len(tr)} points{'; first and last ' + str(TRACE_ROWS // 2) + ' shown' if len(tr) > len(shown) else ''})")
        sol = res.get("solution")
        if sol:
            n = r["n_users"]
            cols = [k for k, v in sol.items() if isinstance(v, list) and len(v) == n]
            doc.table(["user", *cols], [[u, *[sol[k][u] for k in cols]] for u in range(n)],
                      summary=f"solution ({n} users: {', '.join(cols)})")
            rest = {k: v for k, v in sol.items() if k not in cols}
            if rest:
                doc.raw(f"<pre>{html.escape(json.dumps(rest, indent=1)[:20000])}</pre>")
        else:
            doc.p("No solution stored.")
    (d / f"{key}.html").write_text(doc.html())
