"""Registers the Liu–Zhao solvers and their reusable steps through the mecsplit hooks."""

from __future__ import annotations

from mecsplit.capabilities import CORE_BLOCKS, Capabilities
from mecsplit.plugins import hookimpl

from . import __version__
from .baselines import DESCRIPTIONS, DOMAINS, OPTIONS, PLANS, SOLVER_OPTIONS, solver_fn
from .decomposition import STEPS

# the Liu–Zhao problem P2 (spec §1.7); added deadlines, rate floors and server caps are not modelled by
# the decomposition: the framework checks its point against them (an unmet one -> "no feasible point found")
CAPABILITIES = Capabilities(
    objectives=("weighted_sum",), blocks=CORE_BLOCKS + ("stability",), requires=CORE_BLOCKS,
    constraints=("user:alpha<=", "user:alpha>="), checked=("user:delay_s<=", "user:rate_Mbps>=", "server:n_users<="),
    check=lambda v: "needs the uplink's own upload (tokens | activations), not 'external'"
    if v.block("uplink").p["upload"] == "external" else None)
STEP_DOCS = {
    "fp-resources": "FP resource step (P4, closed-form z, ν, q; numpy KKT block solves); α relaxed then rounded",
    "fp-resources-fixed-alpha": "FP resource step with α fixed",
    "random-resources": "random resources from per-run random weights",
    "cccp-association": "CCCP association: exact penalty ϱΣχ(1−χ), linearised, an LP on HiGHS per step, multi-start",
    "load-association": "association by single-user moves priced at the equal shares of the loads they create (not in the paper)",
    "greedy-association": "greedy association: highest rate, at most ⌈N/M⌉ users per server (our reading of 'subject to "
                          "bandwidth'; option capped=False drops it); resources reset to equal shares",
    "random-association": "random association, at most ⌈N/M⌉ users per server (resources reset to equal shares)",
    "exact-alpha": "exact split step (integer enumeration / closed form) for fixed resources",
    "random-alpha": "random split",
    "alpha-min": "α = α_min (edge-only)",
    "alpha-max": "α = α_max = Υ−1 with the stability block (local-only)",
}


@hookimpl
def register_solvers(registry):
    for name in PLANS:
        registry.add_solver(name=name, solve=solver_fn(name), exact=False, description=DESCRIPTIONS[name],
                            capabilities=CAPABILITIES, options={**OPTIONS, **SOLVER_OPTIONS.get(name, {})}, domains=DOMAINS, version=__version__,
                            requires=("highspy",))
    for name, (kind, fn) in STEPS.items():
        registry.add_step(name=name, kind=kind, fn=fn, description=STEP_DOCS[name])
