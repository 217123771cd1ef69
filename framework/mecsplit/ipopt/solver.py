"""Legacy ``SolverFactory`` plugin ``cyipopt_direct`` (and ``cyipopt`` when PyNumero's ASL is missing).

Mimics ``pyomo.contrib.pynumero.algorithms.solvers.cyipopt_solver.PyomoCyIpoptSolver``: same config
(``tee``, ``load_solutions``, ``return_nlp``, ``options``, ``intermediate_callback``,
``halt_on_evaluation_error``), same suffixes (``dual`` = Ipopt's ``mult_g`` for the minimisation
form, ``ipopt_zL_out``/``ipopt_zU_out``), and with ``load_solutions=False`` a ``results.solution``
plus symbol map so that ``model.solutions.load_from(results)`` works. Differences: the objective
bound in ``results.problem`` is the objective in the model's own sense (PyNumero reports the
negated value when maximising), no solution is attached when Ipopt ends in an error status, and
``driver``/``relax_integers`` are extra options.
"""

from __future__ import annotations

from pyomo.common.config import ConfigBlock, ConfigValue, In
from pyomo.contrib.pynumero.algorithms.solvers.cyipopt_solver import _ipopt_term_cond
from pyomo.core.base import Block, minimize
from pyomo.opt import SolverFactory, SolverResults, SolverStatus, TerminationCondition
from pyomo.opt.results.solution import Solution

from .status import DRIVERS

TERMINATION = dict(_ipopt_term_cond, Maximum_WallTime_Exceeded=TerminationCondition.maxTimeLimit)

NAME = "cyipopt_direct"
_DOC = "Ipopt via cyipopt (or casadi.nlpsol) with CasADi derivatives; no ASL needed (mecsplit)"


class CyIpoptDirectSolver:
    CONFIG = ConfigBlock(NAME)
    CONFIG.declare("tee", ConfigValue(default=False, domain=bool,
                                      description="Stream the Ipopt log to stdout"))
    CONFIG.declare("load_solutions", ConfigValue(default=True, domain=bool,
                                                 description="Load the final point into the model"))
    CONFIG.declare("return_nlp", ConfigValue(default=False, domain=bool,
                                             description="Return (results, nlp)"))
    CONFIG.declare("options", ConfigBlock(implicit=True, description="Ipopt options"))
    CONFIG.declare("intermediate_callback", ConfigValue(default=None))
    CONFIG.declare("halt_on_evaluation_error", ConfigValue(default=None))
    CONFIG.declare("driver", ConfigValue(default="cyipopt", domain=In(DRIVERS),
                                         description="cyipopt | casadi (casadi.nlpsol)"))
    CONFIG.declare("relax_integers", ConfigValue(default=False, domain=bool,
                                                 description="Treat free integer Vars as real"))

    def __init__(self, **kwds):
        self.config = self.CONFIG(kwds)

    @property
    def options(self):
        return self.config.options

    def available(self, exception_flag=False):
        try:
            import casadi  # noqa: F401
            if self.config.driver == "cyipopt":
                import cyipopt  # noqa: F401
        except ImportError:
            if exception_flag:
                raise
            return False
        return True

    def license_is_valid(self):
        return True

    def version(self):
        import cyipopt
        return tuple(int(x) if x.isdigit() else x for x in cyipopt.__version__.split("."))

    def warm_start_capable(self):
        return True  # the start point is the Vars' current values

    def __enter__(self):
        return self

    def __exit__(self, t, v, traceback):
        pass

    def solve(self, model, **kwds):
        config = self.config(kwds, preserve_implicit=True)
        if not isinstance(model, Block):
            raise ValueError(f"{NAME}.solve(model): model must be a Pyomo Block")
        from .drivers import run  # deferred: cyipopt, scipy and casadi load on first solve

        out = run(model, options=dict(config.options.items()), tee=config.tee,
                  driver=config.driver, relax_integers=config.relax_integers,
                  intermediate_callback=config.intermediate_callback,
                  halt_on_evaluation_error=config.halt_on_evaluation_error)
        lay = out.layout
        tc = TERMINATION.get(out.ipopt_status, TerminationCondition.error)
        status = TerminationCondition.to_solver_status(tc)
        results = SolverResults()
        has_point = status != SolverStatus.error
        if has_point and config.load_solutions:
            _load(out)
        elif has_point:
            _attach_solution(model, results, out)

        results.problem.name = model.name
        sense = lay.objective.sense if lay.objective is not None else minimize
        results.problem.sense = sense
        if sense == minimize:
            results.problem.upper_bound = out.objective
        else:
            results.problem.lower_bound = out.objective
        results.problem.number_of_objectives = 1
        results.problem.number_of_constraints = len(lay.constraints)
        results.problem.number_of_variables = len(lay.variables)
        results.problem.number_of_binary_variables = 0
        results.problem.number_of_integer_variables = 0
        results.problem.number_of_continuous_variables = len(lay.variables)

        results.solver.name = NAME
        results.solver.return_code = out.ipopt_status
        results.solver.message = out.message
        results.solver.wallclock_time = out.compile_time_s + out.solve_time_s
        results.solver.termination_condition = tc
        results.solver.status = status
        results.solver.iterations = out.iterations
        if config.return_nlp:
            return results, out.nlp
        return results


