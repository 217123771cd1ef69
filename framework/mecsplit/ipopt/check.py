"""Check the bridge's derivatives against central finite differences.

f and g are first compared with Pyomo's own evaluation of the same expressions (so the walk is
checked), then grad f and J against central differences of f and g, and the lower-triangular
Hessian of the Lagrangian against central differences of grad L = sigma grad f + J^T y.
Errors are max |exact - fd| / (1 + max |fd|) per quantity.
"""

from __future__ import annotations

import numpy as np
from pyomo.core.expr.numvalue import value

from .compile import compile_model
from .nlp import CasadiPyomoNLP


def _sample(layout, rng):
    """A point strictly inside the bounds (x0 +- 1 on unbounded sides)."""
    lo = np.where(np.isfinite(layout.x_lb), layout.x_lb, layout.x0 - 1.0)
    hi = np.where(np.isfinite(layout.x_ub), layout.x_ub, layout.x0 + 1.0)
    hi = np.where(hi > lo, hi, lo + 1.0)
    return rng.uniform(lo + 0.05 * (hi - lo), hi - 0.05 * (hi - lo))


def _err(exact, fd):
    exact, fd = np.asarray(exact, float), np.asarray(fd, float)
    if fd.size == 0:
        return 0.0
    return float(np.abs(exact - fd).max() / (1.0 + np.abs(fd).max()))


def derivative_errors(model, *, n_points: int = 3, seed: int = 0, eps: float = 1e-6,
                      relax_integers: bool = False) -> dict[str, float]:
    """Worst scaled errors over ``n_points`` random interior points: keys value, grad, jac, hess.
    The model's Var values are restored afterwards."""
    layout, compiled, _ = compile_model(model, relax_integers=relax_integers)
    saved = [v.value for v in layout.variables]
    nlp = CasadiPyomoNLP(layout, compiled)
    rng = np.random.default_rng(seed)
    n, m = nlp.n_primals(), nlp.n_constraints()
    worst = dict(value=0.0, grad=0.0, jac=0.0, hess=0.0)

    def fg(x):
        nlp.set_primals(x)
        return nlp.evaluate_objective(), nlp.evaluate_constraints()

    try:
        for _ in range(n_points):
            x = _sample(layout, rng)
            y = rng.normal(size=m)
            sigma = float(rng.uniform(0.5, 2.0))
            nlp.set_duals(y)
            nlp.set_obj_factor(sigma)
            f, g = fg(x)
            for v, val in zip(layout.variables, x.tolist()):
                v.set_value(val, skip_validation=True)
            f_ref = 0.0 if layout.objective is None else layout.sense * value(layout.objective.expr)
            g_ref = [value(c.body) for c in layout.constraints]
            worst["value"] = max(worst["value"], _err([f, *g], [f_ref, *g_ref]))

            nlp.set_primals(x)
            grad = nlp.evaluate_grad_objective()
            jac = nlp.evaluate_jacobian().toarray()
            low = nlp.evaluate_hessian_lag()
            if np.any(low.row < low.col):
                raise AssertionError("Hessian entries above the diagonal")
            h = low.toarray()
            hess = h + np.tril(h, -1).T

            def grad_lag(xx):
                nlp.set_primals(xx)
                return sigma * nlp.evaluate_grad_objective() + nlp.evaluate_jacobian().T @ y

            fd_grad, fd_jac, fd_hess = np.zeros(n), np.zeros((m, n)), np.zeros((n, n))
            for i in range(n):
                e = np.zeros(n)
                e[i] = eps
                (fp, gp), (fm, gm) = fg(x + e), fg(x - e)
                fd_grad[i] = (fp - fm) / (2 * eps)
                fd_jac[:, i] = (gp - gm) / (2 * eps)
                fd_hess[:, i] = (grad_lag(x + e) - grad_lag(x - e)) / (2 * eps)
            worst["grad"] = max(worst["grad"], _err(grad, fd_grad))
            worst["jac"] = max(worst["jac"], _err(jac, fd_jac))
            worst["hess"] = max(worst["hess"], _err(hess, fd_hess))
    finally:
        for v, val in zip(layout.variables, saved):
            v.set_value(val, skip_validation=True)
    return worst
