"""PyNumero ``NLP`` implemented on CasADi Functions (no ASL), so ``CyIpoptNLP`` runs unchanged.

Hot path: every evaluation is one call of a CasADi ``FunctionBuffer`` bound to preallocated numpy
arrays (about 1-10 us of overhead, against about 60-100 us for ``Function.__call__`` with DM
conversion), followed by one vectorised finiteness check. A non-finite value (log of a negative
number, division by zero, ...) raises ``PyNumeroEvaluationError`` so that Ipopt cuts the step back.
The objective is always in minimisation form (``sense * f``), as in PyNumero's ASL interface.
"""

from __future__ import annotations

import numpy as np
from pyomo.contrib.pynumero.exceptions import PyNumeroEvaluationError
from pyomo.contrib.pynumero.interfaces.nlp import NLP
from pyomo.core.base import suffix as pyo_suffix
from pyomo.core.base.suffix import SuffixFinder
from pyomo.core.base.symbol_map import SymbolMap
from scipy.sparse import coo_matrix

from .compile import CompiledNLP, Layout


class _Eval:
    """A CasADi FunctionBuffer bound to fixed numpy input and output arrays."""

    __slots__ = ("buf", "out", "_keep")

    def __init__(self, fn, inputs, n_out):
        self.buf, _ = fn.buffer()
        self.out = np.zeros(n_out)
        self._keep = inputs  # the buffer holds raw pointers into these arrays
        for i, arr in enumerate(inputs):
            self.buf.set_arg(i, memoryview(arr))
        self.buf.set_res(0, memoryview(self.out))

    def __call__(self) -> np.ndarray:
        self.buf._eval()
        return self.out


