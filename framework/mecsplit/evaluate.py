"""The independent evaluator: plain numpy, no Pyomo.

Given a variant, an instance and a candidate solution (one value per user for every decision
variable, see :meth:`Variant.variables`), it computes per-user and total energy (J), delay (s),
stability, the objective (with the variant's added terms), and every constraint's violation
(relative to its right-hand side), the variant's added constraints included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .blocks.base import Ledger, Violations
from .blocks.memory import peak_memory_GB
from .constraints import check_constraints, term_values
from .errors import InputError
from .slots import slot_mean, slot_view

FEASIBILITY_TOL = 1e-6  # relative constraint violation accepted as feasible
OBJECTIVE_RTOL = 1e-6   # a reported objective must match the evaluated one to this relative tolerance


@dataclass
class Evaluation:
    objective: float
    feasible: bool
    max_violation: float
    violations: dict[str, float]
    metrics: dict[str, float]
    per_user: dict[str, list[float]] = field(repr=False)

    def summary(self) -> dict[str, Any]:
        return {"objective": self.objective, "feasible": self.feasible, "max_violation": self.max_violation,
                "violations": {k: v for k, v in self.violations.items() if v > 0}, "metrics": self.metrics}


def coerce_solution(variant, inst, sol: Any, where: str = "<solution>") -> dict[str, np.ndarray]:
    """Validate a solution mapping (names, shapes, numbers) and return numpy arrays."""
    if not isinstance(sol, dict):
        raise InputError(where, "solution", "not a mapping", "{variable: [one value per user]}")
    out = {}
    for v in variant.variables(inst):
        per_slot = v.slot and inst.T > 1   # small timescale (mecsplit.slots): (T, N), or (N,) held in every slot
        want = f"{inst.T} lists of {inst.N} values (one per slot and user), or {inst.N} held in every slot" if per_slot \
            else f"{inst.N} values (one per user)"
        if v.name not in sol:
            raise InputError(where, f"solution.{v.name}", "missing", f"{want} in {v.unit}")
        try:
            a = np.asarray(sol[v.name], dtype=float)
        except (TypeError, ValueError):
            raise InputError(where, f"solution.{v.name}", "not numeric", f"{want}, numbers in {v.unit}") from None
        if per_slot and a.shape in ((inst.N,), (inst.T, inst.N)):
            a = np.array(np.broadcast_to(a, (inst.T, inst.N)))
        elif a.shape != (inst.N,):
            raise InputError(where, f"solution.{v.name}", f"shape {a.shape}", want)
        if not np.all(np.isfinite(a)):
            raise InputError(where, f"solution.{v.name}", "contains NaN or infinite values", "finite numbers")
        out[v.name] = a
    if "server" in out:
        s = out["server"]
        if np.any(s != np.rint(s)) or np.any(s < 0) or np.any(s >= inst.M):
            raise InputError(where, "solution.server", "not a server index", f"whole numbers in [0, {inst.M - 1}]")
        out["server"] = s.astype(int)
    return out


def _run_blocks(variant, inst, sol) -> tuple[Ledger, Violations]:
    ledger, viol = Ledger(), Violations()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for b in variant.blocks:
            b.evaluate(sol, inst, ledger, viol)
    return ledger, viol


def _totals(ledger: Ledger, n: int, T: int = 1) -> dict[str, np.ndarray]:
    """Per-user ledger sums: (n,), or (T, n) for every ledger when the instance has T > 1 slots."""
    shape = (n,) if T == 1 else (T, n)
    return {k: sum((np.asarray(c, float) for c in getattr(ledger, k).values()), np.zeros(shape))
            for k in ("delay", "energy", "stability", "quality")}


def ledger_totals(variant, inst, sol: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    ledger, _ = _run_blocks(variant, inst, sol)
    return _totals(ledger, inst.N, inst.T)


def quantity_values(variant, inst, sol: dict[str, np.ndarray], ledger: Ledger, tot: dict[str, np.ndarray]) -> dict[str, Any]:
    """Every name of :meth:`Variant.symbols` -> its value: per-user arrays (N,), ``n_users`` (M,)."""
    vals: dict[str, Any] = {k: v for k, v in sol.items() if k != "server"}
    vals.update(ledger.quantities)
    vals.update(delay_s=tot["delay"], energy_J=tot["energy"], stability=tot["stability"], quality=tot["quality"])
    vals["n_users"] = np.bincount(inst.servers_of(sol), minlength=inst.M).astype(float)
    return vals


def evaluate(variant, inst, sol: Any, tol: float = FEASIBILITY_TOL, where: str = "<solution>") -> Evaluation:
    """With T > 1 slots every objective, term and metric is the slot average of its per-slot value,
    every constraint must hold in every slot, and ``per_user`` holds slot averages (mecsplit.slots)."""
    s = coerce_solution(variant, inst, sol, where)
    ledger, viol = _run_blocks(variant, inst, s)
    tot = _totals(ledger, inst.N, inst.T)
    peak = peak_memory_GB(inst, s) if variant.has_block("memory") else None
    if peak is not None:   # depends on the split only: the same in every slot
        tot["peak_memory_GB"] = peak["overall"]
    terms: dict[str, float] = {}
    T, server = inst.T, inst.servers_of(s)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        obj = variant.objective.evaluate(inst, tot)
        if variant.constraints or variant.terms:
            vals = quantity_values(variant, inst, s, ledger, tot)
            per_slot_terms = []
            for t in range(T):
                vt = vals if T == 1 else slot_view(vals, t)
                check_constraints(variant.constraints, vt, server, inst.M, viol)
                per_slot_terms.append(term_values(variant.terms, vt, server, inst.M))
            terms = {k: float(np.mean([pt[k] for pt in per_slot_terms])) for k in per_slot_terms[0]}
            obj += sum(terms.values())
    if not np.isfinite(obj):
        viol.add("objective_finite", np.inf)
    metrics = {
        "objective": obj,
        "total_energy_J": slot_mean(tot["energy"], T),
        "avg_delay_s": slot_mean(tot["delay"], T, np.mean),
        "max_delay_s": slot_mean(tot["delay"], T, np.max),
        "mean_stability": slot_mean(tot["stability"], T, np.mean),
    }
    if variant.has_block("service_quality"):
        metrics["total_quality"] = slot_mean(tot["quality"], T)
    if peak is not None:   # per tier and overall, GB (blocks/memory.py)
        metrics.update({f"peak_memory_GB.{k}": v for k, v in peak.items()})
    metrics.update({f"term.{k}": v for k, v in terms.items()})
    for k in ("delay", "energy"):
        unit = "s" if k == "delay" else "J"
        for comp, vals in getattr(ledger, k).items():
            metrics[f"{k}_{unit}.{comp}"] = slot_mean(vals, T)
    metrics.update(ledger.metrics)
    viols = {k: float(np.max(v)) for k, v in viol.items.items()}
    mx = viol.max()
    per_user = {k: (v if T == 1 else v.mean(axis=0)).tolist() for k, v in
                (("delay_s", tot["delay"]), ("energy_J", tot["energy"]), ("stability", tot["stability"]))}
    return Evaluation(objective=obj, feasible=bool(mx <= tol), max_violation=mx, violations=viols, metrics=metrics,
                      per_user=per_user)
