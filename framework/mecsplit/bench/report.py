"""Reports from the store: markdown + HTML pages with PNG plots (matplotlib, Agg backend).

Per suite and group: a results table (objective, gap to the reference, time, status, the verifier's
verdict), the reference provenance (certified by the exact solver, or best-known), convergence curves
(incumbent and bound vs time and vs iteration, from the stored traces), gap to the reference vs time,
Dolan–Moré performance profiles (time; and quality-conditioned: solved = verified and within epsilon
of the reference), shifted geometric means of time (shift 1 s and 10 s) and the seed-figure
reproductions (metric vs swept weight per method, metric vs users, method bars).
"""

from __future__ import annotations

import html
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from .profiles import performance_profile, relative_gap_to, shifted_geometric_mean

WEIGHT_METRIC = {"energy": ("total_energy_J", "total energy (J)"), "delay": ("avg_delay_s", "average delay (s)"),
                 "stability": ("mean_stability", "mean stability AS (model units)")}
METRIC_LABEL = {"wall_time_s": "wall time (s)", "total_energy_J": "total energy (J)", "avg_delay_s": "average delay (s)",
                "mean_stability": "mean stability AS (model units)", "objective": "objective (model units)"}
BEATS_TOL = 1e-6


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", s).strip("-.") or "x"  # never "." or "..": a folder name


def _fmt(x, nd=4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{nd}g}"
    return str(x)


def attach_references(store, rows: list[dict[str, Any]], groups: dict[str, dict]) -> dict[str, dict[str, Any]]:
    """Give every row ``reference``, ``reference_kind`` and ``gap_to_reference``; returns the
    reference used per ref_key (certified optimum if the store has one, else best-known)."""
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
        ok = r["verdict"] == "ok"
        r["gap_to_reference"] = relative_gap_to(r["objective"], r["reference"]) if ok else None
        if ref and ref["kind"] == "certified" and r["gap_to_reference"] is not None and r["gap_to_reference"] < -BEATS_TOL:
            r["flags"] = [*r["flags"], "beats_certified_reference"]
    return used


class Doc:
    """A tiny document model rendered to both markdown and HTML."""

    def __init__(self, title: str):
        self.title, self.blocks = title, []

    def h(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def p(self, text: str):
        self.blocks.append(("p", text))

    def table(self, header: list[str], rows: list[list[Any]]):
        self.blocks.append(("table", header, rows))

    def img(self, path: str, alt: str):
        self.blocks.append(("img", path, alt))

    def markdown(self) -> str:
        out = [f"# {self.title}\n"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"{'#' * b[1]} {b[2]}\n")
            elif b[0] == "p":
                out.append(b[1] + "\n")
            elif b[0] == "table":
                out.append("| " + " | ".join(b[1]) + " |")
                out.append("|" + "---|" * len(b[1]))
                out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in b[2]]
                out.append("")
            elif b[0] == "img":
                out.append(f"![{b[2]}]({b[1]})\n")
        return "\n".join(out)

    def html(self) -> str:
        e = html.escape
        out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(self.title)}</title><style>"
               "body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse;font-size:13px}"
               "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}img{max-width:100%}"
               "</style></head><body>", f"<h1>{e(self.title)}</h1>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p>{e(b[1])}</p>")
            elif b[0] == "table":
                out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in b[1]) + "</tr>")
                out += ["<tr>" + "".join(f"<td>{e(_fmt(c))}</td>" for c in row) + "</tr>" for row in b[2]]
                out.append("</table>")
            elif b[0] == "img":
                out.append(f"<p><img src='{e(b[1])}' alt='{e(b[2])}'></p>")
        return "\n".join(out + ["</body></html>"])


# ---------------------------------------------------------------------------------------- plots
def _labels(rows):
    return sorted({r["label"] for r in rows})


def _colors(labels):
    plt = _plt()
    cmap = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    return {l: cmap(i % cmap.N) for i, l in enumerate(labels)}


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINES = ("-", "--", "-.", ":")


