"""Registers the solver ``exact``: a certified global optimum (outer-approximation MILP or Lagrangian B&B)."""

from __future__ import annotations

from mecsplit.capabilities import CORE_BLOCKS, SPLIT_BOUND_CLASSES, Capabilities
from mecsplit.errors import InputError
from mecsplit.plugins import hookimpl
from mecsplit.result import Outcome, Status

from . import __version__

OPTIONS = {"rel_gap": 1e-7, "abs_gap": 1e-12, "node_limit": 100000, "dual_iters": 60, "heur_every": 10,
           "method": "oa", "colgen": "off", "colgen_share": 0.5, "colgen_max_s": 30.0, "local_search": True,
           "verbose": False}


def _choice(options, key, allowed):
    if options[key] not in allowed:
        raise InputError("<exact>", f"options.{key}", f"got {options[key]!r}", " | ".join(allowed))
    return options[key]


def _share(options):
    v = options["colgen_share"]
    if not isinstance(v, (int, float)) or not 0 < v <= 1:
        raise InputError("<exact>", "options.colgen_share", f"got {v!r}", "a number in (0, 1]")
    return float(v)


def _seconds(options):
    v = options["colgen_max_s"]
    if not isinstance(v, (int, float)) or not v >= 0:
        raise InputError("<exact>", "options.colgen_max_s", f"got {v!r}", "seconds >= 0")
    return float(v)


def solve_exact(problem, options, tracer):
    # imported here: registering the plugin (``mecsplit plugins``, ``variants``) imports no HiGHS
    from .bnb import BnB
    from .dinkelbach import solve_ratio
    from .fixed import to_solution
    from .subproblems import Data

    D = Data(problem.variant, problem.instance)
    log = print if options["verbose"] else None
    colgen, method = _choice(options, "colgen", ("off", "root", "all")), _choice(options, "method", ("oa", "bnb"))
    share, max_s = _share(options), _seconds(options)

    def make_solver(data, tr, rel_gap, abs_gap, time_limit_s):
        return BnB(data, tr, rel_gap=rel_gap, abs_gap=abs_gap, node_limit=int(options["node_limit"]),
                   time_limit_s=time_limit_s, dual_iters=int(options["dual_iters"]), log=log,
                   heur_every=int(options["heur_every"]), colgen=colgen, colgen_share=share, colgen_max_s=max_s,
                   method=method, local_search=options["local_search"])

    if D.Q is None:
        bnb = make_solver(D, tracer, options["rel_gap"], options["abs_gap"], problem.time_limit_s)
        inc, lb, status = bnb.run(problem.warm_start)
        extra, iterations = dict(bnb.stats), bnb.nodes
    else:   # cost_per_quality: Dinkelbach over exact weighted-sum steps
        inc, lb, status, extra = solve_ratio(D, tracer, make_solver, options["rel_gap"], options["abs_gap"],
                                             problem.time_limit_s, problem.warm_start, log)
        iterations = extra["dinkelbach_steps"]
    sol = to_solution(D, inc)
    st = {"optimal": Status.OPTIMAL, "stalled": Status.FEASIBLE}.get(status, Status.TIME_LIMIT)
    msg = {"optimal": "gap closed", "time_limit": "time limit reached", "node_limit": "node limit reached",
           "stalled": "stopped with the gap open (no new cut / no Dinkelbach progress); incumbent and bound as found"}[status]
    extra.update(stopped_by=status, multipliers={"bandwidth": inc["lam"].tolist(), "frequency": inc["mu"].tolist()})
    return Outcome(st, solution=sol, objective=inc["obj"], bound=lb, iterations=iterations, message=msg, extra=extra)


def _why_not(variant) -> str | None:
    """What the exact core needs beyond its blocks (Data checks the same at solve time)."""
    if variant.block("llm").p["split"] != "integer":
        return "blocks.llm.split: needs integer splits (split = \"integer\"; docs/exact.md §6)"
    if variant.block("uplink").p["upload"] == "external":
        return "blocks.uplink.upload: needs the uplink's own upload (tokens | activations), not 'external'"
    ratio = variant.objective.kind == "cost_per_quality"
    if variant.has_block("service_quality") and (not ratio or variant.block("service_quality").depends_on() != "alpha"):
        return ("blocks.service_quality.kind: takes service_quality only in the cost_per_quality ratio with an "
                "α-dependent kind (offload_log | local_log)")
    return None


CAPABILITIES = Capabilities(objectives=("weighted_sum", "cost_per_quality"),
                            blocks=CORE_BLOCKS + ("stability", "service_quality", "memory", "split_bounds"),
                            requires=CORE_BLOCKS, constraints=SPLIT_BOUND_CLASSES, check=_why_not)


@hookimpl
def register_solvers(registry):
    registry.add_solver(
        name="exact", solve=solve_exact, exact=True,
        description="Certified global optimum: Lagrangian relaxation of the per-server budgets at the root "
                    "(closed-form / 1-D convex per-option subproblems, boxstep cutting planes on HiGHS), then the "
                    "assignment MILP with outer-approximated server costs on HiGHS (method=oa) or Lagrangian "
                    "branch-and-bound (method=bnb); incumbents by exact KKT solves of the fixed assignment, "
                    "polished by move/swap local search; the "
                    "cost_per_quality ratio (whole-layer splits) by Dinkelbach over it",
        capabilities=CAPABILITIES, options=dict(OPTIONS), version=__version__, requires=("highspy",))
