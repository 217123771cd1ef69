"""Registers ``greedy`` and ``random`` (heuristics) through the ``register_solvers`` hook."""

from __future__ import annotations

from mecsplit.capabilities import CORE_BLOCKS, SPLIT_BOUND_CLASSES, Capabilities
from mecsplit.plugins import hookimpl
from mecsplit.result import Outcome, Status

from . import __version__
from .rules import capacity, greedy_association, random_association, simple_resources

# the association respects server caps and the resource rule the compiled split bounds; deadlines,
# rate floors and general constraints are only checked (a point violating them: "no feasible point found")
CAPABILITIES = Capabilities(
    blocks=CORE_BLOCKS + ("stability", "memory", "split_bounds", "service_quality"), requires=CORE_BLOCKS,
    constraints=SPLIT_BOUND_CLASSES + ("server:n_users<=",), checked=("user:delay_s<=", "user:rate_Mbps>=", "general"),
    terms=True, check=lambda v: "needs the uplink's own upload (tokens | activations), not 'external'"
    if v.block("uplink").p["upload"] == "external" else None)


def _finish(problem, tracer, server) -> Outcome:
    sol = {k: v.tolist() for k, v in simple_resources(problem.variant, problem.instance, server).items()}
    ev = problem.evaluate(sol)
    if not ev.feasible:
        return Outcome(Status.INFEASIBLE, sol, ev.objective, message=f"simple rule infeasible: {ev.summary()['violations']}")
    tracer.incumbent(ev.objective, sol)
    return Outcome(Status.FEASIBLE, sol, ev.objective, iterations=1)


def _room(problem) -> Outcome | None:
    inst = problem.instance
    if capacity(inst).sum() < inst.N:
        return Outcome(Status.INFEASIBLE, message=f"the server caps admit {int(capacity(inst).sum())} of {inst.N} users")
    return None


def solve_greedy(problem, options, tracer) -> Outcome:
    return _room(problem) or _finish(problem, tracer, greedy_association(problem.instance))


def solve_random(problem, options, tracer) -> Outcome:
    return _room(problem) or _finish(problem, tracer, random_association(problem.instance, problem.rng))


@hookimpl
def register_solvers(registry):
    registry.add_solver(name="greedy", solve=solve_greedy, exact=False, capabilities=CAPABILITIES, version=__version__,
                        description="greedy association (highest rate at the equal share, at most ⌈N/M⌉ users per server: our "
                                    "reading of the paper's 'subject to bandwidth', a modelling choice) + simple resource rule")
    registry.add_solver(name="random", solve=solve_random, exact=False, capabilities=CAPABILITIES, version=__version__,
                        description="random association (seeded; at most ⌈N/M⌉ users per server: our reading of the paper's "
                                    "'subject to bandwidth', a modelling choice) + simple resource rule")
