"""Registers the solver ``exact``: a certified global optimum (outer-approximation MILP or Lagrangian B&B)."""

from __future__ import annotations

import numpy as np

from mecsplit.capabilities import CORE_BLOCKS, SPLIT_BOUND_CLASSES, Capabilities
from mecsplit.plugins import hookimpl
from mecsplit.result import Outcome, Status

from . import __version__

OPTIONS = {"rel_gap": 1e-7, "abs_gap": 1e-12, "node_limit": 100000, "dual_iters": 60, "heur_every": 10,
           "method": "oa", "colgen": "off", "colgen_share": 0.5, "colgen_max_s": 30.0, "local_search": True,
           "second_core": True, "highs_threads": 1, "verbose": False}
# checked by the framework before a solve (mecsplit.solve.check_option); numbers not named here are ≥ 0
DOMAINS = {"method": ("oa", "bnb"), "colgen": ("off", "root", "all"), "colgen_share": {"lo": 0, "lo_open": True, "hi": 1},
           "rel_gap": {"lo": 0, "hi": 1}, "node_limit": {"lo": 1}, "dual_iters": {"lo": 1}, "heur_every": {"lo": 1},
           "highs_threads": {"lo": 0, "hi": 256}}   # (HiGHS aborted the process at 10⁶ threads; 1024 ran)


def data_for(problem):
    """The exact solver's data for a problem: the one place it is built, from the instance's compiled
    form (mecsplit.compile): split bounds, and the variant's added per-user deadline (delay_s <= D),
    rate floor (rate_Mbps >= r) and per-server cap (n_users <= k) through Data.constrain."""
    from .subproblems import Data   # imported here: registering the plugin imports no HiGHS

    D = Data(problem.variant, problem.instance)
    if D.compression:   # SFT's keep ratio: options get ρ pieces (compression.py)
        from .compression import Pieces
        D.pieces = Pieces(problem.variant.block("compression"), problem.instance)
    C = problem.instance.compiled
    return D.constrain(deadline_s=C.user_bound("delay_s", "<="), rate_min_Mbps=C.user_bound("rate_Mbps", ">="),
                       max_users=C.max_users())


def solve_exact(problem, options, tracer):
    return run(data_for(problem), options, tracer, problem.time_limit_s, problem.warm_start, problem.seed)


def run(D, options, tracer, time_limit_s=None, warm_start=None, seed=0):
    """Solve the problem that ``D`` describes; ``options`` as OPTIONS (all keys). Returns an Outcome.
    ``seed`` (the solve's) is HiGHS' random seed in every model (mod 2³¹) and the neighbourhood search's;
    HiGHS runs on ``highs_threads`` threads (0: its own choice; 1 by default, docs/exact.md §2c "Threads")."""
    from mecsplit import quiet

    options = {**OPTIONS, **options}
    with quiet.highs_options(random_seed=seed, threads=int(options["highs_threads"])):
        return _run(D, options, tracer, time_limit_s, warm_start, int(seed))


