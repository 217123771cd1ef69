"""Two Ipopt drivers behind one result type.

* ``cyipopt`` (default): Pyomo's ``CyIpoptNLP`` + cyipopt-wheels' Ipopt, calling back into
  :class:`CasadiPyomoNLP`. Python runs once per evaluation; the time spent there is measured.
* ``casadi``: ``casadi.nlpsol('ipopt')`` on the same CasADi expressions (CasADi's own Ipopt build and
  its own AD), with no Python in the loop.

:func:`run` compiles the model (cached), checks constant constraints, dispatches to a driver and
returns an :class:`Outcome`; both ``solve_nlp`` and the SolverFactory plugin are built on it.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass

import numpy as np
from pyomo.common.tee import capture_output

from mecsplit.errors import InputError

from .compile import CompiledNLP, Layout, compile_model
from .nlp import CasadiPyomoNLP
from .status import DRIVERS, IPOPT_STATUS, SHORT_STATUS


@dataclass
class Outcome:
    """Everything a caller needs after one solve. Multipliers follow Ipopt's sign convention for
    the minimisation form ``min sense * f`` (as PyNumero)."""

    layout: Layout
    ipopt_status: str  # Ipopt ApplicationReturnStatus name
    message: str
    x: np.ndarray
    mult_g: np.ndarray
    mult_x_L: np.ndarray
    mult_x_U: np.ndarray
    objective: float  # in the model's own sense
    iterations: int
    compile_time_s: float  # walk + (on a cache miss) SX build + derivative construction
    solve_time_s: float  # driver wall time
    callback_time_s: float  # time inside evaluation callbacks (Python for cyipopt)
    cache_hit: bool
    nlp: CasadiPyomoNLP | None = None  # cyipopt driver only

    @property
    def status(self) -> str:
        return SHORT_STATUS.get(self.ipopt_status, "error")


def normalize_options(options) -> dict:
    """Plain Python values (numpy scalars -> float/int/str)."""
    out = {}
    for k, v in dict(options or {}).items():
        if isinstance(v, np.generic):
            v = v.item()
        out[str(k)] = v
    return out


def _ipopt_options(options: dict, tee: bool) -> dict:
    opts = normalize_options(options)
    if not tee:
        opts.setdefault("print_level", 0)
    opts.setdefault("sb", "yes")  # no banner
    return opts


def _add_option(problem, key, val):
    """cyipopt picks the Ipopt option type from the Python type; retry ints as floats so that
    e.g. ``max_wall_time=10`` works."""
    try:
        problem.add_option(key, val)
    except TypeError:
        if isinstance(val, int) and not isinstance(val, bool):
            problem.add_option(key, float(val))
        else:
            raise InputError("<option>", key, f"Ipopt rejected value {val!r}",
                             "a valid Ipopt option name and type")


def _cyipopt_problem_class():
    from pyomo.contrib.pynumero.interfaces.cyipopt_interface import CyIpoptNLP

    class TimedCyIpoptNLP(CyIpoptNLP):
        """CyIpoptNLP that accumulates wall time spent in its callbacks and counts iterations."""

        def __init__(self, nlp, **kw):
            self.callback_time_s = 0.0
            self.iterations = 0
            nlp.check_finite = False  # structure probes at x0 must not abort construction
            try:
                super().__init__(nlp, **kw)
            finally:
                nlp.check_finite = True

        def _timed(self, fn, *args):
            t0 = time.perf_counter()
            try:
                return fn(*args)
            finally:
                self.callback_time_s += time.perf_counter() - t0

        def objective(self, x):
            return self._timed(super().objective, x)

        def gradient(self, x):
            return self._timed(super().gradient, x)

        def constraints(self, x):
            return self._timed(super().constraints, x)

        def jacobian(self, x):
            return self._timed(super().jacobian, x)

        def hessian(self, x, y, obj_factor):
            return self._timed(super().hessian, x, y, obj_factor)

        def intermediate(self, alg_mod, iter_count, *args):
            self.iterations = iter_count
            return super().intermediate(alg_mod, iter_count, *args)

    return TimedCyIpoptNLP


_TIMED = None


def solve_cyipopt(layout: Layout, compiled: CompiledNLP, options: dict, tee: bool,
                  intermediate_callback=None, halt_on_evaluation_error=None):
    """Run cyipopt; returns (raw fields dict, nlp)."""
    global _TIMED
    if _TIMED is None:
        _TIMED = _cyipopt_problem_class()
    t0 = time.perf_counter()  # solve time includes building the NLP and cyipopt problem
    nlp = CasadiPyomoNLP(layout, compiled)
    problem = _TIMED(nlp, intermediate_callback=intermediate_callback,
                     halt_on_evaluation_error=halt_on_evaluation_error)
    try:
        obj_s, x_s, g_s = problem.scaling_factors()
        if any(s is not None for s in (obj_s, x_s, g_s)):
            problem.set_problem_scaling(1.0 if obj_s is None else obj_s,
                                        np.ones(compiled.n) if x_s is None else x_s,
                                        np.ones(compiled.m) if g_s is None else g_s)
            options.setdefault("nlp_scaling_method", "user-scaling")
        opts = _ipopt_options(options, tee)
        for k, v in opts.items():
            _add_option(problem, k, v)
        quiet = not tee and opts.get("print_level") == 0
        ctx = contextlib.nullcontext() if quiet else capture_output(
            sys.stdout if tee else None, capture_fd=True)
        with ctx:
            x, info = problem.solve(nlp.init_primals())
        solve_time = time.perf_counter() - t0
    finally:
        problem.close()
    status = IPOPT_STATUS.get(int(info["status"]), "Internal_Error")
    msg = info["status_msg"]
    raw = dict(ipopt_status=status, message=msg.decode() if isinstance(msg, bytes) else str(msg),
               x=np.asarray(x, dtype=float), mult_g=np.asarray(info["mult_g"], dtype=float),
               mult_x_L=np.asarray(info["mult_x_L"], dtype=float),
               mult_x_U=np.asarray(info["mult_x_U"], dtype=float),
               obj_min=float(info["obj_val"]), iterations=int(problem.iterations),
               solve_time_s=solve_time, callback_time_s=problem.callback_time_s)
    nlp.set_primals(raw["x"])
    nlp.set_duals(raw["mult_g"])
    return raw, nlp


_CASADI_TIME_KEYS = ("t_wall_nlp_f", "t_wall_nlp_g", "t_wall_nlp_grad_f", "t_wall_nlp_jac_g",
                     "t_wall_nlp_hess_l", "t_wall_nlp_grad")


def solve_casadi(layout: Layout, compiled: CompiledNLP, options: dict, tee: bool):
    """Run ``casadi.nlpsol('ipopt')`` (solver object cached per structure and option set)."""
    solver = compiled.nlpsol(_ipopt_options(options, tee))
    t0 = time.perf_counter()
    sol = solver(x0=layout.x0, p=layout.p0, lbx=layout.x_lb, ubx=layout.x_ub,
                 lbg=layout.g_lb, ubg=layout.g_ub)
    solve_time = time.perf_counter() - t0
    st = solver.stats()
    lam_x = np.asarray(sol["lam_x"], dtype=float).ravel()
    status = str(st.get("return_status", "Internal_Error"))
    raw = dict(ipopt_status=status, message=status,
               x=np.asarray(sol["x"], dtype=float).ravel(),
               mult_g=np.asarray(sol["lam_g"], dtype=float).ravel(),
               mult_x_L=np.maximum(-lam_x, 0.0), mult_x_U=np.maximum(lam_x, 0.0),
               obj_min=float(sol["f"]), iterations=int(st.get("iter_count", 0)),
               solve_time_s=solve_time,
               callback_time_s=float(sum(st.get(k, 0.0) for k in _CASADI_TIME_KEYS)))
    return raw, None


def run(model, *, options=None, tee=False, driver="cyipopt", relax_integers=False,
        cache=True, intermediate_callback=None, halt_on_evaluation_error=None) -> Outcome:
    """Compile ``model`` and solve its continuous NLP with Ipopt."""
    if driver not in DRIVERS:
        raise InputError("<option>", "driver", f"unknown driver {driver!r}", ", ".join(DRIVERS))
    if driver == "casadi" and intermediate_callback is not None:
        raise InputError("<option>", "intermediate_callback", "needs the cyipopt driver",
                         "driver='cyipopt', or no callback")
    t0 = time.perf_counter()
    layout, compiled, hit = compile_model(model, relax_integers=relax_integers, cache=cache)
    options = normalize_options(options)
    bad = layout.trivial_violations()
    if bad or compiled.n == 0:
        compile_time = time.perf_counter() - t0
        return _no_ipopt(layout, compiled, bad, compile_time, hit)
    if driver == "cyipopt":
        compiled.derivatives()
    else:
        compiled.nlpsol(_ipopt_options(options, tee))  # builds CasADi's own derivatives
    compile_time = time.perf_counter() - t0
    if driver == "cyipopt":
        raw, nlp = solve_cyipopt(layout, compiled, options, tee, intermediate_callback,
                                 halt_on_evaluation_error)
    else:
        raw, nlp = solve_casadi(layout, compiled, options, tee)
    obj_min = raw.pop("obj_min")
    return Outcome(layout=layout, objective=layout.sense * obj_min, compile_time_s=compile_time,
                   cache_hit=hit, nlp=nlp, **raw)


def _no_ipopt(layout, compiled, bad, compile_time, hit) -> Outcome:
    """Constant constraint violated, or nothing left to optimise: answer without Ipopt."""
    if bad:
        name, viol = bad[0]
        status, msg = "Infeasible_Problem_Detected", (
            f"constraint {name} has no free variable and is violated by {viol:.3g}")
    else:
        status, msg = "Solve_Succeeded", "no free variables; all constraints satisfied"
    n, m = compiled.n, compiled.m
    f = float(compiled.fn_f(layout.x0, layout.p0)) if n == 0 else float("nan")
    return Outcome(layout=layout, ipopt_status=status, message=msg, x=layout.x0.copy(),
                   mult_g=np.zeros(m), mult_x_L=np.zeros(n), mult_x_U=np.zeros(n),
                   objective=layout.sense * f, iterations=0, compile_time_s=compile_time,
                   solve_time_s=0.0, callback_time_s=0.0, cache_hit=hit)
