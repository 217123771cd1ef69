"""Registers the ``splitllm`` solver through the ``register_solvers`` hook.

One optimiser for every scheme of the SplitLLM family (the variant is the scheme, docs/splitllm.md §3):
``splitllm-2025`` (the three-tier scheme) and its baselines ``splitllm-sl-2025`` (two-tier SL),
``splitllm-sfl-2025`` (SFL, one server-side model per user), ``splitllm-device-2025`` (device-only LoRA),
``splitllm-cloud-2025`` (cloud-centric) — every variant extending splitllm-2025.
"""

from __future__ import annotations

import numpy as np

from mecsplit.capabilities import Capabilities
from mecsplit.plugins import hookimpl
from mecsplit.result import Outcome, Status

from . import __version__
from .memory_search import min_peak_cuts
from .scheme import Scheme
from .search import Search

KINDS = ("max_delay", "peak_memory")
OPTIONS = {"max_exact": 6}


def _why_not(variant) -> str | None:
    if variant.has_block("uplink") and variant.block("uplink").p["upload"] == "external":
        return "needs the uplink to carry its own upload (upload = 'external' is for compression)"
    ms = variant.block("memory_scheme").p if variant.has_block("memory_scheme") else {"edge_streams": "one", "caps": "all"}
    if variant.has_block("tier_memory") and ms["caps"] == "all" and ms["edge_streams"] == "per_user":
        return "enforced per-user edge memory couples the users' cuts (set memory_scheme.caps = 'device')"
    return None


# the SplitLLM family (models/splitllm-*.toml): blocks it models, objective kinds it optimises
CAPABILITIES = Capabilities(objectives=KINDS, requires=("llm", "user_compute", "memory"),
                            blocks=("llm", "association", "user_compute", "edge_tier", "cloud", "uplink", "memory",
                                    "tier_memory", "memory_scheme", "pinned_split"), check=_why_not)


def to_solution(variant, inst, sc, server, alpha, beta, res) -> dict[str, list]:
    full = {"server": server, "alpha": alpha, "beta": beta, "f_GHz": sc.f_max, "p_W": sc.p_max,
            "b_MHz": res["b_MHz"], "fe_GHz": res["fe_GHz"], "fc_GHz": res["fc_GHz"]}
    return {v.name: np.asarray(full[v.name], float).tolist() for v in variant.variables(inst)}


def solve_splitllm(problem, options, tracer) -> Outcome:
    v, inst = problem.variant, problem.instance
    sc = Scheme.of(v, inst)
    search = Search(sc, tracer, max_exact=int(options["max_exact"]))
    if v.objective.kind == "peak_memory":
        server = search.greedy_association()
        cuts = min_peak_cuts(v, inst, sc, server, tracer)
        if cuts is None:
            return Outcome(Status.INFEASIBLE, message="no allowed cut for some user (memory caps)")
        out = search.polish(server, *cuts)
    else:
        out = search.run()
    if out is None:
        return Outcome(Status.INFEASIBLE, message="no allowed cut for some user on its edge (memory caps)")
    server, alpha, beta, res = out
    sol = to_solution(v, inst, sc, server, alpha, beta, res)
    ev = problem.evaluate(sol)
    extra = {"exact_resource_solves": search.exact_solves, "moves": search.moves,
             "resource_lower_bound_s": res["resource_lower_bound_s"]}
    if not ev.feasible:
        return Outcome(Status.ERROR, sol, ev.objective, message=f"infeasible point: {ev.summary()['violations']}", extra=extra)
    tracer.incumbent(ev.objective, sol)
    return Outcome(Status.FEASIBLE, sol, ev.objective, iterations=search.exact_solves, extra=extra)


@hookimpl
def register_solvers(registry):
    registry.add_solver(
        name="splitllm", solve=solve_splitllm, exact=False, capabilities=CAPABILITIES, options=dict(OPTIONS),
        version=__version__, description="SplitLLM family (three-tier scheme and its baselines): per-user cut "
        "enumeration with Lagrangian screening + association moves around an exact min-max resource step; "
        "objective max_delay or peak_memory")
