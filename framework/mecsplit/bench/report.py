"""Reports from the store: markdown + HTML pages with plots (PNG and SVG).

Every report starts with the **headline** (:mod:`mecsplit.bench.headline`: per variant, size and
method, median and worst gap to the certified optimum, runs within 0.01 %, median time) and the
gap-to-reference strips (:mod:`mecsplit.bench.plots`). Then per group: the run line, the reference
provenance (certified by the exact solver, or best-known — marked), a results table (objective, gap,
time, status, the verifier's verdict), shifted geometric means, performance profiles, convergence
(gap to the reference, log scale), the seed-figure reproductions, and a sortable table of every run
linking to its instance page (:mod:`mecsplit.bench.pages`: solution, trace, verification).
``index.html`` starts with the headline of every suite in the store.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .doc import Cell, Doc, fmt as _fmt, slug as _slug
from .headline import HEADER, NOTE, WITHIN, cells as headline_cells, fmt_gap, headline, markdown_table, text_table
from .pages import PLOT_LIMIT, page_name, run_href, write_instance_pages
from .plots import _labels, _mean_std, method_styles, plot_convergence, plot_figure, plot_gap_strips, plot_profiles
from .profiles import profile_costs, relative_gap_to, shifted_geometric_mean

BEATS_TOL = 1e-6
README_START, README_END = "<!-- mecsplit:headline:start -->", "<!-- mecsplit:headline:end -->"


def attach_references(store, rows: list[dict[str, Any]], groups: dict[str, dict]) -> dict[str, dict[str, Any]]:
    """Give every row ``reference``, ``reference_kind`` and ``gap_to_reference``; returns the
    reference used per ref_key (certified optimum if the store has one, else best-known). A result
    below a certified optimum by more than the certificate's own proven gap (+ 1e-6) is flagged
    ``beats_certified_reference``."""
    certified = store.refs()
    best = store.best_known()
    used: dict[str, dict[str, Any]] = {}
    for r in rows:
        pol = groups.get(r["grp"], {}).get("reference", "best-known")
        k = r["ref_key"]
        ref = None
        if pol != "none":
            if k in certified:
                c = certified[k]
                ref = {"value": c["value"], "kind": "certified", "solver": c["solver"], "gap": c["gap"],
                       "wall_time_s": c["wall_time_s"], "cell_hash": c["cell_hash"]}
            elif k in best:
                ref = {"value": best[k][0], "kind": "best-known", "solver": best[k][1], "gap": None,
                       "wall_time_s": None, "cell_hash": best[k][2]}
        if ref is not None:
            used[k] = ref
        r["reference"] = ref["value"] if ref else None
        r["reference_kind"] = ref["kind"] if ref else "none"
        # a gap only for a point the evaluator verified as feasible (a solver that says "no feasible point"
        # keeps verdict ok with its infeasible point)
        ok = r["verdict"] == "ok" and (r["result"].get("verification") or {}).get("feasible") is True
        r["gap_to_reference"] = relative_gap_to(r["objective"], r["reference"]) if ok else None
        if ref and ref["kind"] == "certified" and r["gap_to_reference"] is not None \
                and r["gap_to_reference"] < -(BEATS_TOL + (ref["gap"] or 0.0)):
            r["flags"] = [*r["flags"], "beats_certified_reference"]
    return used


def _nan(x):
    return float("nan") if x is None else float(x)


def headline_doc(doc: Doc, lines, href_of=None) -> None:
    """The headline table into ``doc``; ``href_of(row)`` links a run (the worst one of each line)."""
    def shade(g):  # within 0.01 % / within 1 % / further
        return "" if g is None else "good" if g <= WITHIN else "near" if g <= 1e-2 else "far"

    rows = []
    for x in lines:
        c = headline_cells(x)
        worst = x.worst_row
        rows.append([c[0], c[1], Cell(c[2]), Cell(c[3], x.runs), Cell(c[4], _nan(x.median_gap), cls=shade(x.median_gap)),
                     Cell(c[5], _nan(x.worst_gap), href_of(worst) if href_of and worst else None, shade(x.worst_gap)),
                     Cell(c[6], x.within / x.runs, cls="good" if x.within == x.runs else ""),
                     Cell(c[7], _nan(x.median_time_s)), Cell(c[8], x.no_point, cls="far" if x.no_point else ""),
                     Cell(c[9], cls="far" if "best-known" in x.references else "")])
    doc.table(HEADER, rows)


def _cert_note(refs_used) -> str:
    cert = [c for c in refs_used.values() if c["kind"] == "certified"]
    if not cert:
        return ""
    return (f"Certified references: {len(cert)}, by {', '.join(sorted({c['solver'] for c in cert}))}, proven relative "
            f"gap ≤ {_fmt(max((c['gap'] or 0.0) for c in cert), 2)} (a smaller gap to the reference is within the "
            f"certificate's tolerance), {_fmt(min(c['wall_time_s'] for c in cert), 3)}–"
            f"{_fmt(max(c['wall_time_s'] for c in cert), 3)} s each.")


def group_table(rows) -> list[list[Any]]:
    agg = defaultdict(list)
    for r in rows:
        agg[(r["label"], r["n_users"], r["n_servers"])].append(r)
    out = []
    for (l, n, m), rs in sorted(agg.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        st = defaultdict(int)
        for r in rs:
            st[r["status"] + ("*" if r["killed"] else "")] += 1
        ver = defaultdict(int)
        for r in rs:  # the verifier's verdict; "no point" when there was nothing to check
            ver["no point" if r["result"].get("solution") is None and r["verdict"] == "ok" else
                "flagged" if r["flags"] and r["verdict"] == "ok" else r["verdict"]] += 1
        gaps = [r["gap_to_reference"] for r in rs if r.get("gap_to_reference") is not None]
        times = [r["wall_time_s"] for r in rs]
        out.append([l, f"{n}x{m}", len(rs), _mean_std([r["objective"] for r in rs if r["verdict"] == "ok"])[0],
                    float(np.mean(gaps)) if gaps else None, float(np.max(gaps)) if gaps else None,
                    float(np.mean(times)), shifted_geometric_mean(times, 1.0),
                    " ".join(f"{k}:{v}" for k, v in sorted(st.items())), " ".join(f"{k}:{v}" for k, v in sorted(ver.items()))])
    return out


def runs_table(rows) -> list[list[Any]]:
    """One row per run, each linking to its instance page."""
    out = []
    for r in sorted(rows, key=lambda r: (r["variant"], r["n_users"], r["n_servers"], r["seed"], r["label"],
                                         str(r["sweep_param"]), r["sweep_value"] or 0)):
        g = r.get("gap_to_reference")
        out.append([Cell(r["label"], href=run_href(r)), r["variant"], f"{r['n_users']}x{r['n_servers']}", r["seed"],
                    f"{r['sweep_param']}={r['sweep_value']:g}" if r["sweep_param"] else "",
                    Cell(r["objective"], _nan(r["objective"])), Cell(fmt_gap(g), _nan(g)), r["reference_kind"],
                    r["wall_time_s"], r["status"] + ("*" if r["killed"] else ""), r["verdict"], ", ".join(r["flags"]),
                    Cell("page", href=page_name(r["ref_key"]))])
    return out


def _run_line(doc: Doc, store, suite: str) -> None:
    ran = [r for r in store.runs(suite) if r["n_run"]]
    if not ran:
        return
    last = ran[-1]
    doc.p(f"Last run that executed cells: {last['started_at']} on {last['host']} ({last['cores']} cores), executor "
          f"{last['executor']}, {last['workers']} worker(s){', timing mode (1 worker, 1 thread)' if last['timing'] else ''}: "
          f"{last['n_run']} cell(s) run in {_fmt(last['wall_s'])} s, {last['n_done_before']} already in the store, "
          f"{last['n_skipped']} skipped, {last['n_killed']} killed at the hard limit. "
          + (f"Sum of the cells' own solve times {_fmt(last['solve_s'])} s: harness overhead per cell "
             f"≈ {_fmt((last['workers'] * last['wall_s'] - last['solve_s']) / last['n_run'], 2)} s "
             f"(workers × wall − Σ solve time, / cells; includes idle workers at the end). "
             if last.get("solve_s") is not None else "")
          + (f"Load average at the end: {last['load_avg']} (a shared machine slows every solve)." if last.get("load_avg") else ""))
    doc.table(["run", "started (UTC)", "finished", "wall (s)", "cells run", "already stored", "killed", "workers",
               "executor", "timing", "Σ solve (s)", "load avg"],
              [[r["run_id"], r["started_at"], r["finished_at"] or "(killed)", r["wall_s"], r["n_run"], r["n_done_before"],
                r["n_killed"], r["workers"], r["executor"], bool(r["timing"]), r.get("solve_s"), r.get("load_avg")]
               for r in ran[-10:]])


def build_report(store, suite: str, out_dir: str | Path, instance_plots: int = PLOT_LIMIT) -> Path:
    """Write ``out_dir/<suite>/report.md``, ``report.html``, the plots (PNG + SVG) and the instance
    pages (the first ``instance_plots`` with a plot); returns the markdown path."""
    out = Path(out_dir) / _slug(suite)
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("*.png"), *out.glob("*.svg")]:
        old.unlink()
    rows = store.rows(suite)
    groups = store.groups(suite)
    refs_used = attach_references(store, rows, groups)
    skipped = store.skipped(suite)
    cells = [r for r in rows if r["role"] == "cell"]
    styles = method_styles(_labels(rows))
    doc = Doc(f"mecsplit bench report: {suite}")
    doc.h(2, "Headline: how far each method is from the optimum", "headline")
    lines = headline(rows)
    if lines:
        headline_doc(doc, lines, run_href)
        doc.p(NOTE + " " + _cert_note(refs_used) + " The worst gap links to that run's instance page; click a "
              "column to sort.", note=True)
        if plot_gap_strips(cells, out / "gaps.png", suite, styles):
            doc.img("gaps.png", "gap of every run to the reference, per variant and size")
    else:
        doc.p("No results stored for this suite yet.")
    _run_line(doc, store, suite)
    doc.p(f"{len(rows)} stored result(s) for this suite. Objective in model units (see the variant file); "
          "gap to reference = (objective − reference) / |reference| for verified results; time = wall-clock seconds "
          "measured by the framework; status marked * = killed by the harness at time limit + grace (last streamed "
          "incumbent/bound kept, unverified). SGM = shifted geometric mean of time with shift 1 s.")
    by_group = defaultdict(list)
    for r in rows:
        by_group[r["grp"]].append(r)
    for gname in sorted(set(by_group) | set(groups)):
        g = groups.get(gname, {})
        grows = [r for r in by_group.get(gname, []) if r["role"] == "cell"]
        doc.h(2, f"Group {gname}", "group-" + _slug(gname))
        pol = g.get("reference", "best-known")
        keys = {r["ref_key"] for r in grows}
        kinds = defaultdict(int)
        for k in keys:
            kinds[refs_used[k]["kind"] if k in refs_used else "none"] += 1
        text = f"Reference policy: {pol}. References: " + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())) + "."
        gskip = [s for s in skipped if s["grp"] == gname]
        if pol == "exact" and any(s["solver"] == g.get("reference_solver") for s in gskip):
            text += (f" The reference solver {g.get('reference_solver')!r} is not available here, so gaps are to the "
                     "best-known value (lowest verified objective of any stored run), not a certified optimum.")
        elif kinds.get("best-known"):
            text += (" Where the exact solver did not prove optimality within its time limit (or was not asked), the "
                     "best-known value (lowest verified objective of any stored run) is used: marked best-known, "
                     "not certified — the method that found it shows gap 0 by construction.")
        doc.p(text)
        cert = [(k, refs_used[k]) for k in sorted(keys) if k in refs_used and refs_used[k]["kind"] == "certified"]
        if cert:
            doc.p(f"Certified references ({len(cert)}): solver {cert[0][1]['solver']}, proven gap <= "
                  f"{_fmt(max((c['gap'] or 0.0) for _, c in cert))}, solve time {_fmt(min(c['wall_time_s'] for _, c in cert))}–"
                  f"{_fmt(max(c['wall_time_s'] for _, c in cert))} s (provenance in the store's refs table).")
        if grows:
            doc.table(["method", "size", "cells", "mean objective", "mean gap to ref", "max gap to ref", "mean time (s)",
                       "SGM time (s)", "status", "verdict"], group_table(grows))
            errs = [r for r in grows if r["status"] == "error"]
            if errs:
                doc.p("Errors: " + "; ".join(f"{r['label']} {r['n_users']}x{r['n_servers']} seed {r['seed']}: "
                                             f"{(r['result'].get('message') or '')[:240]}" for r in errs[:12])
                      + (f" (and {len(errs) - 12} more)" if len(errs) > 12 else ""))
            flagged = [r for r in grows if r["flags"]]
            if flagged:
                doc.p("Flagged cells: " + "; ".join(f"{r['label']} {r['n_users']}x{r['n_servers']} seed {r['seed']}: "
                                                    f"{', '.join(r['flags'])}" for r in flagged[:20])
                      + (f" (and {len(flagged) - 20} more)" if len(flagged) > 20 else ""))
            labels = _labels(grows)
            if len(labels) >= 2:
                tc, qc = profile_costs(grows, g.get("epsilon", 1e-4))
                srows = []
                for l in labels:
                    ts = [r["wall_time_s"] for r in grows if r["label"] == l]
                    srows.append([l, len(ts), sum(1 for k in tc if l in tc[k]), sum(1 for k in qc if l in qc[k]),
                                  shifted_geometric_mean(ts, 1.0), shifted_geometric_mean(ts, 10.0)])
                doc.h(3, "Shifted geometric means and solved counts")
                doc.table(["method", "runs", "finished + verified", f"within {g.get('epsilon', 1e-4):g} of ref",
                           "SGM time, shift 1 s", "SGM time, shift 10 s"], srows)
            figs = []
            gs = _slug(gname)
            if g.get("figure") and plot_figure(grows, g["figure"], out / f"figure_{gs}.png", gname, styles):
                figs.append((f"figure_{gs}.png", f"{gname}: {g['figure'].get('title', g['figure']['kind'])}"))
            if plot_profiles(grows, out / f"profiles_{gs}.png", gname, g.get("epsilon", 1e-4), styles):
                figs.append((f"profiles_{gs}.png", f"{gname}: performance profiles"))
            if plot_convergence(grows, out / f"convergence_{gs}.png", gname, styles):
                figs.append((f"convergence_{gs}.png", f"{gname}: convergence (gap to the reference)"))
            for f, alt in figs:
                doc.img(f, alt)
            doc.table(["method", "variant", "size", "seed", "sweep", "objective", "gap to ref", "reference", "time (s)",
                       "status", "verdict", "flags", "instance"], runs_table(grows), html_only=True,
                      summary=f"every run of group {gname} ({len(grows)}; each links to its instance page: solution, "
                              "trace, verification)")
        if gskip:
            reasons = defaultdict(int)
            for s in gskip:
                reasons[(s["label"], s["reason"])] += 1
            doc.p("Skipped: " + "; ".join(f"{l} ({n} cell(s)): {why}" for (l, why), n in sorted(reasons.items())))
    write_instance_pages(out, rows, refs_used, styles, instance_plots)
    md = out / "report.md"
    md.write_text(doc.markdown())
    (out / "report.html").write_text(doc.html())
    return md


def write_index(store, out_dir: str | Path) -> Path:
    """``OUT/index.html`` and ``index.md``: the headline of every suite in the store, then one link per
    suite report."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = Doc("mecsplit benchmark reports")
    table = []
    for s in store.suites():
        rows = store.rows(s)
        attach_references(store, rows, store.groups(s))
        runs = [r for r in store.runs(s) if r["n_run"]]
        base = f"{_slug(s)}/"
        table.append([Cell(s, href=base + "report.html"), len(rows), runs[-1]["finished_at"] if runs else None,
                      Cell("report.html", href=base + "report.html"), Cell("report.md", href=base + "report.md")])
        lines = headline(rows)
        if lines:
            doc.h(2, f"{s}: how far each method is from the optimum", "suite-" + _slug(s))
            headline_doc(doc, lines, lambda r, b=base: b + run_href(r))
            if (out / _slug(s) / "gaps.png").exists():
                doc.img(base + "gaps.png", f"{s}: gap of every run to the reference")
    doc.p(NOTE, note=True)
    doc.h(2, "Reports")
    doc.p(f"Store: {store.path}")
    doc.table(["suite", "stored results", "last run finished", "HTML", "markdown"], table)
    (out / "index.md").write_text(doc.markdown())
    (out / "index.html").write_text(doc.html())
    return out / "index.html"


