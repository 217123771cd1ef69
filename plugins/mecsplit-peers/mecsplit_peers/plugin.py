"""Registration of the peer solvers (entry point ``peers = "mecsplit_peers.plugin"``)."""

from __future__ import annotations

import dataclasses
import importlib.util

from mecsplit.capabilities import GENERIC
from mecsplit.plugins import hookimpl

from . import __version__

# the solvers' modules import Pyomo (and gurobipy): they are imported on the first solve, not when registering
_scip, _gurobi, _mindtpy, _enumerate = ("mecsplit_peers.scip:solve_scip", "mecsplit_peers.gurobi:solve_gurobi",
                                        "mecsplit_peers.mindtpy:solve_mindtpy", "mecsplit_peers.enumerate:solve_enumerate")


def _gurobi_fits(variant, n_users: int, n_servers: int) -> str | None:
    """A size the licence refuses, known before solving (so a benchmark skips it with the reason)."""
    if importlib.util.find_spec("gurobipy") is None:
        return None
    from .gurobi import licence_refuses
    return licence_refuses(variant, n_users, n_servers)


# the solvers' choices, checked by the framework before a solve (mecsplit.solve.check_option) with the
# ranges below; numbers not named must be ≥ 0
SCIP_FORMULATIONS = ("raw", "perspective")
GUROBI_FORMULATIONS, GUROBI_CUTS = ("auto", "pairs", "lean", "raw"), ("band", "hand", "off")
MINDTPY_STRATEGIES, MINDTPY_INITS = ("OA", "ECP", "FP"), ("rNLP", "initial_binary", "max_binary", "FP")
REL_GAP = {"lo": 0, "hi": 1, "hi_open": True}


@hookimpl
def register_solvers(registry):
    registry.add_solver(
        name="scip", solve=_scip, exact=True, requires=("pyscipopt",), version=__version__, capabilities=GENERIC,
        description="SCIP (global MINLP) via Pyomo scip_direct on the variant's model; optimal only when SCIP proves it",
        options={"rel_gap": 1e-4, "formulation": "raw", "threads": 0, "feastol": 1e-8,
                 "watchdog_grace_s": 2.0},
        domains={"rel_gap": REL_GAP, "formulation": SCIP_FORMULATIONS, "feastol": {"lo": 1e-12, "hi": 1e-3},
                 "watchdog_grace_s": {}})   # any finite number: negative fires the watchdog early (a test hook)
    registry.add_solver(
        name="gurobi", solve=_gurobi, exact=True, requires=("gurobipy",), version=__version__,
        capabilities=dataclasses.replace(GENERIC, fits=_gurobi_fits),   # 'auto': the variant's own model beyond the core
        description="Gurobi (global MINLP, gurobipy >= 12): structured core formulation or the variant's model; optimal only when Gurobi proves it",
        options={"rel_gap": 1e-4, "formulation": "auto", "cuts": "band", "threads": 1, "feastol": 1e-7,
                 "numeric_focus": 2},
        domains={"rel_gap": REL_GAP, "formulation": GUROBI_FORMULATIONS, "cuts": GUROBI_CUTS,
                 "feastol": {"lo": 1e-9, "hi": 1e-2}, "numeric_focus": (0, 1, 2, 3)})
    registry.add_solver(
        name="mindtpy-oa", solve=_mindtpy, exact=False, requires=("mecsplit.ipopt", "cyipopt", "highspy", "casadi"), version=__version__,
        capabilities=GENERIC,
        description="Pyomo MindtPy OA (HiGHS MILP + Ipopt via mecsplit.ipopt); heuristic on this nonconvex model",
        options={"strategy": "OA", "init_strategy": "rNLP", "iteration_limit": 50, "no_good_cuts": True,
                 "heuristic_nonconvex": False, "rel_gap": 1e-6},
        domains={"strategy": MINDTPY_STRATEGIES, "init_strategy": MINDTPY_INITS, "iteration_limit": {"lo": 1},
                 "rel_gap": REL_GAP})
    registry.add_solver(
        name="enumerate", solve=_enumerate, exact=False, requires=("mecsplit.ipopt", "cyipopt", "casadi"), version=__version__,
        capabilities=GENERIC,
        description="every integer assignment of a tiny instance, each continuous NLP by Ipopt; best verified point, no bound",
        options={"max_assignments": 5000, "starts": 1, "tol": 1e-9, "max_iter": 3000},
        domains={"max_assignments": {"lo": 1}, "starts": {"lo": 1}, "tol": {"lo": 0, "lo_open": True}, "max_iter": {"lo": 1}})