def _run(D, options, tracer, time_limit_s, warm_start, seed):
    from .bnb import BnB
    from .dinkelbach import solve_ratio
    from .fixed import to_solution
    from .minmax import MinMax

    log = print if options["verbose"] else None
    colgen, method = options["colgen"], options["method"]
    share, max_s = float(options["colgen_share"]), float(options["colgen_max_s"])

    def make_solver(data, tr, rel_gap, abs_gap, time_limit_s):
        return BnB(data, tr, rel_gap=rel_gap, abs_gap=abs_gap, node_limit=int(options["node_limit"]),
                   time_limit_s=time_limit_s, dual_iters=int(options["dual_iters"]), log=log,
                   heur_every=int(options["heur_every"]), colgen=colgen, colgen_share=share, colgen_max_s=max_s,
                   method=method, local_search=options["local_search"], second_core=options["second_core"],
                   seed=seed, highs_threads=int(options["highs_threads"]))

    if D.kind == "max_delay":   # min–max delay: bisection on the level with feasibility MILPs (minmax.py)
        if D.compression:
            from .compression import CompressionMinMax as MinMax
        mm = MinMax(D, tracer, options["rel_gap"], options["abs_gap"], time_limit_s, log)
        inc, lb, status = mm.run(warm_start)
        extra, iterations = dict(mm.stats), len(mm.stats["levels"])
        if status == "infeasible":
            return Outcome(Status.INFEASIBLE, message="proven infeasible: " + mm.infeasible, iterations=iterations,
                           extra=dict(extra, stopped_by=status, proof=mm.infeasible))
        if inc is None:
            return Outcome(Status.TIME_LIMIT, bound=lb if np.isfinite(lb) else None, iterations=iterations,
                           message="limit reached before a feasible point was found", extra=dict(extra, stopped_by=status))
        st = {"optimal": Status.OPTIMAL, "stalled": Status.FEASIBLE}.get(status, Status.TIME_LIMIT)
        msg = {"optimal": "gap closed", "time_limit": "time limit reached",
               "stalled": "stopped with the gap open (a feasibility MILP made no progress)"}[status]
        return Outcome(st, solution=mm.solution(), objective=inc["obj"], bound=lb, iterations=iterations,
                       message=msg, extra=dict(extra, stopped_by=status, bandwidth_prices=inc["lam"].tolist(),
                                               cloud_prices=inc["pi"].tolist()))
    if D.Q is None:
        bnb = make_solver(D, tracer, options["rel_gap"], options["abs_gap"], time_limit_s)
        inc, lb, status = bnb.run(warm_start)
        extra, iterations = dict(bnb.stats), bnb.nodes
        if status == "infeasible":
            return Outcome(Status.INFEASIBLE, message="proven infeasible: " + bnb.infeasible, iterations=iterations,
                           extra=dict(extra, stopped_by=status, proof=bnb.infeasible))
    else:   # cost_per_quality: Dinkelbach over exact weighted-sum steps
        inc, lb, status, extra = solve_ratio(D, tracer, make_solver, options["rel_gap"], options["abs_gap"],
                                             time_limit_s, warm_start, log)
        iterations = extra["dinkelbach_steps"]
    if inc is None:   # stopped by a limit before any feasible point
        return Outcome(Status.TIME_LIMIT, bound=lb if np.isfinite(lb) else None, iterations=iterations,
                       message="limit reached before a feasible point was found", extra=dict(extra, stopped_by=status))
    sol = to_solution(D, inc)
    st = {"optimal": Status.OPTIMAL, "stalled": Status.FEASIBLE}.get(status, Status.TIME_LIMIT)
    msg = {"optimal": "gap closed", "time_limit": "time limit reached", "node_limit": "node limit reached",
           "stalled": "stopped with the gap open (no new cut / no Dinkelbach progress); incumbent and bound as found"}[status]
    extra.update(stopped_by=status, multipliers={"bandwidth": inc["lam"].tolist(), "frequency": inc["mu"].tolist()})
    return Outcome(st, solution=sol, objective=inc["obj"], bound=lb, iterations=iterations, message=msg, extra=extra)


def _why_not(variant) -> str | None:
    """What the exact core needs beyond its blocks (Data checks the same at solve time)."""
    names = [b.name for b in variant.blocks]
    if "edge_compute" not in names and "edge_tier" not in names:
        return "needs block 'edge_compute' (or 'edge_tier' with 'cloud' for three tiers)"
    if "edge_tier" in names and ("cloud" not in names or variant.objective.kind != "max_delay"):
        return "blocks.edge_tier: three tiers are certified with the cloud block and the max_delay objective only"
    if variant.objective.kind == "cost_per_quality" and variant.constraints:
        return (f"constraint '{variant.constraints[0].name}': added constraints are not taken with the "
                "cost_per_quality ratio (Dinkelbach steps are untested with them)")
    if variant.block("llm").p["split"] != "integer":
        return "blocks.llm.split: needs integer splits (split = \"integer\"; docs/exact.md §6)"
    if variant.has_block("compression") and (variant.objective.kind != "max_delay" or "edge_tier" in names):
        return "blocks.compression: the keep ratio is certified with the max_delay objective and two tiers only"
    if variant.block("uplink").p["upload"] == "external" and not variant.has_block("compression"):
        return "blocks.uplink.upload: needs the uplink's own upload (tokens | activations), not 'external'"
    ratio = variant.objective.kind == "cost_per_quality"
    if variant.has_block("service_quality") and (not ratio or variant.block("service_quality").depends_on() != "alpha"):
        return ("blocks.service_quality.kind: takes service_quality only in the cost_per_quality ratio with an "
                "α-dependent kind (offload_log | local_log)")
    return None


#: per-user deadlines and rate floors go into the per-option subproblems, user caps into the MILP (issue 15 §5)
CONSTRAINTS = SPLIT_BOUND_CLASSES + ("user:delay_s<=", "user:rate_Mbps>=", "server:n_users<=")
CAPABILITIES = Capabilities(objectives=("weighted_sum", "cost_per_quality", "max_delay"),
                            blocks=CORE_BLOCKS + ("stability", "service_quality", "memory", "split_bounds",
                                                  "edge_tier", "cloud", "tier_memory", "compression"),
                            requires=tuple(b for b in CORE_BLOCKS if b != "edge_compute"), constraints=CONSTRAINTS,
                            check=_why_not)


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
        capabilities=CAPABILITIES, options=dict(OPTIONS), domains=DOMAINS,
        version=__version__, requires=("highspy",))