def readme_section(store, suite: str, command: str) -> list[str]:
    """The README's generated "what we found" block (between the markers): the headline of ``suite``
    from the store, the run it comes from and the command that reproduces it."""
    rows = store.rows(suite)
    refs_used = attach_references(store, rows, store.groups(suite))
    lines = headline(rows)
    ran = [r for r in store.runs(suite) if r["n_run"]]
    last = ran[-1] if ran else {}
    out = [README_START, "",
           f"Generated by `{command}` from the store of `mecsplit bench run {suite}`"
           + (f" (last run {last['started_at']}, {last['cores']} cores, {last['workers']} worker(s), {last['n_run']} "
              f"cell(s) in {last['wall_s']:.0f} s, load average at the end {last['load_avg']})" if last else "")
           + ". Do not edit by hand: re-run both commands.", ""]
    out += markdown_table(lines) + [""]
    per_variant = defaultdict(list)
    for x in lines:
        per_variant[(x.variant, x.size)].append(x)
    for (v, size), xs in per_variant.items():
        at = [x.method for x in xs if x.runs and x.within == x.runs]
        rest = [x for x in xs if x.method not in at and x.median_gap is not None]
        lo, hi = (min(rest, key=lambda x: x.median_gap), max(rest, key=lambda x: x.median_gap)) if rest else (None, None)
        out.append(f"* {v} {size}: within 0.01 % of the optimum on every run: {', '.join(at) or 'none'}"
                   + (f"; median gap of the others from {fmt_gap(lo.median_gap)} ({lo.method}) to "
                      f"{fmt_gap(hi.median_gap)} ({hi.method})" if rest else "") + ".")
    out += ["", NOTE + " " + _cert_note(refs_used), "", README_END]
    return out