class CasadiPyomoNLP(NLP):
    """The continuous NLP of a Pyomo model, evaluated by CasADi."""

    def __init__(self, layout: Layout, compiled: CompiledNLP):
        super().__init__()
        self._layout, self._c = layout, compiled.derivatives()
        c = self._c
        self._x = np.ascontiguousarray(layout.x0, dtype=float).copy()
        self._p = np.ascontiguousarray(layout.p0, dtype=float).copy()
        self._y = np.zeros(c.m)
        self._sigma = np.ones(1)
        self._f = _Eval(c.fn_f, (self._x, self._p), 1)
        self._grad = _Eval(c.fn_grad, (self._x, self._p), c.n)
        self._g = _Eval(c.fn_g, (self._x, self._p), c.m)
        self._jac = _Eval(c.fn_jac, (self._x, self._p), len(c.jac_rows))
        self._hess = _Eval(c.fn_hess, (self._x, self._p, self._sigma, self._y), len(c.hess_rows))
        self.check_finite = True
        self.solver_status = None
        self._symbol_map = None

    # -- sizes, bounds, start point --------------------------------------------------------
    def n_primals(self):
        return self._c.n

    def n_constraints(self):
        return self._c.m

    def nnz_jacobian(self):
        return len(self._c.jac_rows)

    def nnz_hessian_lag(self):
        return len(self._c.hess_rows)

    def primals_lb(self):
        return self._layout.x_lb.copy()

    def primals_ub(self):
        return self._layout.x_ub.copy()

    def constraints_lb(self):
        return self._layout.g_lb.copy()

    def constraints_ub(self):
        return self._layout.g_ub.copy()

    def init_primals(self):
        return self._layout.x0.copy()

    def init_duals(self):
        return np.zeros(self._c.m)

    def create_new_vector(self, vector_type):
        if vector_type in ("primals", "primals_lb", "primals_ub"):
            return np.zeros(self._c.n)
        if vector_type in ("constraints", "duals", "constraints_lb", "constraints_ub"):
            return np.zeros(self._c.m)
        raise RuntimeError(f"vector_type not recognized: {vector_type!r}")

    def primals_names(self):
        return [v.name for v in self._layout.variables]

    def constraint_names(self):
        return [c.name for c in self._layout.constraints]

    # -- state -----------------------------------------------------------------------------
    def set_primals(self, primals):
        np.copyto(self._x, primals)

    def get_primals(self):
        return self._x.copy()

    def set_duals(self, duals):
        np.copyto(self._y, duals)

    def get_duals(self):
        return self._y.copy()

    def set_obj_factor(self, obj_factor):
        self._sigma[0] = obj_factor

    def get_obj_factor(self):
        return float(self._sigma[0])

    def set_parameters(self, values):
        """New values of the fixed Vars / mutable Params (order of ``layout.params``)."""
        np.copyto(self._p, values)

    # -- scaling (``scaling_factor`` suffixes, as PyomoNLP) ----------------------------------
    def _scaling(self, components):
        finder = SuffixFinder("scaling_factor", default=1.0, context=self._layout.model)
        vals = np.fromiter((finder.find(c) for c in components), dtype=float, count=len(components))
        return vals if finder.all_suffixes else None

    def get_obj_scaling(self):
        obj = self._layout.objective
        if obj is None:
            return None
        vals = self._scaling([obj])
        return None if vals is None else float(vals[0])

    def get_primals_scaling(self):
        return self._scaling(self._layout.variables)

    def get_constraints_scaling(self):
        return self._scaling(self._layout.constraints)

    # -- evaluations (hot path) --------------------------------------------------------------
    def _checked(self, arr, what):
        if self.check_finite and not np.isfinite(arr).all():
            raise PyNumeroEvaluationError(f"non-finite value in {what}")
        return arr

    def evaluate_objective(self):
        return float(self._checked(self._f(), "objective")[0])

    def evaluate_grad_objective(self, out=None):
        g = self._checked(self._grad(), "objective gradient")
        if out is None:
            return g.copy()
        np.copyto(out, g)
        return out

    def evaluate_constraints(self, out=None):
        g = self._checked(self._g(), "constraints")
        if out is None:
            return g.copy()
        np.copyto(out, g)
        return out

    def evaluate_jacobian(self, out=None):
        data = self._checked(self._jac(), "constraint Jacobian")
        if out is None:
            c = self._c
            return coo_matrix((data.copy(), (c.jac_rows, c.jac_cols)), shape=(c.m, c.n))
        np.copyto(out.data, data)
        return out

    def evaluate_hessian_lag(self, out=None):
        """Lower triangle (row >= col) of sigma * grad^2 f + sum_i y_i grad^2 g_i."""
        data = self._checked(self._hess(), "Lagrangian Hessian")
        if out is None:
            c = self._c
            return coo_matrix((data.copy(), (c.hess_rows, c.hess_cols)), shape=(c.n, c.n))
        np.copyto(out.data, data)
        return out

    def report_solver_status(self, status_code, status_message):
        self.solver_status = (status_code, status_message)

    # -- Pyomo side (the subset of PyomoNLP that solvers use) -------------------------------
    def pyomo_model(self):
        return self._layout.model

    def get_pyomo_objective(self):
        return self._layout.objective

    def get_pyomo_variables(self):
        return list(self._layout.variables)

    def get_pyomo_constraints(self):
        return list(self._layout.constraints)

    @property
    def layout(self) -> Layout:
        return self._layout

    @property
    def symbol_map(self) -> SymbolMap:
        """Fully qualified component names (as ``symbolic_solver_labels=True``)."""
        if self._symbol_map is None:
            sm = SymbolMap()
            lay = self._layout
            for comp in (*lay.variables, *lay.constraints, *lay.trivial):
                sm.addSymbol(comp, comp.name)
            self._symbol_map = sm
        return self._symbol_map

    def load_state_into_pyomo(self, bound_multipliers=None):
        """Primals into the Vars; duals and bound multipliers into active import suffixes."""
        zL, zU = bound_multipliers if bound_multipliers is not None else (None, None)
        load_into_pyomo(self._layout, self._x, self._y, zL, zU)


def load_into_pyomo(lay: Layout, x, duals, zL=None, zU=None) -> None:
    """Primals into the Vars; duals and bound multipliers into the model's active import suffixes
    (``dual``, ``ipopt_zL_out``, ``ipopt_zU_out``), as PyomoNLP.load_state_into_pyomo does."""
    for var, val in zip(lay.variables, np.asarray(x).tolist()):
        var.set_value(val, skip_validation=True)
    suffixes = dict(pyo_suffix.active_import_suffix_generator(lay.model))
    if "dual" in suffixes:
        suffixes["dual"].clear()
        suffixes["dual"].update(zip(lay.constraints, np.asarray(duals).tolist()))
        suffixes["dual"].update((con, 0.0) for con in lay.trivial)
    for name, vals in (("ipopt_zL_out", zL), ("ipopt_zU_out", zU)):
        if name in suffixes:
            suffixes[name].clear()
            if vals is not None:
                suffixes[name].update(zip(lay.variables, np.asarray(vals).tolist()))
