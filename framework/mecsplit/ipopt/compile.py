"""Pyomo model -> (per-solve :class:`Layout`, cached :class:`CompiledNLP`).

The layout holds what changes between solves of one structure (variable objects, bounds, start
point, fixed values and Param values as the parameter vector ``p``). The compiled part holds CasADi
Functions for f, grad f, g, the sparse Jacobian of g and the sparse lower-triangular Hessian of the
Lagrangian, all taking (x, p); it is cached by the walk's structural key, so re-solving a model that
only differs in fixed values or Param values skips the symbolic differentiation.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

import casadi as ca
import numpy as np
from pyomo.common.gc_manager import PauseGC
from pyomo.core.base import Constraint, Objective, SOSConstraint, maximize
from pyomo.core.base.logical_constraint import LogicalConstraint
from pyomo.core.expr.numvalue import value

from mecsplit.errors import InputError

from .casadi_walk import Program, Walker, to_sx

CACHE_SIZE = 32  # compiled structures kept
NLPSOL_CACHE = 4  # casadi.nlpsol objects kept per structure (one per Ipopt option set)
# Violation above which a constraint without free variables makes the NLP infeasible.
TRIVIAL_TOL = 1e-8


@dataclass
class Layout:
    """One model's view of a compiled structure (all vectors are float64 numpy arrays)."""

    model: object
    objective: object  # ObjectiveData or None (then f = 0)
    sense: int  # +1 minimise, -1 maximise (Ipopt always minimises sense * f)
    variables: list  # VarData per x index
    params: list  # fixed VarData / ParamData per p index
    constraints: list  # ConstraintData per row of g
    trivial: list  # active constraints whose body has no free variable (not sent to Ipopt)
    x_lb: np.ndarray
    x_ub: np.ndarray
    g_lb: np.ndarray
    g_ub: np.ndarray
    x0: np.ndarray
    p0: np.ndarray
    key: tuple = field(repr=False)
    walk_time_s: float = 0.0

    def trivial_violations(self, tol: float = TRIVIAL_TOL) -> list[tuple[str, float]]:
        """(name, violation) of each constant constraint that is violated by more than ``tol``."""
        bad = []
        for con in self.trivial:
            body = value(con.body)
            lo, up = con.lb, con.ub
            viol = max((lo - body) if lo is not None else 0.0, (body - up) if up is not None else 0.0)
            if viol > tol * max(1.0, abs(body)):
                bad.append((con.name, viol))
        return bad


def _grey_box_ctype():
    try:
        from pyomo.contrib.pynumero.interfaces.external_grey_box import ExternalGreyBoxBlock
    except ImportError:  # pragma: no cover - PyNumero ships with Pyomo
        return None
    return ExternalGreyBoxBlock


def _check_components(model, where: str) -> None:
    """Refuse, by name, components the expression walk cannot see. An ExternalGreyBoxBlock's
    equations live in Python callbacks, not in expressions: walking the model would send its inputs
    and outputs to Ipopt as free variables with the equations dropped (issue 21)."""
    kinds = [(LogicalConstraint, "logical constraint", "algebraic constraints only (transform or deactivate it)"),
             (SOSConstraint, "SOS constraint", "algebraic constraints only (transform or deactivate it)")]
    grey = _grey_box_ctype()
    if grey is not None:
        kinds.append((grey, "ExternalGreyBoxBlock (equations in Python callbacks)",
                      "algebraic constraints only: replace the grey box by Pyomo expressions, or use a solver "
                      "that evaluates grey boxes (Pyomo's cyipopt with PyNumero's ASL)"))
    for ctype, what, allowed in kinds:
        for comp in model.component_data_objects(ctype, active=True, descend_into=True):
            raise InputError(where, comp.name, f"active {what} cannot be sent to Ipopt by this bridge", allowed)


def extract(model, relax_integers: bool = False) -> tuple[Layout, Program, list]:
    """Walk the active objective and constraints of ``model``."""
    t0 = time.perf_counter()
    where = f"model '{model.name}'"
    _check_components(model, where)
    objs = list(model.component_data_objects(Objective, active=True, descend_into=True))
    if len(objs) > 1:
        raise InputError(where, objs[1].name, f"{len(objs)} active objectives",
                         "exactly one active objective (or none)")
    walker = Walker(relax_integers=relax_integers, where=where)
    obj = objs[0] if objs else None
    roots = [walker.walk(obj.expr, obj.name) if obj is not None else walker.const(0.0)]
    cons, trivial, g_lb, g_ub = [], [], [], []
    for con in model.component_data_objects(Constraint, active=True, descend_into=True):
        lo, up = con.lb, con.ub
        if lo is None and up is None:
            continue
        s = walker.walk(con.body, con.name)
        if not walker.prog.has_x[s]:
            trivial.append(con)
            continue
        roots.append(s)
        cons.append(con)
        g_lb.append(-np.inf if lo is None else lo)
        g_ub.append(np.inf if up is None else up)
    prog = walker.prog
    sense = -1 if obj is not None and obj.sense == maximize else 1
    x_lb, x_ub, x0 = _var_arrays(prog.variables)
    p0 = np.array([value(q) for q in prog.params], dtype=float)
    layout = Layout(model=model, objective=obj, sense=sense, variables=prog.variables,
                    params=prog.params, constraints=cons, trivial=trivial,
                    x_lb=x_lb, x_ub=x_ub, g_lb=np.array(g_lb, dtype=float),
                    g_ub=np.array(g_ub, dtype=float), x0=x0, p0=p0,
                    key=(sense, prog.key(roots)))
    layout.walk_time_s = time.perf_counter() - t0
    return layout, prog, roots


