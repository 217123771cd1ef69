"""The report's plots (matplotlib, Agg backend), each saved as PNG and SVG (for papers).

* gap strips: per (variant, size) panel, one row per method, every run's gap to the reference on a
  log axis (median marked, runs without a verified point at the right edge);
* convergence: gap of the incumbent (solid) and of the bound (dashed) to the reference, log scale, vs
  time and vs iteration, on the instance with the richest traces (and on every instance page);
* Dolan–Moré performance profiles (time; quality-conditioned);
* seed-figure reproductions (metric vs swept weight, vs users, bars, association convergence).

One style per method for the whole report (:func:`method_styles`): 11 colours × 12 markers × 4 line
styles, so 12+ methods stay apart even where their values coincide.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from .profiles import performance_profile, profile_costs

WEIGHT_METRIC = {"energy": ("total_energy_J", "total energy (J)"), "delay": ("avg_delay_s", "average delay (s)"),
                 "stability": ("mean_stability", "mean stability AS (model units)")}
METRIC_LABEL = {"wall_time_s": "wall time (s)", "total_energy_J": "total energy (J)", "avg_delay_s": "average delay (s)",
                "mean_stability": "mean stability AS (model units)", "objective": "objective (model units)"}
# tab10 + black: 11 colours that differ in hue or lightness (tab20's pairs do not); markers cycle with
# period 12 and line styles with period 4, so (colour, marker) pairs repeat only after 132 methods
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p")
LINES = ("-", "--", "-.", ":")
GAP_FLOOR_PCT = 1e-6   # gaps (in %) below this are drawn at it: within any certificate's tolerance
EPS_PCT = 1e-2         # the headline's "within 0.01 %"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> None:
    """``path`` (PNG) and the same figure as SVG next to it."""
    fig.savefig(path, dpi=100)
    fig.savefig(Path(path).with_suffix(".svg"))
    _plt().close(fig)


def _labels(rows):
    return sorted({r["label"] for r in rows})


def method_styles(labels) -> dict[str, dict]:
    """label -> {color, marker, ls, ms, mfc}: distinct for every label of the report (sorted order)."""
    return {l: {"color": COLORS[i % len(COLORS)], "marker": MARKERS[i % len(MARKERS)], "ls": LINES[i % len(LINES)],
                "ms": 6, "mfc": "none" if (i // len(COLORS)) % 2 else None} for i, l in enumerate(sorted(labels))}


def _autolog(ax, spec, ylabel):
    """Log y when asked, or when the plotted means span more than 30x (one method far off)."""
    ys = [y for line in ax.get_lines() for y in line.get_ydata() if y is not None and np.isfinite(y) and y > 0]
    if spec.get("log") or (ys and max(ys) / max(min(ys), 1e-300) > 30):
        ax.set_yscale("log")
        ylabel += " (log scale)"
    ax.set_ylabel(ylabel)


def gap_pct(value, ref) -> float:
    """(value − ref)/|ref| in %, floored at GAP_FLOOR_PCT for a log axis."""
    return max(100.0 * (value - ref) / max(abs(ref), 1e-10), GAP_FLOOR_PCT)


def _panels(rows):
    return sorted({(r["variant"], r["n_users"], r["n_servers"]) for r in rows})


def plot_gap_strips(rows, path: Path, title: str, styles: dict | None = None, order: dict | None = None) -> bool:
    """One panel per (variant, size): a row per method, every run's gap to the reference (log x), the
    median as a bar, runs without a verified point as a red x at the right edge."""
    rows = [r for r in rows if r.get("reference") is not None]
    if not rows:
        return False
    plt = _plt()
    panels = _panels(rows)
    sty = styles or method_styles(_labels(rows))
    ncol = min(len(panels), 2)
    nrow = math.ceil(len(panels) / ncol)
    n_methods = max(len({r["label"] for r in rows if (r["variant"], r["n_users"], r["n_servers"]) == p}) for p in panels)
    fig, axes = plt.subplots(nrow, ncol, figsize=(7.2 * ncol, 0.9 + 0.36 * n_methods * nrow + 0.6 * nrow), squeeze=False)
    gaps_all = [r["gap_to_reference"] * 100 for r in rows if r.get("gap_to_reference") is not None]
    hi = max([*gaps_all, 1.0]) * 3
    for ax, (v, n, m) in zip(axes.ravel(), panels):
        prs = [r for r in rows if (r["variant"], r["n_users"], r["n_servers"]) == (v, n, m)]
        by = defaultdict(list)
        for r in prs:
            by[r["label"]].append(r)
        labels = sorted(by, key=lambda l: (order or {}).get((v, n, m, l), _median_key(by[l])))
        for y, l in enumerate(labels):
            g = [gap_pct(r["objective"], r["reference"]) for r in by[l] if r.get("gap_to_reference") is not None]
            jit = np.linspace(-0.22, 0.22, len(g)) if len(g) > 1 else np.zeros(len(g))
            s = sty[l]
            ax.scatter(g, y + jit, color=s["color"], marker=s["marker"], s=34, facecolors=s["color"] if s["mfc"] is None else "none",
                       zorder=3)
            if g:
                ax.plot([np.median(g)] * 2, [y - 0.35, y + 0.35], color=s["color"], lw=2.2, zorder=4)
            bad = len(by[l]) - len(g)
            if bad:
                ax.scatter([hi], [y], color="#d62728", marker="x", s=50, zorder=3)
                ax.annotate(f"{bad} without a verified point", (hi, y), xytext=(-6, 6), textcoords="offset points",
                            ha="right", fontsize=7, color="#d62728")
        ax.axvline(EPS_PCT, color="k", ls=":", lw=0.9)
        ax.text(EPS_PCT, len(labels) - 0.4, " 0.01 %", fontsize=7, va="bottom")
        ax.set_xscale("log")
        ax.set_xlim(GAP_FLOOR_PCT / 2, hi * 2)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_ylim(-0.7, len(labels) - 0.3)
        ax.invert_yaxis()
        kinds = sorted({r["reference_kind"] for r in prs})
        ax.set_title(f"{v}, {n}x{m} ({len({r['ref_key'] for r in prs})} instance(s); reference: {', '.join(kinds)})", fontsize=9)
        ax.set_xlabel(f"gap to the reference, % (log scale; ≤ {GAP_FLOOR_PCT:g} % drawn at {GAP_FLOOR_PCT:g} %)", fontsize=8)
        ax.grid(alpha=0.3, axis="x", which="both")
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"{title}: gap of every run to the reference (bar = median)", fontsize=10)
    fig.tight_layout()
    save(fig, path)
    return True


def _median_key(rs):
    g = [r["gap_to_reference"] for r in rs if r.get("gap_to_reference") is not None]
    return (len(g) == 0, float(np.median(g)) if g else math.inf)


def plot_convergence(rows, path: Path, title: str, styles: dict | None = None, iterations: bool = True) -> bool:
    """Gap of the incumbent (solid) and of the bound (dashed, reference − bound) to the reference, in
    % on a log axis, vs time (and vs iteration), on the instance with the richest traces."""
    by_key = defaultdict(list)
    for r in rows:
        if r.get("reference") is not None and r["result"].get("trace"):
            by_key[r["ref_key"]].append(r)
    if not by_key:
        return False
    key = max(by_key, key=lambda k: (sum(len(r["result"]["trace"]) for r in by_key[k]), k))
    sel = by_key[key]
    plt = _plt()
    fig, axes = plt.subplots(1, 1 + iterations, figsize=(14 if iterations else 9.5, 4.8), squeeze=False)
    axes = axes[0]
    sty = styles or method_styles(_labels(sel))
    ref = sel[0]["reference"]
    for r in sorted(sel, key=lambda r: r["label"]):
        tr = r["result"]["trace"]
        s = sty[r["label"]]
        t = [max(p["t_s"], 1e-4) for p in tr]
        it = [p.get("iteration") if p.get("iteration") is not None else i for i, p in enumerate(tr)]
        for ax, x in zip(axes, (t, it)):
            pts = [(a, gap_pct(p["incumbent"], ref)) for a, p in zip(x, tr) if p.get("incumbent") is not None]
            if pts:
                ax.step(*zip(*pts), where="post", color=s["color"], marker=s["marker"], ms=4, mfc=s["mfc"],
                        label=f"{r['label']} incumbent")
            pts = [(a, gap_pct(2 * ref - p["bound"], ref)) for a, p in zip(x, tr) if p.get("bound") is not None]
            if pts:
                ax.step(*zip(*pts), where="post", color=s["color"], ls="--", label=f"{r['label']} bound (ref − bound)")
    for ax, xl in zip(axes, ("wall time (s, log scale)", "iteration")):
        ax.axhline(EPS_PCT, color="k", lw=0.8, ls=":", label="0.01 %")
        ax.set_yscale("log")
        ax.set_xlabel(xl)
        ax.set_ylabel(f"gap to the reference ({sel[0]['reference_kind']}), % (log; floor {GAP_FLOOR_PCT:g} %)")
        ax.grid(alpha=0.3, which="both")
    if iterations:
        if max((p.get("iteration") or 0 for r in sel for p in r["result"]["trace"]), default=0) > 50:
            axes[1].set_xscale("symlog", linthresh=1.0)
            axes[1].set_xlabel("iteration (symlog scale)")
        axes[1].set_xlim(left=0)
        axes[1].set_title("incumbent and bound vs iteration")
    axes[0].set_xscale("log")
    axes[0].set_title("incumbent and bound vs time")
    h, l = axes[0].get_legend_handles_labels()
    fig.legend(h, l, loc="center right", fontsize=7)
    r0 = sel[0]
    fig.suptitle(f"{title}: {r0['variant']} {r0['n_users']}x{r0['n_servers']}, seed {r0['seed']}"
                 f"{', sweep ' + str(r0['sweep_param']) + '=' + format(r0['sweep_value'], 'g') if r0['sweep_param'] else ''}")
    fig.tight_layout(rect=(0, 0, 0.83 if iterations else 0.8, 1))
    save(fig, path)
    return True


def plot_profiles(rows, path: Path, title: str, epsilon: float, styles: dict | None = None) -> bool:
    labels = _labels(rows)
    if len(labels) < 2:
        return False
    tc, qc = profile_costs(rows, epsilon)
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(13.5, 4.8))
    sty = styles or method_styles(labels)
    for ax, costs, name in ((axes[0], tc, "time (finished, verified)"),
                            (axes[1], qc, f"quality-conditioned (verified, gap to reference <= {epsilon:g})")):
        taus, rho = performance_profile(costs, labels)
        for l in labels:
            s = sty[l]
            ax.step(taus, rho[l], where="post", color=s["color"], ls=s["ls"], marker=s["marker"], mfc=s["mfc"],
                    markevery=max(1, len(taus) // 8), ms=5, label=l)
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
    save(fig, path)
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


def _errorbars(ax, rows, x_key, m, **style):
    """Mean ± std of metric ``m`` over the rows sharing each value of ``x_key`` (x values without any
    finite value are left out)."""
    pts = defaultdict(list)
    for r in rows:
        pts[r[x_key]].append(_metric(r, m))
    keep = [(x, s) for x, s in ((x, _mean_std(pts[x])) for x in sorted(pts)) if s[2]]
    if keep:
        ax.errorbar([x for x, _ in keep], [s[0] for _, s in keep], yerr=[s[1] for _, s in keep], capsize=2, **style)


def plot_figure(rows, spec: dict, path: Path, title: str, styles: dict | None = None) -> bool:
    """Seed-figure reproductions: ``weights`` (metric vs swept weight per method), ``users``
    (metrics vs number of users) and ``bars`` (metric per method)."""
    plt = _plt()
    kind = spec.get("kind")
    labels = _labels(rows)
    sty = styles or method_styles(labels)
    cols = {l: sty[l]["color"] for l in labels}
    sty = {l: {k: v for k, v in sty[l].items() if k != "color"} for l in labels}
    ok = [r for r in rows if r["verdict"] == "ok"]
    if not ok:
        return False
    if kind == "weights":
        params = sorted({r["sweep_param"] for r in rows if r["sweep_param"]}, key=list(WEIGHT_METRIC).index)
        fig, axes = plt.subplots(1, len(params), figsize=(5.2 * len(params), 4.3), squeeze=False)
        for ax, prm in zip(axes[0], params):
            m, ml = WEIGHT_METRIC[prm]
            for l in labels:
                _errorbars(ax, [r for r in rows if r["label"] == l and r["sweep_param"] == prm], "sweep_value", m,
                           color=cols[l], label=l, **sty[l])
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
                _errorbars(ax, [r for r in rows if r["label"] == l], "n_users", m, color=cols[l], label=l, **sty[l])
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
    save(fig, path)
    return True


