"""The headline table: per variant, size and method, how far the method is from the reference.

For every (variant, users × servers, method) over the suite's runs (role "cell", each cell once):
runs, median and worst gap to the reference in % (points the evaluator verified as feasible), how many
runs are within 0.01 % of it, the median wall time (every run), how many runs left no verified point
(error, killed, flagged, no point or an infeasible one), and which references were used (certified
optimum / best-known value). Methods are listed best first (median gap, then median time); methods
without any verified point come last.
``bench run`` prints it first, every report and ``index.html`` start with it, and
``bench report --readme`` writes it into the README.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

WITHIN = 1e-4   # relative gap counted as "at the optimum" in the headline (0.01 %)


@dataclass
class Line:
    variant: str
    n_users: int
    n_servers: int
    method: str
    runs: int
    verified: int                       # runs with a verified gap to a reference
    median_gap: float | None            # relative (not %)
    worst_gap: float | None
    within: int                         # runs with gap <= WITHIN
    median_time_s: float | None
    references: dict[str, int] = field(default_factory=dict)   # kind -> runs
    worst_row: dict[str, Any] | None = None                    # the run with the worst gap

    @property
    def size(self) -> str:
        return f"{self.n_users}x{self.n_servers}"

    @property
    def no_point(self) -> int:
        return self.runs - self.verified


def headline(rows: list[dict[str, Any]]) -> list[Line]:
    """Rows with ``gap_to_reference`` attached (:func:`mecsplit.bench.report.attach_references`)."""
    seen, agg = set(), defaultdict(list)
    for r in rows:
        if r["role"] != "cell" or (r["cell_hash"], r["label"]) in seen:
            continue
        seen.add((r["cell_hash"], r["label"]))
        agg[(r["variant"], r["n_users"], r["n_servers"], r["label"])].append(r)
    out = []
    for (v, n, m, label), rs in agg.items():
        ok = [r for r in rs if r.get("gap_to_reference") is not None]
        gaps = [r["gap_to_reference"] for r in ok]
        times = [r["wall_time_s"] for r in rs if r["wall_time_s"] is not None]
        out.append(Line(v, n, m, label, len(rs), len(ok), float(np.median(gaps)) if gaps else None,
                        max(gaps) if gaps else None, sum(g <= WITHIN for g in gaps),
                        float(np.median(times)) if times else None,
                        dict(Counter(r["reference_kind"] for r in rs)),
                        max(ok, key=lambda r: r["gap_to_reference"]) if ok else None))
    out.sort(key=lambda x: (x.variant, x.n_users, x.n_servers, x.median_gap is None,
                            x.median_gap if x.median_gap is not None else 0.0, x.median_time_s or 0.0, x.method))
    return out


def fmt_gap(g: float | None) -> str:
    """A relative gap in % (3 significant digits), with the factor when the method is ≥ 2× off."""
    if g is None or not math.isfinite(g):
        return "–"
    if g >= 1:
        return f"{100 * g:,.0f} % ({1 + g:.3g}×)"
    return f"{100 * g:.3g} %"


def fmt_refs(refs: dict[str, int]) -> str:
    if set(refs) == {"certified"}:
        return "certified"
    return ", ".join(f"{n} {k}" for k, n in sorted(refs.items())) + (" (not certified)" if "best-known" in refs else "")


HEADER = ["variant", "size", "method", "runs", "median gap", "worst gap", "within 0.01 %", "median time (s)",
          "no verified point", "reference"]


def cells(x: Line) -> list[str]:
    """One display row (strings), in the order of HEADER."""
    return [x.variant, x.size, x.method, str(x.runs), fmt_gap(x.median_gap), fmt_gap(x.worst_gap),
            f"{x.within}/{x.runs}", f"{x.median_time_s:.3g}" if x.median_time_s is not None else "–",
            str(x.no_point) if x.no_point else "", fmt_refs(x.references)]


def text_table(lines: list[Line]) -> list[str]:
    """Fixed-width lines for the terminal (``bench run``)."""
    rows = [HEADER] + [cells(x) for x in lines]
    w = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    right = {3, 4, 5, 6, 7, 8}
    out = []
    for k, r in enumerate(rows):
        out.append("  ".join(c.rjust(w[i]) if i in right else c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
        if k == 0:
            out.append("  ".join("-" * x for x in w))
    return out


def markdown_table(lines: list[Line]) -> list[str]:
    out = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    return out + ["| " + " | ".join(c.replace("|", "\\|") for c in cells(x)) + " |" for x in lines]


NOTE = ("gap = (objective − reference) / |reference| for results the evaluator verified; the reference is the "
        "optimum certified by the exact solver (its proven relative gap is in the report), or, where marked, the "
        "best-known value (lowest verified objective of any stored run), which flatters the method that found it. "
        "\"no verified point\": runs that errored, were killed at the hard limit, returned no point or an "
        "infeasible one, or were flagged by the verifier; median and worst gap are over the other runs.")
