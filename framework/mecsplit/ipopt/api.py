"""``solve_nlp``: the small API the rest of mecsplit uses."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field



@dataclass
class NLPResult:
    """Outcome of one Ipopt solve.

    status: "optimal" (incl. Ipopt's "acceptable" level), "infeasible", "max_iter", "time_limit",
    or "error" (anything else: see ``ipopt_status`` and ``message``). ``objective`` is in the model's
    own sense. ``wall_time_s`` is the whole call (s), of which ``compile_time_s`` is the model walk
    plus, on a cache miss, derivative construction, and ``callback_time_s`` is the time spent in
    function/derivative evaluations (Python callbacks for cyipopt; CasADi's C evaluations for the
    casadi driver). ``x`` maps free-variable names to values. ``duals`` maps constraint names to
    Ipopt's multipliers for the minimisation form (PyNumero's sign convention; constraints with no
    free variable get 0), or is None when Ipopt failed.
    """

    status: str
    objective: float
    iterations: int
    wall_time_s: float
    compile_time_s: float
    callback_time_s: float
    x: dict = field(repr=False)
    message: str = ""
    duals: dict | None = field(default=None, repr=False)
    ipopt_status: str = ""
    solve_time_s: float = 0.0
    cache_hit: bool = False
    driver: str = "cyipopt"


def solve_nlp(model, *, options=None, tee=False, driver="cyipopt", relax_integers=False,
              load_solutions=True) -> NLPResult:
    """Solve the continuous NLP of a Pyomo ``model`` with Ipopt.

    Fixed Vars and mutable Params enter as CasADi parameters, so repeated calls on models with the
    same structure reuse the compiled derivatives. Free integer Vars raise ``InputError`` unless
    ``relax_integers``. With ``load_solutions`` the final point is written to the Vars when the
    status is optimal, max_iter or time_limit.
    """
    from .drivers import run  # deferred: cyipopt, scipy and casadi load on first solve

    t0 = time.perf_counter()
    out = run(model, options=options, tee=tee, driver=driver, relax_integers=relax_integers)
    lay = out.layout
    status = out.status
    if load_solutions and status in ("optimal", "max_iter", "time_limit"):
        for var, val in zip(lay.variables, out.x.tolist()):
            var.set_value(val, skip_validation=True)
    x = {v.name: val for v, val in zip(lay.variables, out.x.tolist())}
    duals = None
    if status != "error":
        duals = {c.name: y for c, y in zip(lay.constraints, out.mult_g.tolist())}
        duals.update((c.name, 0.0) for c in lay.trivial)
    obj = out.objective if math.isfinite(out.objective) else float("nan")
    return NLPResult(status=status, objective=obj, iterations=out.iterations,
                     wall_time_s=time.perf_counter() - t0, compile_time_s=out.compile_time_s,
                     callback_time_s=out.callback_time_s, x=x, message=out.message, duals=duals,
                     ipopt_status=out.ipopt_status, solve_time_s=out.solve_time_s,
                     cache_hit=out.cache_hit, driver=driver)
