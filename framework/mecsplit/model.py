"""Pyomo model of (variant, instance), and conversions between the model and a solution.

Sets ``m.U`` (users 0..N-1) and ``m.S`` (servers 0..M-1); each block adds its variables (``alpha``,
``chi``, ``p``, ``b``, ``f``, ``fe``, ...) and constraints; the objective is ``m.obj`` (minimised).
Model units are those of :mod:`mecsplit.blocks.base` (TFLOP, GHz, MHz, Mbit, W, s, J).
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from .blocks.base import Ledger
from .blocks.memory import set_peak_memory_epigraph
from .constraints import build_pyomo
from .expr import PyomoValue
from .slots import at, ix


def build_model(variant, inst, relax_integers: bool = False) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel(name=f"{variant.name}-{inst.N}x{inst.M}-seed{inst.seed}")
    m.U = pyo.RangeSet(0, inst.N - 1)
    m.S = pyo.RangeSet(0, inst.M - 1)
    if inst.T > 1:   # small-timescale slots (mecsplit.slots)
        m.T = pyo.RangeSet(0, inst.T - 1)
    m.epigraphs = []   # (τ, per-user expressions, "max" | "min") of max/min aggregates, see load_solution
    ledger = Ledger()
    for b in variant.blocks:
        b.build(m, inst, ledger)
    extra = 0.0
    if variant.constraints or variant.terms:
        if inst.T == 1:
            extra = build_pyomo(variant.constraints, variant.terms, quantity_values(m, variant, inst, ledger), m)
        else:   # every added constraint in every slot; the terms slot-averaged
            extra = sum(build_pyomo(variant.constraints, variant.terms, quantity_values(m, variant, inst, ledger, t), m,
                                    suffix=f"_slot{t}") for t in range(inst.T)) / inst.T
    variant.objective.build(m, inst, ledger, extra)
    if relax_integers:
        pyo.TransformationFactory("core.relax_integer_vars").apply_to(m)
    return m


def quantity_values(m, variant, inst, ledger: Ledger, t: int = 0) -> dict[str, PyomoValue]:
    """Every name of :meth:`Variant.symbols` as Pyomo expressions (per user; ``n_users`` per server)
    in slot ``t``; a pair variable is read at the user's server, Σ_j χ[n, j]·x[n, j]."""
    vals: dict[str, PyomoValue] = {}
    for v in variant.variables(inst):
        if v.name == "server":
            continue
        comp = getattr(m, v.component or v.name)
        key = (lambda *i: ix(inst, *i, t=t)) if v.slot else (lambda *i: _key(i))
        vals[v.name] = PyomoValue("user", [sum(m.chi[n, j] * comp[key(n, j)] for j in m.S) if v.pair else comp[key(n)]
                                           for n in m.U])
    for k, xs in ledger.quantities.items():
        vals[k] = PyomoValue("user", [at(x, t) for x in xs])
    for k, name in (("delay", "delay_s"), ("energy", "energy_J"), ("stability", "stability"), ("quality", "quality")):
        comps = getattr(ledger, k).values()
        vals[name] = PyomoValue("user", [sum(at(c[n], t) for c in comps) for n in m.U])
    if hasattr(m, "chi"):
        vals["n_users"] = PyomoValue("server", [sum(m.chi[n, j] for n in m.U) for j in m.S])
    return vals


def _key(idx: tuple):
    """A component index: the bare user for one-dimensional components."""
    return idx[0] if len(idx) == 1 else idx


def extract_solution(m, variant, inst) -> dict[str, list[float]]:
    """Per-user solution from the model's current values (pair variables read at the user's server)."""
    specs = variant.variables(inst)
    sol: dict[str, list[float]] = {}
    server = np.zeros(inst.N, dtype=int)
    if hasattr(m, "chi"):
        chi = np.array([[pyo.value(m.chi[n, j]) for j in m.S] for n in m.U], dtype=float)
        server = np.argmax(chi, axis=1)
        sol["server"] = server.tolist()
    for v in specs:
        if v.name == "server":
            continue
        comp = getattr(m, v.component or v.name)

        def read(t: int, comp=comp, v=v) -> list[float]:
            idx = (lambda n: (n, int(server[n]))) if v.pair else (lambda n: (n,))
            return [float(pyo.value(comp[ix(inst, *idx(n), t=t)] if v.slot else comp[_key(idx(n))])) for n in m.U]

        sol[v.name] = [read(t) for t in range(inst.T)] if v.slot and inst.T > 1 else read(0)
    return sol


def tighten_tau(m) -> None:
    """Set max_delay's epigraph τ to the slowest user's delay (per slot with T > 1 slots)."""
    if not (hasattr(m, "tau") and hasattr(m, "delay_user")):
        return
    if m.tau.is_indexed():
        for t in m.tau:
            m.tau[t].set_value(max(pyo.value(m.delay_user[n, t]) for n in m.U))
    else:
        m.tau.set_value(max(pyo.value(m.delay_user[n]) for n in m.U))


def load_solution(m, variant, inst, sol: dict, fix: tuple[str, ...] = ()) -> None:
    """Set model values from a per-user solution (a warm start); variables named in ``fix``
    (solution names, e.g. ``("server", "alpha")``) are fixed."""
    server = np.asarray(sol.get("server", np.zeros(inst.N)), dtype=int)
    for v in variant.variables(inst):
        if v.name not in sol:
            continue
        if v.name == "server":
            for n in m.U:
                for j in m.S:
                    m.chi[n, j].set_value(1.0 if j == server[n] else 0.0)
                    if "server" in fix:
                        m.chi[n, j].fix()
            continue
        comp = getattr(m, v.component or v.name)
        slotted = v.slot and inst.T > 1
        vals = np.broadcast_to(np.asarray(sol[v.name], float), (inst.T, inst.N) if slotted else (inst.N,))
        for t in range(inst.T if slotted else 1):
            for n in m.U:
                base = (n, int(server[n])) if v.pair else (n,)
                idx = ix(inst, *base, t=t) if v.slot else _key(base)
                comp[idx].set_value(float(vals[t, n] if slotted else vals[n]), skip_validation=True)
                if v.name in fix:
                    comp[idx].fix()
    tighten_tau(m)
    if hasattr(m, "peak_memory_GB") and "alpha" in sol:   # peak-memory epigraph: π = the fullest machine
        set_peak_memory_epigraph(m, inst, {k: np.asarray(v) for k, v in sol.items()})
    for t, xs, kind in getattr(m, "epigraphs", []):    # the variant's max/min aggregates, innermost first
        vals = [pyo.value(x) for x in xs]
        t.set_value(max(vals) if kind == "max" else min(vals), skip_validation=True)