def readme_text(readme: str | Path) -> str:
    """The text of ``readme``, checked to be a file with the generated-section markers in order."""
    path = Path(readme)
    want = f"an existing text file with the lines {README_START} and {README_END} where the table goes"
    if not path.is_file():
        raise InputError(str(path), "--readme", "not a file" if path.exists() else "no such file", want)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(str(path), "--readme", f"unreadable ({type(e).__name__})", want) from None
    if README_START not in text or README_END not in text or text.index(README_START) > text.index(README_END):
        raise InputError(str(path), "--readme", "no generated-section markers", want)
    return text


def write_readme(store, suite: str, readme: str | Path, command: str) -> None:
    """Replace the text between README_START and README_END in ``readme`` by :func:`readme_section`."""
    text = readme_text(readme)
    a, b = text.index(README_START), text.index(README_END) + len(README_END)
    Path(readme).write_text(text[:a] + "\n".join(readme_section(store, suite, command)) + text[b:])


def summary_lines(store, suite: str) -> list[str]:
    """What ``bench run`` prints: the headline table first, then per group and method (all sizes and
    seeds) the cells, mean and max gap, mean time, statuses and verdicts."""
    rows = store.rows(suite)
    attach_references(store, rows, store.groups(suite))
    agg = defaultdict(list)
    for r in rows:
        if r["role"] == "cell":
            agg[(r["grp"], r["label"])].append(r)
    out = [f"Headline ({suite}): gap to the reference per variant, size and method, best first "
           f"(the reference is the certified optimum unless marked; worst = the largest verified gap)",
           *text_table(headline(rows)), "", "Per group (all sizes and seeds; gaps relative, not %):"]
    out += [f"{'group':18s} {'method':16s} {'cells':>5s} {'mean gap':>10s} {'max gap':>10s} {'mean s':>8s}  status / verdict"]
    for (g, l), rs in sorted(agg.items()):
        gaps = [r["gap_to_reference"] for r in rs if r.get("gap_to_reference") is not None]
        st = defaultdict(int)
        for r in rs:
            st[r["status"] + ("*" if r["killed"] else "")] += 1
            if r["flags"] or r["verdict"] != "ok":
                st["flagged" if r["verdict"] != "unverified" else "unverified"] += 1
        out.append(f"{g[:18]:18s} {l[:16]:16s} {len(rs):5d} {_fmt(float(np.mean(gaps)) if gaps else None, 3):>10s} "
                   f"{_fmt(float(np.max(gaps)) if gaps else None, 3):>10s} {_fmt(float(np.mean([r['wall_time_s'] or 0 for r in rs])), 3):>8s}  "
                   + " ".join(f"{k}:{v}" for k, v in sorted(st.items())))
    return out


