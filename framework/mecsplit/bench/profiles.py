"""Aggregate statistics for solver comparisons.

* Dolan–Moré performance profiles (Math. Prog. 91, 2002): for problem p and solver s with cost
  t[p,s] (time; ``inf`` = failed), r[p,s] = t[p,s] / min_s t[p,s] and
  rho_s(tau) = |{p : r[p,s] <= tau}| / |P|. A problem no solver solved counts against everyone.
* Quality-conditioned profile: a run "solves" p only when its verified objective is within
  ``epsilon`` (relative) of the reference; others get ``inf``.
* Shifted geometric mean: exp(mean(log(t + shift))) - shift, with shift 1 s and 10 s (the shift
  keeps sub-second runs from dominating the ratio; the MIPLIB/PAVER convention uses 1 s or 10 s).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable

import numpy as np


def performance_profile(costs: dict[str, dict[str, float]], solvers: Iterable[str] | None = None,
                        tau_max: float | None = None, n_tau: int = 200) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``costs[problem][solver]`` -> (tau grid (>= 1), {solver: rho(tau)}). Missing entries = failed."""
    probs = sorted(costs)
    solvers = sorted(solvers) if solvers is not None else sorted({s for p in probs for s in costs[p]})
    if not probs or not solvers:
        return np.array([1.0]), {s: np.array([0.0]) for s in solvers}
    T = np.array([[costs[p].get(s, math.inf) for s in solvers] for p in probs], dtype=float)
    T = np.where(np.isfinite(T) & (T >= 0), T, np.inf)
    best = T.min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        R = np.where(np.isfinite(best)[:, None], T / np.maximum(best[:, None], 1e-9), np.inf)
    finite = R[np.isfinite(R)]
    top = tau_max or (max(2.0, float(finite.max()) * 1.05) if finite.size else 2.0)
    taus = np.unique(np.concatenate([np.geomspace(1.0, top, n_tau), finite]))
    rho = {s: np.array([(R[:, j] <= t).mean() for t in taus]) for j, s in enumerate(solvers)}
    return taus, rho


def shifted_geometric_mean(values: Iterable[float], shift: float = 1.0) -> float:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return math.nan
    return float(np.exp(np.mean(np.log(v + shift))) - shift)


def relative_gap_to(value: float | None, reference: float | None) -> float | None:
    """(value − reference) / max(|reference|, 1e-10); negative means better than the reference."""
    if value is None or reference is None or not math.isfinite(value) or not math.isfinite(reference):
        return None
    return (value - reference) / max(abs(reference), 1e-10)


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