def _style(labels):
    """Distinct marker + line style per method, so methods with identical values stay visible."""
    return {l: {"marker": MARKERS[i % len(MARKERS)], "ls": LINES[i % len(LINES)],
                "ms": 7 - (i % 4), "mfc": "none" if i % 2 else None} for i, l in enumerate(labels)}


def _autolog(ax, spec, ylabel):
    """Log y when asked, or when the plotted means span more than 30x (one method far off)."""
    ys = [y for line in ax.get_lines() for y in line.get_ydata() if y is not None and np.isfinite(y) and y > 0]
    if spec.get("log") or (ys and max(ys) / max(min(ys), 1e-300) > 30):
        ax.set_yscale("log")
        ylabel += " (log scale)"
    ax.set_ylabel(ylabel)


def plot_convergence(rows, path: Path, title: str) -> bool:
    """Incumbent (solid) and bound (dashed) vs time and vs iteration on the instance with the
    richest traces; the reference as a horizontal line."""
    by_key = defaultdict(list)
    for r in rows:
        by_key[r["ref_key"]].append(r)
    if not by_key:
        return False
    key = max(by_key, key=lambda k: (sum(len(r["result"].get("trace") or []) for r in by_key[k]), k))
    sel = [r for r in by_key[key] if r["result"].get("trace")]
    if not sel:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
    cols = _colors(_labels(sel))
    for r in sel:
        tr = r["result"]["trace"]
        c = cols[r["label"]]
        t = [max(p["t_s"], 1e-4) for p in tr]
        it = [p.get("iteration") if p.get("iteration") is not None else i for i, p in enumerate(tr)]
        inc = [p.get("incumbent") for p in tr]
        bnd = [p.get("bound") for p in tr]
        for ax, x in ((axes[0], t), (axes[1], it)):
            xi = [a for a, y in zip(x, inc) if y is not None]
            yi = [y for y in inc if y is not None]
            if yi:
                ax.step(xi, yi, where="post", color=c, marker="o", ms=3, label=f"{r['label']} incumbent")
            xb = [a for a, y in zip(x, bnd) if y is not None]
            yb = [y for y in bnd if y is not None]
            if yb:
                ax.step(xb, yb, where="post", color=c, ls="--", label=f"{r['label']} bound")
    ref = sel[0].get("reference")
    clip = ""
    if ref is not None:  # zoom on the interesting band: bounds up to reference + 5 %
        vals = [p[k] for r in sel for p in r["result"]["trace"] for k in ("incumbent", "bound") if p.get(k) is not None]
        lo, hi = min([*vals, ref]), ref + 0.05 * abs(ref)
        if max(vals) > hi:
            clip = " (y clipped at reference + 5%)"
            lo = max(lo, ref - 0.5 * abs(ref))
            for ax in axes:
                ax.set_ylim(lo - 0.02 * (hi - lo), hi)
    for ax, xl in ((axes[0], "wall time (s, log scale)"), (axes[1], "iteration (symlog scale)")):
        if ref is not None:
            ax.axhline(ref, color="k", lw=0.8, ls=":", label=f"reference ({sel[0]['reference_kind']})")
        ax.set_xlabel(xl)
        ax.set_ylabel("objective (model units)" + clip)
        ax.grid(alpha=0.3)
    its = [p.get("iteration") or 0 for r in sel for p in r["result"]["trace"]]
    if max(its, default=0) > 50:
        axes[1].set_xscale("symlog", linthresh=1.0)
    else:
        axes[1].set_xlabel("iteration")
    axes[0].set_xscale("log")
    axes[0].set_title("incumbent and bound vs time")
    axes[1].set_title("incumbent and bound vs iteration")
    h, l = axes[0].get_legend_handles_labels()
    fig.legend(h, l, loc="center right", fontsize=8)
    r0 = sel[0]
    fig.suptitle(f"{title}: {r0['n_users']}x{r0['n_servers']}, seed {r0['seed']}"
                 f"{', sweep ' + str(r0['sweep_param']) + '=' + _fmt(r0['sweep_value']) if r0['sweep_param'] else ''}")
    fig.tight_layout(rect=(0, 0, 0.78, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def plot_gap_vs_time(rows, path: Path, title: str) -> bool:
    """Relative gap of the incumbent to the reference over time, every cell (one line each)."""
    plt = _plt()
    sel = [r for r in rows if r.get("reference") is not None and r["result"].get("trace")]
    if not sel:
        return False
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    cols = _colors(_labels(sel))
    seen = set()
    floor = 1e-8
    for r in sel:
        ref = r["reference"]
        pts = [(max(p["t_s"], 1e-4), max((p["incumbent"] - ref) / max(abs(ref), 1e-10), floor))
               for p in r["result"]["trace"] if p.get("incumbent") is not None]
        if not pts:
            continue
        x, y = zip(*pts)
        lab = r["label"] if r["label"] not in seen else None
        seen.add(r["label"])
        ax.step(x, y, where="post", color=cols[r["label"]], alpha=0.6, marker=".", ms=3, label=lab)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("wall time (s, log scale)")
    ax.set_ylabel(f"gap to reference (relative, log; floor {floor:g})")
    ax.set_title(f"{title}: incumbent gap to the reference vs time")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def profile_costs(rows, epsilon: float) -> tuple[dict, dict]:
    """(time costs, quality-conditioned time costs): problem = ref_key, failures missing."""
    tc: dict[str, dict[str, float]] = defaultdict(dict)
    qc: dict[str, dict[str, float]] = defaultdict(dict)
    for r in rows:
        k = r["ref_key"]
        tc.setdefault(k, {})
        qc.setdefault(k, {})
        t = r["wall_time_s"]
        if r["verdict"] == "ok" and r["status"] in ("optimal", "feasible") and t is not None:
            tc[k][r["label"]] = t
        g = r.get("gap_to_reference")
        if r["verdict"] == "ok" and g is not None and g <= epsilon and t is not None:
            qc[k][r["label"]] = t
    return tc, qc


def plot_profiles(rows, path: Path, title: str, epsilon: float) -> bool:
    labels = _labels(rows)
    if len(labels) < 2:
        return False
    tc, qc = profile_costs(rows, epsilon)
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(13.5, 4.5))
    cols = _colors(labels)
    for ax, costs, name in ((axes[0], tc, "time (finished, verified)"),
                            (axes[1], qc, f"quality-conditioned (verified, gap to reference <= {epsilon:g})")):
        taus, rho = performance_profile(costs, labels)
        for l in labels:
            ax.step(taus, rho[l], where="post", color=cols[l], label=l)
        ax.set_xscale("log", base=2)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("tau: time ratio to the fastest solver on the problem (log2)")
        ax.set_ylabel("fraction of problems with ratio <= tau")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3, which="both")
    h, l = axes[0].get_legend_handles_labels()
    fig.legend(h, l, loc="center right", fontsize=8)
    fig.suptitle(f"{title}: Dolan–Moré performance profiles ({len(tc)} problems)")
    fig.tight_layout(rect=(0, 0, 0.85, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def _mean_std(vals):
    v = np.asarray([x for x in vals if x is not None and math.isfinite(x)], dtype=float)
    return (float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, v.size) if v.size else (math.nan, 0.0, 0)


def _metric(r, m):
    if m == "wall_time_s":
        return r["wall_time_s"] if r["status"] in ("optimal", "feasible") else None
    if m == "objective":
        return r["objective"] if r["verdict"] == "ok" else None
    return (r["result"].get("metrics") or {}).get(m) if r["verdict"] == "ok" else None


def plot_figure(rows, spec: dict, path: Path, title: str) -> bool:
    """Seed-figure reproductions: ``weights`` (metric vs swept weight per method), ``users``
    (metrics vs number of users) and ``bars`` (metric per method)."""
    plt = _plt()
    kind = spec.get("kind")
    labels = _labels(rows)
    cols = _colors(labels)
    sty = _style(labels)
    ok = [r for r in rows if r["verdict"] == "ok"]
    if not ok:
        return False
    if kind == "weights":
        params = sorted({r["sweep_param"] for r in rows if r["sweep_param"]}, key=list(WEIGHT_METRIC).index)
        fig, axes = plt.subplots(1, len(params), figsize=(5.2 * len(params), 4.3), squeeze=False)
        for ax, prm in zip(axes[0], params):
            m, ml = WEIGHT_METRIC[prm]
            for l in labels:
                pts = defaultdict(list)
                for r in rows:
                    if r["label"] == l and r["sweep_param"] == prm:
                        pts[r["sweep_value"]].append(_metric(r, m))
                xs = sorted(pts)
                st = [_mean_std(pts[x]) for x in xs]
                keep = [(x, s) for x, s in zip(xs, st) if s[2]]
                if keep:
                    ax.errorbar([x for x, _ in keep], [s[0] for _, s in keep], yerr=[s[1] for _, s in keep],
                                color=cols[l], capsize=2, label=l, **sty[l])
            ax.set_xlabel(f"weight w_{prm} (swept; others at the variant's value)")
            _autolog(ax, spec, ml)
            ax.set_title(f"{ml.split(' (')[0]} vs w_{prm}", fontsize=10)
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=8)
    elif kind == "users":
        metrics = spec.get("metrics") or ["total_energy_J", "avg_delay_s"]
        fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4.3), squeeze=False)
        for ax, m in zip(axes[0], metrics):
            for l in labels:
                pts = defaultdict(list)
                for r in rows:
                    if r["label"] == l:
                        pts[r["n_users"]].append(_metric(r, m))
                xs = sorted(pts)
                st = [_mean_std(pts[x]) for x in xs]
                keep = [(x, s) for x, s in zip(xs, st) if s[2]]
                if keep:
                    ax.errorbar([x for x, _ in keep], [s[0] for _, s in keep], yerr=[s[1] for _, s in keep],
                                color=cols[l], capsize=2, label=l, **sty[l])
            ax.set_xlabel("number of users N")
            _autolog(ax, spec, METRIC_LABEL.get(m, m))
            ax.set_title(f"{METRIC_LABEL.get(m, m).split(' (')[0]} vs users", fontsize=10)
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=8)
    elif kind == "bars":
        metrics = spec.get("metrics") or ["total_energy_J", "avg_delay_s"]
        fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4.3), squeeze=False)
        for ax, m in zip(axes[0], metrics):
            st = [_mean_std([_metric(r, m) for r in rows if r["label"] == l]) for l in labels]
            ax.bar(range(len(labels)), [s[0] for s in st], yerr=[s[1] for s in st], color=[cols[l] for l in labels], capsize=3)
            ax.set_xticks(range(len(labels)), labels, rotation=20)
            ax.set_ylabel(METRIC_LABEL.get(m, m) + (" (log scale)" if spec.get("log") else ""))
            if spec.get("log"):
                ax.set_yscale("log")
            ax.set_title(f"{METRIC_LABEL.get(m, m).split(' (')[0]} per method (mean ± sd over seeds)", fontsize=10)
            ax.grid(alpha=0.3, axis="y")
    elif kind == "convergence":
        fig, axes = plt.subplots(1, len(labels), figsize=(6.5 * len(labels), 4.3), squeeze=False)
        for ax, l in zip(axes[0], labels):
            sizes = sorted({(r["n_users"], r["n_servers"]) for r in rows if r["label"] == l})
            cm = plt.get_cmap("viridis")
            for i, (n, m) in enumerate(sizes):
                rs = sorted((r for r in rows if r["label"] == l and (r["n_users"], r["n_servers"]) == (n, m)
                             and r["result"].get("trace")), key=lambda r: r["seed"])
                for j, r in enumerate(rs):
                    tr = [p for p in r["result"]["trace"] if p.get("incumbent") is not None]
                    x = [p.get("iteration") or 0 for p in tr]
                    ax.step(x, [p["incumbent"] for p in tr], where="post", color=cm(i / max(1, len(sizes) - 1)),
                            marker="o", ms=3, alpha=0.9 if j == 0 else 0.35,
                            label=f"{n} users x {m} servers" if j == 0 else None)
            ax.set_xlabel("outer iteration (from the stored trace)")
            ax.set_ylabel("incumbent objective (model units)")
            ax.set_title(f"{l}: incumbent vs iteration (one line per seed)", fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    else:
        return False
    fig.suptitle(f"{title}{': ' + spec['title'] if spec.get('title') else ''}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------------------- report
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


def build_report(store, suite: str, out_dir: str | Path) -> Path:
    """Write ``out_dir/<suite>/report.md``, ``report.html`` and PNGs; returns the markdown path."""
    out = Path(out_dir) / _slug(suite)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    rows = store.rows(suite)
    groups = store.groups(suite)
    refs_used = attach_references(store, rows, groups)
    skipped = store.skipped(suite)
    doc = Doc(f"mecsplit bench report: {suite}")
    runs = store.runs(suite)
    ran = [r for r in runs if r["n_run"]]
    if ran:
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
        doc.h(2, f"Group {gname}")
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
        elif pol == "exact" and kinds.get("best-known"):
            text += (" Where the exact solver did not prove optimality within its time limit, the best-known value "
                     "(lowest verified objective of any stored run) is used.")
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
            if g.get("figure") and plot_figure(grows, g["figure"], out / f"figure_{_slug(gname)}.png", gname):
                figs.append((f"figure_{_slug(gname)}.png", f"{gname}: {g['figure'].get('title', g['figure']['kind'])}"))
            if plot_profiles(grows, out / f"profiles_{_slug(gname)}.png", gname, g.get("epsilon", 1e-4)):
                figs.append((f"profiles_{_slug(gname)}.png", f"{gname}: performance profiles"))
            if plot_convergence(grows, out / f"convergence_{_slug(gname)}.png", gname):
                figs.append((f"convergence_{_slug(gname)}.png", f"{gname}: convergence"))
            if plot_gap_vs_time(grows, out / f"gap_time_{_slug(gname)}.png", gname):
                figs.append((f"gap_time_{_slug(gname)}.png", f"{gname}: gap vs time"))
            for f, alt in figs:
                doc.img(f, alt)
        if gskip:
            reasons = defaultdict(int)
            for s in gskip:
                reasons[(s["label"], s["reason"])] += 1
            doc.p("Skipped: " + "; ".join(f"{l} ({n} cell(s)): {why}" for (l, why), n in sorted(reasons.items())))
    md = out / "report.md"
    md.write_text(doc.markdown())
    (out / "report.html").write_text(doc.html())
    return md


def write_index(store, out_dir: str | Path) -> Path:
    """``OUT/index.html`` and ``index.md``: one link per suite report in the store."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = Doc("mecsplit benchmark reports")
    rows = []
    for s in store.suites():
        runs = [r for r in store.runs(s) if r["n_run"]]
        rows.append([s, len(store.rows(s)), runs[-1]["finished_at"] if runs else None, f"{_slug(s)}/report.html",
                     f"{_slug(s)}/report.md"])
    doc.p(f"Store: {store.path}")
    doc.table(["suite", "stored results", "last run finished", "HTML", "markdown"], rows)
    (out / "index.md").write_text(doc.markdown())
    h = doc.html()
    for r in rows:  # make the file names links
        for f in r[3:]:
            h = h.replace(f"<td>{html.escape(f)}</td>", f"<td><a href='{html.escape(f)}'>{html.escape(f)}</a></td>")
    (out / "index.html").write_text(h)
    return out / "index.html"


def summary_lines(store, suite: str) -> list[str]:
    """The short table ``bench run`` prints: per group and method, over all sizes and seeds."""
    rows = store.rows(suite)
    attach_references(store, rows, store.groups(suite))
    agg = defaultdict(list)
    for r in rows:
        if r["role"] == "cell":
            agg[(r["grp"], r["label"])].append(r)
    out = [f"{'group':18s} {'method':16s} {'cells':>5s} {'mean gap':>10s} {'max gap':>10s} {'mean s':>8s}  status / verdict"]
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
    """1 if any stored cell of the suite errored, was killed or was flagged by the verifier, else 0."""
    for r in store.rows(suite):
        if r["status"] == "error" or r["killed"] or r["flags"] or r["verdict"] not in ("ok",):
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
