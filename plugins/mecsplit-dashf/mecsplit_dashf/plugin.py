"""Registers the DASHF solver, its baselines and its reusable steps through the mecsplit hooks."""

from __future__ import annotations

from mecsplit.capabilities import CORE_BLOCKS, Capabilities
from mecsplit.errors import InputError
from mecsplit.plugins import hookimpl

from . import __version__
from .solver import DOMAINS, OPTIONS, run
from .steps import dinkelbach, hungarian_slots, sdr_association


def _why_not(variant) -> str | None:
    from .model import check_supported

    try:
        check_supported(variant)
    except InputError as e:
        return f"{e.field}: {e.problem} (allowed: {e.allowed})"
    return None


# DASHF's problem (spec §2.2); added deadlines, rate floors and server caps are checked, not modelled
CAPABILITIES = Capabilities(objectives=("cost_per_quality",), blocks=CORE_BLOCKS + ("service_quality",),
                            requires=CORE_BLOCKS + ("service_quality",),
                            checked=("user:delay_s<=", "user:rate_Mbps>=", "server:n_users<="), check=_why_not)
REQUIRES = ("cvxpy", "scipy", "mecsplit_liuzhao")

SOLVERS = {
    "dashf": ("dashf", "DASHF: Dinkelbach on cost/quality; AO of SDR (CVXPY) + Gaussian randomisation + Hungarian "
                       "slots for association/offloading, and the Liu–Zhao FP step for resources"),
    "dashf-random": ("random", "baseline: random association; Dinkelbach over offloading ratio + FP resources"),
    "dashf-greedy": ("greedy", "baseline: best-channel association (within slots); Dinkelbach over offloading ratio + FP resources"),
    "no-offloading": ("local", "baseline: all local (α = Υ), best-channel association, FP resources"),
    "full-offloading": ("offload", "baseline: all at the server (α = α_min), best-channel association, FP resources"),
}

STEP_DOCS = {
    "dinkelbach": ("outer", dinkelbach, "Dinkelbach outer loop for min N/D: inner(λ, x) on N − λD; records λ_k, F(λ_k)"),
    "sdr-association": ("association", sdr_association,
                        "SDR of the association/offloading QCQP (CVXPY, Clarabel/SCS) + Gaussian randomisation + Hungarian slots"),
    "hungarian-assignment": ("association", hungarian_slots,
                             "capacitated assignment (cap_m slots per server) by scipy.optimize.linear_sum_assignment"),
}


def _solver(mode):
    def solve(problem, options, tracer):
        return run(problem, options, tracer, mode)
    return solve


@hookimpl
def register_solvers(registry):
    for name, (mode, doc) in SOLVERS.items():
        registry.add_solver(name=name, solve=_solver(mode), exact=False, description=doc, capabilities=CAPABILITIES,
                            options=dict(OPTIONS), domains=DOMAINS, version=__version__, requires=REQUIRES)
    for name, (kind, fn, doc) in STEP_DOCS.items():
        registry.add_step(name=name, kind=kind, fn=fn, description=doc)