def _load(out) -> None:
    """Primals, duals and bound multipliers into the model (as PyomoNLP.load_state_into_pyomo)."""
    if out.nlp is not None:
        out.nlp.set_primals(out.x)
        out.nlp.set_duals(out.mult_g)
        out.nlp.load_state_into_pyomo(bound_multipliers=(out.mult_x_L, out.mult_x_U))
        return
    from .nlp import load_into_pyomo

    load_into_pyomo(out.layout, out.x, out.mult_g, out.mult_x_L, out.mult_x_U)


def _attach_solution(model, results, out) -> None:
    from pyomo.core.base.symbol_map import SymbolMap

    lay = out.layout
    sm = SymbolMap()
    soln = Solution()
    for v, val, zl, zu in zip(lay.variables, out.x.tolist(), out.mult_x_L.tolist(),
                              out.mult_x_U.tolist()):
        soln.variable[sm.getSymbol(v, lambda c: c.name)] = {
            "Value": val, "ipopt_zL_out": zl, "ipopt_zU_out": zu}
    for c, y in zip(lay.constraints, out.mult_g.tolist()):
        soln.constraint[sm.getSymbol(c, lambda c: c.name)] = {"Dual": y}
    for c in lay.trivial:
        soln.constraint[sm.getSymbol(c, lambda c: c.name)] = {"Dual": 0.0}
    model.solutions.add_symbol_map(sm)
    results._smap_id = id(sm)
    results.solution.insert(soln)


def _asl_available() -> bool:
    try:
        from pyomo.contrib.pynumero.asl import AmplInterface
        return bool(AmplInterface.available())
    except Exception:  # noqa: BLE001 - any failure to load the ASL means "not available"
        return False


def register() -> list[str]:
    """Register ``cyipopt_direct``; also take over ``cyipopt`` when PyNumero's ASL library is
    missing (Pyomo's own plugin cannot solve anything then). Idempotent; returns the names now
    served by this plugin."""
    import pyomo.environ  # noqa: F401 - loads Pyomo's plugins first, so ours wins the name

    names = [NAME]
    if SolverFactory._cls.get(NAME) is not CyIpoptDirectSolver:
        SolverFactory.register(NAME, doc=_DOC)(CyIpoptDirectSolver)
    if SolverFactory._cls.get("cyipopt") is CyIpoptDirectSolver or not _asl_available():
        if SolverFactory._cls.get("cyipopt") is not CyIpoptDirectSolver:
            SolverFactory.unregister("cyipopt")
            SolverFactory.register("cyipopt", doc=_DOC + " [replaces PyNumero's: no ASL]")(
                CyIpoptDirectSolver)
        names.append("cyipopt")
    return names
