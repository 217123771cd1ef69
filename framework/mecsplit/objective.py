"""The ``[objective]`` table of a variant: how the per-user ledgers become one number (minimised).

kinds
* ``weighted_sum`` — Σ_n ω_t·delay_n + ω_e·energy_n + ω_s·stability_n (spec §1.7, P2). With
  ``normalise = "reference"`` (default) ω_x = w_x / X_ref, X_ref being the ledger total of the
  reference solution stored in the instance (spec §1.11 [I]); with ``"none"`` ω_x = w_x.
* ``max_delay`` — max_n delay_n (SFT, variant-models §2.4: the slowest device sets the iteration time).
* ``cost_per_quality`` — (Σ_n ω_t·delay_n + ω_e·energy_n) / Σ_n quality_n, the reciprocal of DASHF's
  service-cost ratio (spec §2.2), so that every variant is a minimisation.
* ``peak_memory`` — the overall peak memory (GB): the fullest device, edge server or cloud
  (``blocks.memory.peak_memory_GB``; SplitLLM's metric, variant-models §3.2). Also a weighted term:
  ``weights.peak_memory`` adds ω_M·peak (ω_M = w / the reference solution's peak with normalise = "reference").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .blocks.memory import peak_memory_epigraph
from .errors import InputError
from .lazy import lazy_module
from .slots import at, ix, sets, slot_view

pyo = lazy_module("pyomo.environ")  # imported on first use: listing variants needs no Pyomo

KINDS = ("weighted_sum", "max_delay", "cost_per_quality", "peak_memory")
LEDGERS = ("delay", "energy", "stability")
REF_KEYS = {"delay": "delay_ref_s", "energy": "energy_ref_J", "stability": "stability_ref"}


@dataclass(frozen=True)
class Objective:
    kind: str = "weighted_sum"
    weights: tuple[tuple[str, float], ...] = (("delay", 1.0), ("energy", 1.0), ("stability", 1.0))
    normalise: str = "reference"

    @classmethod
    def from_table(cls, t: dict[str, Any], where: str) -> "Objective":
        extra = set(t) - {"kind", "weights", "normalise"}
        if extra:
            raise InputError(where, f"objective.{sorted(extra)[0]}", "unknown key", "kind, weights, normalise")
        kind = t.get("kind", "weighted_sum")
        if kind not in KINDS:
            raise InputError(where, "objective.kind", f"got {kind!r}", " | ".join(KINDS))
        norm = t.get("normalise", "reference")
        if norm not in ("reference", "none"):
            raise InputError(where, "objective.normalise", f"got {norm!r}", "'reference' | 'none'")
        w = t.get("weights", {})
        if not isinstance(w, dict):
            raise InputError(where, "objective.weights", "must be a table", "{delay = 1, energy = 1, stability = 1}")
        weights = {"delay": 1.0, "energy": 1.0, "stability": 1.0}
        for k, v in w.items():
            if k not in weights and k != "peak_memory":
                raise InputError(where, f"objective.weights.{k}", "unknown ledger", ", ".join(LEDGERS + ("peak_memory",)))
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
                raise InputError(where, f"objective.weights.{k}", f"got {v!r}", "a finite number >= 0")
            weights[k] = float(v)
        return cls(kind, tuple(weights.items()), norm)

    def omega(self, inst) -> dict[str, float]:
        """ω_x per ledger (the weights the model actually uses)."""
        w = dict(self.weights)
        if self.normalise == "none":
            return w
        ref = inst.normalisation
        om = {k: w[k] / max(ref[REF_KEYS[k]], 1e-300) for k in LEDGERS}
        if "peak_memory" in w:
            from .blocks.memory import peak_memory_GB
            om["peak_memory"] = w["peak_memory"] / max(peak_memory_GB(inst, inst.reference_solution())["overall"], 1e-300)
        return om

    # --- Pyomo ---------------------------------------------------------------------------------
    def build(self, m, inst, ledger, extra=0.0) -> None:
        """``m.obj``; ``extra`` (the variant's added terms, :mod:`mecsplit.constraints`) is added to it.
        With T > 1 slots (:mod:`mecsplit.slots`) the objective is the slot average of the per-slot one
        (peak memory depends on the split only: the same in every slot)."""
        om, T = self.omega(inst), inst.T
        slots = range(T)
        per_user = {k: [[sum(at(c[n], t) for c in getattr(ledger, k).values()) for t in slots] for n in m.U]
                    for k in LEDGERS + ("quality",)}

        def mean(f):   # the slot average of f(t); f(0) itself for the static channel
            return f(0) if T == 1 else sum(f(t) for t in slots) / T

        if self.kind == "weighted_sum":
            mem = om["peak_memory"] * peak_memory_epigraph(m, inst) if om.get("peak_memory") else 0.0
            m.obj = pyo.Objective(expr=mean(lambda t: sum(om[k] * per_user[k][n][t] for k in LEDGERS for n in m.U
                                                          if getattr(ledger, k))) + mem + extra)
        elif self.kind == "peak_memory":
            m.obj = pyo.Objective(expr=peak_memory_epigraph(m, inst) + extra)
        elif self.kind == "max_delay":
            # epigraph: τ ≥ delay_n ∀n (s), one τ per slot with T > 1. m.delay_user[n(, t)] is user n's
            # delay; after loading a point (model.load_solution) τ is set to the slowest user's.
            m.delay_user = pyo.Expression(*sets(m, inst, m.U), rule=lambda m, n, *t: per_user["delay"][n][t[0] if t else 0])
            if T == 1:
                m.tau = pyo.Var(domain=pyo.NonNegativeReals, initialize=0.0)
                m.tau_epigraph = pyo.Constraint(m.U, rule=lambda m, n: m.delay_user[n] <= m.tau)
            else:
                m.tau = pyo.Var(m.T, domain=pyo.NonNegativeReals, initialize=0.0)
                m.tau_epigraph = pyo.Constraint(m.U, m.T, rule=lambda m, n, t: m.delay_user[n, t] <= m.tau[t])
            m.obj = pyo.Objective(expr=mean(lambda t: m.tau[ix(inst, t=t)] if T > 1 else m.tau) + extra)
        else:
            def ratio(t):
                cost = sum(om[k] * per_user[k][n][t] for k in ("delay", "energy") for n in m.U if getattr(ledger, k))
                return cost / sum(per_user["quality"][n][t] for n in m.U)
            m.obj = pyo.Objective(expr=mean(ratio) + extra)

    # --- numpy ----------------------------------------------------------------------------------
    def evaluate(self, inst, totals: dict[str, np.ndarray]) -> float:
        """``totals[k]`` is the per-user sum of ledger ``k`` (shape (N,), or (T, N) per slot: then the slot
        average of the per-slot objective); ``totals["peak_memory_GB"]`` the overall peak memory (needed by
        the peak_memory kind and term)."""
        if np.ndim(totals["delay"]) == 2:
            return float(np.mean([self.evaluate(inst, slot_view(totals, t)) for t in range(np.shape(totals["delay"])[0])]))
        om = self.omega(inst)
        if self.kind == "weighted_sum":
            mem = om["peak_memory"] * totals["peak_memory_GB"] if om.get("peak_memory") else 0.0
            return float(sum(om[k] * np.sum(totals[k]) for k in LEDGERS) + mem)
        if self.kind == "peak_memory":
            return float(totals["peak_memory_GB"])
        if self.kind == "max_delay":
            return float(np.max(totals["delay"]))
        cost = om["delay"] * np.sum(totals["delay"]) + om["energy"] * np.sum(totals["energy"])
        return float(cost / np.sum(totals["quality"]))