def exit_status(store, suite: str) -> int:
    """1 if any stored cell of the suite errored or was flagged by the verifier, else 0. A cell killed at
    its hard limit is a time-out, not a failure: it is counted and shown (status time_limit*, its last
    incumbent and bound kept), so a peer that overruns its limit on a loaded machine does not fail the run."""
    for r in store.rows(suite):
        flags = set(r["flags"] or ()) - {"killed_at_hard_limit"}
        timed_out = r["killed"] and r["verdict"] == "unverified"
        if r["status"] == "error" or flags or (r["verdict"] != "ok" and not timed_out):
            return 1
    return 0


def export_rows(store, suite: str | None = None) -> list[dict[str, Any]]:
    """benchopt-like flat rows (one per cell): solver_name, data_name, objective_value, time,
    stop_val, plus bound, gap, status, verdict, seed, reference, gap_to_reference, provenance (JSON)."""
    import json

    out = []
    for s in ([suite] if suite else store.suites()):
        rows = store.rows(s)
        attach_references(store, rows, store.groups(s))
        for r in rows:
            res = r["result"]
            out.append({
                "suite": s, "group": r["grp"], "role": r["role"], "solver_name": r["label"], "solver": r["solver"],
                "p_solver_options": json.dumps(json.loads(r["options"]), sort_keys=True),
                "data_name": f"{r['variant']}[N={r['n_users']},M={r['n_servers']},seed={r['seed']}]",
                "variant": r["variant"], "n_users": r["n_users"], "n_servers": r["n_servers"], "seed": r["seed"],
                "p_objective_overrides": json.dumps(r["overrides"], sort_keys=True),
                "sweep_param": r["sweep_param"], "sweep_value": r["sweep_value"],
                "instance_hash": r["instance_hash"], "cell_hash": r["cell_hash"],
                "objective_value": r["objective"], "time": r["wall_time_s"], "stop_val": r["iterations"],
                "iteration": r["iterations"], "time_limit_s": r["time_limit_s"], "bound": r["bound"], "gap": r["gap"],
                "status": r["status"], "killed": bool(r["killed"]), "verdict": r["verdict"],
                "flags": json.dumps(r["flags"]), "reference": r["reference"], "reference_kind": r["reference_kind"],
                "gap_to_reference": r["gap_to_reference"],
                **{f"objective_{k}": (res.get("metrics") or {}).get(k) for k in ("total_energy_J", "avg_delay_s", "mean_stability")},
                "provenance": json.dumps(res.get("provenance") or {}, sort_keys=True), "finished_at": r["finished_at"],
            })
    return out


def export_parquet(store, path: str | Path, suite: str | None = None) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = export_rows(store, suite)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), str(path))
    return len(rows)
