"""Registers ``greedy`` and ``random`` (heuristics) through the ``register_solvers`` hook."""

from __future__ import annotations

from mecsplit.plugins import hookimpl
from mecsplit.result import Outcome, Status

from . import __version__
from .rules import greedy_association, random_association, simple_resources

CORE = ("llm", "association", "user_compute", "edge_compute", "uplink")


def _finish(problem, tracer, server) -> Outcome:
    sol = {k: v.tolist() for k, v in simple_resources(problem.variant, problem.instance, server).items()}
    ev = problem.evaluate(sol)
    if not ev.feasible:
        return Outcome(Status.INFEASIBLE, sol, ev.objective, message=f"simple rule infeasible: {ev.summary()['violations']}")
    tracer.incumbent(ev.objective, sol)
    return Outcome(Status.FEASIBLE, sol, ev.objective, iterations=1)


def solve_greedy(problem, options, tracer) -> Outcome:
    return _finish(problem, tracer, greedy_association(problem.instance))


def solve_random(problem, options, tracer) -> Outcome:
    return _finish(problem, tracer, random_association(problem.instance, problem.rng))


@hookimpl
def register_solvers(registry):
    registry.add_solver(name="greedy", solve=solve_greedy, exact=False, blocks=CORE, version=__version__,
                        description="greedy association (highest rate at the equal share, at most ⌈N/M⌉ users per server: our "
                                    "reading of the paper's 'subject to bandwidth', a modelling choice) + simple resource rule")
    registry.add_solver(name="random", solve=solve_random, exact=False, blocks=CORE, version=__version__,
                        description="random association (seeded; at most ⌈N/M⌉ users per server: our reading of the paper's "
                                    "'subject to bandwidth', a modelling choice) + simple resource rule")