def _var_arrays(variables):
    n = len(variables)
    lb, ub, x0 = np.empty(n), np.empty(n), np.empty(n)
    for i, v in enumerate(variables):
        lo, up = v.bounds
        lb[i] = -np.inf if lo is None else lo
        ub[i] = np.inf if up is None else up
        x0[i] = np.nan if v.value is None else v.value
    # unset start values: 0 projected into the bounds (as the AMPL/ASL path does for x0 = 0)
    unset = np.isnan(x0)
    x0[unset] = np.clip(0.0, lb[unset], ub[unset])
    return lb, ub, x0


class CompiledNLP:
    """CasADi Functions of one NLP structure; derivatives and nlpsol objects are built lazily."""

    def __init__(self, prog: Program, roots: list, sense: int):
        t0 = time.perf_counter()
        self.n, self.np_, self.m = len(prog.variables), len(prog.params), len(roots) - 1
        self.x = ca.SX.sym("x", self.n)
        self.p = ca.SX.sym("p", self.np_)
        f, *g = to_sx(prog, roots, self.x, self.p)
        self.f = sense * f
        self.g = ca.vertcat(*g) if g else ca.SX(0, 1)
        self.fn_f = ca.Function("f", [self.x, self.p], [self.f])
        self.fn_g = ca.Function("g", [self.x, self.p], [self.g])
        self.build_time_s = time.perf_counter() - t0
        self.deriv_time_s = 0.0
        self._derivs = False
        self._nlpsols: dict = {}

    def derivatives(self) -> "CompiledNLP":
        """Build grad f, Jacobian nonzeros and lower-triangular Hessian nonzeros (once)."""
        if self._derivs:
            return self
        t0 = time.perf_counter()
        x, p = self.x, self.p
        self.lam = ca.SX.sym("lam", self.m)
        self.sigma = ca.SX.sym("sigma")
        grad = ca.densify(ca.gradient(self.f, x))
        jac = ca.jacobian(self.g, x)
        lag = self.sigma * self.f + (ca.dot(self.lam, self.g) if self.m else 0)
        hess = ca.tril(ca.hessian(lag, x)[0])
        self.jac_rows, self.jac_cols = _coo(jac.sparsity())
        self.hess_rows, self.hess_cols = _coo(hess.sparsity())
        self.fn_grad = ca.Function("grad_f", [x, p], [grad])
        self.fn_jac = ca.Function("jac_g", [x, p], [jac.nz[:] if jac.nnz() else ca.SX(0, 1)])
        self.fn_hess = ca.Function("hess_l", [x, p, self.sigma, self.lam],
                                   [hess.nz[:] if hess.nnz() else ca.SX(0, 1)])
        self._derivs = True
        self.deriv_time_s = time.perf_counter() - t0
        return self

    def nlpsol(self, ipopt_options: dict):
        """CasADi's own Ipopt for this structure. CasADi fixes Ipopt options when it builds the
        solver, so solvers are cached per option set (the last NLPSOL_CACHE sets)."""
        key = tuple(sorted((k, repr(v)) for k, v in ipopt_options.items()))
        solver = self._nlpsols.pop(key, None)
        if solver is not None:
            self._nlpsols[key] = solver  # most recently used last
        else:
            t0 = time.perf_counter()
            nlp = {"x": self.x, "p": self.p, "f": self.f, "g": self.g}
            try:
                solver = ca.nlpsol("mecsplit", "ipopt", nlp,
                                   {"ipopt": dict(ipopt_options), "print_time": False,
                                    "error_on_fail": False})
            except RuntimeError as err:  # CasADi validates Ipopt options here
                msg = str(err).strip().splitlines()[-1]
                raise InputError("<option>", "options", f"casadi.nlpsol rejected them: {msg}",
                                 "valid Ipopt options") from None
            self._nlpsols[key] = solver
            while len(self._nlpsols) > NLPSOL_CACHE:
                self._nlpsols.pop(next(iter(self._nlpsols)))
            self.deriv_time_s += time.perf_counter() - t0
        return solver


def _coo(sp: ca.Sparsity) -> tuple[np.ndarray, np.ndarray]:
    return np.array(sp.row(), dtype=np.int64), np.array(sp.get_col(), dtype=np.int64)


_CACHE: "OrderedDict[tuple, CompiledNLP]" = OrderedDict()
_STATS = {"hits": 0, "misses": 0}


def compile_model(model, relax_integers: bool = False, cache: bool = True):
    """(layout, compiled, cache_hit) for ``model``; raises :class:`InputError` on bad input."""
    with PauseGC():  # the walk allocates many small tuples; cyclic GC passes only cost time
        return _compile_model(model, relax_integers, cache)


def _compile_model(model, relax_integers, cache):
    layout, prog, roots = extract(model, relax_integers)
    compiled = _CACHE.get(layout.key) if cache else None
    if compiled is not None:
        _STATS["hits"] += 1
        _CACHE.move_to_end(layout.key)
        return layout, compiled, True
    _STATS["misses"] += 1
    compiled = CompiledNLP(prog, roots, layout.sense)
    if cache:
        _CACHE[layout.key] = compiled
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return layout, compiled, False


def clear_cache() -> None:
    _CACHE.clear()
    _STATS.update(hits=0, misses=0)


def cache_info() -> dict:
    return {"size": len(_CACHE), "max_size": CACHE_SIZE, **_STATS}
