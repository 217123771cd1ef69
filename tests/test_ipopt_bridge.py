"""Ipopt bridge (mecsplit.ipopt): published optima, derivative checks, plugin behaviour.

References for the optima:
* HS 71, HS 74: W. Hock, K. Schittkowski, "Test Examples for Nonlinear Programming Codes",
  Lecture Notes in Economics and Mathematical Systems 187, Springer 1981 (problems 71 and 74).
  HS 71: f* = 17.0140173 at (1, 4.7429994, 3.8211503, 1.3794082).
  HS 74 (3 equalities, 2 inequalities, bounds): f* = 5126.4981 at (679.9453, 1026.067, 0.1188764,
  -0.3962336); the same problem is G05 of the CEC 2006 constrained benchmark.
* Rosenbrock (1960): f* = 0 at (1, 1), standard start (-1.2, 1).
"""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo
import pytest

from mecsplit.errors import InputError
from mecsplit.ipopt import (CasadiPyomoNLP, CyIpoptDirectSolver, cache_info, clear_cache,
                            compile_model, register, solve_nlp)
from mecsplit.ipopt.casadi_walk import Walker
from mecsplit.ipopt.check import derivative_errors

DRIVERS = ["cyipopt", "casadi"]


# -- reference problems ------------------------------------------------------------------------
def hs71():
    m = pyo.ConcreteModel(name="hs71")
    m.x = pyo.Var([1, 2, 3, 4], bounds=(1, 5), initialize={1: 1, 2: 5, 3: 5, 4: 1})
    x = m.x
    m.obj = pyo.Objective(expr=x[1] * x[4] * (x[1] + x[2] + x[3]) + x[3])
    m.prod = pyo.Constraint(expr=x[1] * x[2] * x[3] * x[4] >= 25)
    m.sphere = pyo.Constraint(expr=sum(x[i] ** 2 for i in x) == 40)
    return m


def hs74():
    a = 0.55
    m = pyo.ConcreteModel(name="hs74")
    m.x = pyo.Var([1, 2, 3, 4], initialize=0.0)
    x = m.x
    for i in (1, 2):
        x[i].setlb(0), x[i].setub(1200)
    for i in (3, 4):
        x[i].setlb(-a), x[i].setub(a)
    m.obj = pyo.Objective(expr=3 * x[1] + 1e-6 * x[1] ** 3 + 2 * x[2] + (2e-6 / 3) * x[2] ** 3)
    m.i1 = pyo.Constraint(expr=x[4] - x[3] + a >= 0)
    m.i2 = pyo.Constraint(expr=x[3] - x[4] + a >= 0)
    m.e1 = pyo.Constraint(expr=1000 * pyo.sin(-x[3] - 0.25) + 1000 * pyo.sin(-x[4] - 0.25)
                          + 894.8 - x[1] == 0)
    m.e2 = pyo.Constraint(expr=1000 * pyo.sin(x[3] - 0.25) + 1000 * pyo.sin(x[3] - x[4] - 0.25)
                          + 894.8 - x[2] == 0)
    m.e3 = pyo.Constraint(expr=1000 * pyo.sin(x[4] - 0.25) + 1000 * pyo.sin(x[4] - x[3] - 0.25)
                          + 1294.8 == 0)
    return m


def rosenbrock():
    m = pyo.ConcreteModel(name="rosenbrock")
    m.x = pyo.Var(initialize=-1.2)
    m.y = pyo.Var(initialize=1.0)
    m.obj = pyo.Objective(expr=100 * (m.y - m.x ** 2) ** 2 + (1 - m.x) ** 2)
    return m


@pytest.mark.parametrize("driver", DRIVERS)
def test_hs71_published_optimum(driver):
    m = hs71()
    r = solve_nlp(m, driver=driver, options={"tol": 1e-10})
    assert r.status == "optimal"
    assert r.objective == pytest.approx(17.0140173, abs=1e-6)
    x = [pyo.value(m.x[i]) for i in range(1, 5)]
    assert x == pytest.approx([1.0, 4.7429994, 3.8211503, 1.3794082], abs=1e-6)
    assert 3 <= r.iterations <= 30
    assert set(r.x) == {"x[1]", "x[2]", "x[3]", "x[4]"} and set(r.duals) == {"prod", "sphere"}


@pytest.mark.parametrize("driver", DRIVERS)
def test_rosenbrock(driver):
    m = rosenbrock()
    r = solve_nlp(m, driver=driver, options={"tol": 1e-12})
    assert r.status == "optimal"
    assert r.objective == pytest.approx(0.0, abs=1e-12)
    assert (pyo.value(m.x), pyo.value(m.y)) == pytest.approx((1.0, 1.0), abs=1e-6)
    assert r.duals == {}


@pytest.mark.parametrize("driver", DRIVERS)
def test_hs74_equalities_and_inequalities(driver):
    m = hs74()
    r = solve_nlp(m, driver=driver, options={"tol": 1e-10})
    assert r.status == "optimal"
    assert r.objective == pytest.approx(5126.4981, rel=2e-8)
    x = [pyo.value(m.x[i]) for i in range(1, 5)]
    assert x == pytest.approx([679.9453, 1026.067, 0.1188764, -0.3962336], rel=1e-5, abs=1e-6)


def _kkt_residual(m, r):
    """|grad(sense f) + J^T y - zL + zU|_inf at the solution, from independent Pyomo
    differentiation (reverse-mode numeric), with y from the dual suffix convention."""
    from pyomo.core.expr.calculus.derivatives import Modes, differentiate

    layout, compiled, _ = compile_model(m)
    vars_ = layout.variables
    sense = layout.sense
    grad = np.array(differentiate(layout.objective.expr, wrt_list=vars_, mode=Modes.reverse_numeric),
                    dtype=float) * sense
    for con in layout.constraints:
        row = np.array(differentiate(con.body, wrt_list=vars_, mode=Modes.reverse_numeric),
                       dtype=float)
        grad += m.dual[con] * row
    for i, v in enumerate(vars_):
        grad[i] += -m.ipopt_zL_out[v] + m.ipopt_zU_out[v]
    return np.abs(grad).max()


@pytest.mark.parametrize("driver", DRIVERS)
def test_duals_satisfy_kkt(driver):
    """Dual suffixes follow Ipopt's convention for min sense*f: stationarity must hold."""
    for build in (hs71, hs74):
        m = build()
        m.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
        m.ipopt_zL_out = pyo.Suffix(direction=pyo.Suffix.IMPORT)
        m.ipopt_zU_out = pyo.Suffix(direction=pyo.Suffix.IMPORT)
        res = pyo.SolverFactory("cyipopt_direct").solve(m, driver=driver, options={"tol": 1e-10})
        assert res.solver.termination_condition == pyo.TerminationCondition.optimal
        assert _kkt_residual(m, res) < 1e-6 * max(1.0, abs(pyo.value(m.obj)))


# -- derivative checks against central finite differences ----------------------------------
_UNARY = ["log", "exp", "sqrt", "sin", "cos", "tan", "abs", "log10", "atan", "neg"]


def _random_expr(rng, xs, depth, name_it):
    """A random expression that is smooth where evaluated: log/sqrt/division see positive
    arguments. ``name_it`` wraps a subexpression in a (possibly reused) named Expression."""
    if depth == 0 or rng.random() < 0.2:
        return xs[rng.integers(len(xs))] if rng.random() < 0.8 else float(rng.uniform(-2, 2))
    a = _random_expr(rng, xs, depth - 1, name_it)
    b = _random_expr(rng, xs, depth - 1, name_it)
    op = rng.choice(["+", "*", "/", "pow", "unary", "unary", "sum", "named"])
    if op == "+":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / (1.5 + b ** 2)
    if op == "pow":
        return (1 + a ** 2) ** float(rng.choice([0.5, 1.5, 3, -1]))
    if op == "sum":
        return sum(float(rng.uniform(-1, 1)) * v for v in xs) + a
    if op == "named":
        return name_it(a) * b
    f = rng.choice(_UNARY)
    if f == "log":
        return pyo.log(1.2 + a ** 2)
    if f == "log10":
        return pyo.log10(2 + pyo.sin(a))
    if f == "sqrt":
        return pyo.sqrt(0.5 + a ** 2)
    if f == "tan":
        return pyo.tan(0.5 * pyo.sin(a))
    if f == "abs":
        return abs(a) + b
    if f == "neg":
        return -a
    return {"exp": lambda e: pyo.exp(0.3 * pyo.sin(e)), "sin": pyo.sin, "cos": pyo.cos,
            "atan": pyo.atan}[f](a)


def random_model(seed, n=4, m_cons=3, depth=4):
    """Random objective and constraints over 4 bounded Vars, a fixed Var and a mutable Param,
    with named Expressions shared between components."""
    rng = np.random.default_rng(seed)
    mdl = pyo.ConcreteModel(name=f"random{seed}")
    mdl.x = pyo.Var(range(n), bounds=(-3, 3))
    mdl.fixed = pyo.Var(initialize=0.7)
    mdl.fixed.fix()
    mdl.q = pyo.Param(initialize=1.3, mutable=True)
    xs = [mdl.x[i] for i in range(n)] + [mdl.fixed, mdl.q]
    named = []

    def name_it(e):
        if named and rng.random() < 0.5:
            return named[rng.integers(len(named))]
        comp = pyo.Expression(expr=e)
        mdl.add_component(f"e{len(named)}", comp)
        named.append(comp)
        return comp

    mdl.obj = pyo.Objective(expr=_random_expr(rng, xs, depth, name_it) + name_it(mdl.x[0] * mdl.x[1]))
    mdl.c = pyo.ConstraintList()
    for _ in range(m_cons):
        mdl.c.add(_random_expr(rng, xs, depth, name_it) + mdl.x[2] * named[0] <= 10)
    return mdl, rng


def _check_derivatives(m, seed, n_points=3):
    err = derivative_errors(m, n_points=n_points, seed=seed)
    assert err["value"] < 1e-12, err  # CasADi f, g == Pyomo's value() of the same expressions
    assert err["grad"] < 1e-6 and err["jac"] < 1e-6 and err["hess"] < 1e-5, err


@pytest.mark.parametrize("seed", range(12))
def test_derivatives_random_models(seed):
    m, _ = random_model(seed)
    _check_derivatives(m, seed)


def test_derivatives_hs_problems():
    for build in (hs71, hs74, rosenbrock):
        _check_derivatives(build(), seed=1)


def test_derivative_check_detects_wrong_hessian(monkeypatch):
    """The finite-difference check itself can fail: a perturbed Hessian must be rejected."""
    m, _ = random_model(3)
    orig = CasadiPyomoNLP.evaluate_hessian_lag

    def wrong(self, out=None):
        h = orig(self, out)
        h.data[0] += 0.1
        return h

    monkeypatch.setattr(CasadiPyomoNLP, "evaluate_hessian_lag", wrong)
    with pytest.raises(AssertionError):
        _check_derivatives(m, seed=3, n_points=1)


def test_named_and_shared_subexpressions_walked_once():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(3), initialize=1.0)
    m.e = pyo.Expression(expr=pyo.exp(m.x[0] * m.x[1]) + pyo.log(1 + m.x[2] ** 2))
    m.obj = pyo.Objective(expr=m.e ** 2 + m.e)
    m.c1 = pyo.Constraint(expr=m.e <= 5)
    m.c2 = pyo.Constraint(expr=m.e + m.x[0] >= -5)
    w = Walker()
    slots = [w.walk(m.obj.expr, "obj"), w.walk(m.c1.body, "c1"), w.walk(m.c2.body, "c2")]
    ops = w.prog.ops
    assert sum(op[0] == "exp" for op in ops) == 1 and sum(op[0] == "log" for op in ops) == 1
    exp_slot = next(i for i, op in enumerate(ops) if op[0] == "exp")
    log_slot = next(i for i, op in enumerate(ops) if op[0] == "log")
    assert ops[slots[1]] == ("+", exp_slot, log_slot)  # c1's body is m.e itself
    assert len(w.prog.variables) == 3
    r = solve_nlp(m)
    assert r.status == "optimal"


# -- sense, fixed values, parameters, integers ------------------------------------------------
@pytest.mark.parametrize("driver", DRIVERS)
def test_maximisation(driver):
    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=0.0)
    m.y = pyo.Var(initialize=0.0)
    m.obj = pyo.Objective(expr=3 - (m.x - 2) ** 2 - (m.y + 1) ** 2, sense=pyo.maximize)
    m.c = pyo.Constraint(expr=m.x + m.y <= 0)  # active: optimum at (1, -1) ... projection
    r = solve_nlp(m, driver=driver, options={"tol": 1e-10})
    # max 3 - (x-2)^2 - (y+1)^2 s.t. x + y <= 0: x = 1.5, y = -1.5, objective 3 - 0.5
    assert r.status == "optimal"
    assert r.objective == pytest.approx(2.5, abs=1e-8)
    assert (pyo.value(m.x), pyo.value(m.y)) == pytest.approx((1.5, -1.5), abs=1e-7)
    # min-form multiplier of x + y <= 0: grad(-f) = (2(x-2), 2(y+1)) = (-1, -1) = -y*(1, 1)
    assert r.duals["c"] == pytest.approx(1.0, abs=1e-6)
    res = pyo.SolverFactory("cyipopt_direct").solve(m, driver=driver)
    assert res.problem.sense == pyo.maximize
    assert res.problem.lower_bound == pytest.approx(2.5, abs=1e-7)


def test_fixed_vars_and_params_reuse_compiled_structure():
    clear_cache()
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, None), initialize=1.0)
    m.a = pyo.Var(initialize=2.0)
    m.a.fix()
    m.k = pyo.Param(initialize=1.0, mutable=True)
    m.obj = pyo.Objective(expr=m.k * (m.x - m.a) ** 2 + pyo.exp(-m.x))
    first = solve_nlp(m, options={"tol": 1e-10})
    assert not first.cache_hit and "a" not in first.x
    for a, k in [(3.0, 1.0), (0.5, 4.0), (-1.0, 2.0)]:
        m.a.fix(a)
        m.k = k
        r = solve_nlp(m, options={"tol": 1e-10})
        assert r.cache_hit and r.status == "optimal"
        # stationarity 2k(x - a) = exp(-x), or x = 0 at the bound when that has positive slope
        x = pyo.value(m.x)
        if x > 1e-6:
            assert 2 * k * (x - a) == pytest.approx(math.exp(-x), abs=1e-7)
        else:
            assert 2 * k * (0 - a) - 1 >= -1e-7
    info = cache_info()
    assert info["hits"] == 3 and info["misses"] == 1


def test_fixed_value_change_matches_fresh_compile():
    m = hs71()
    m.x[4].fix(1.5)
    r1 = solve_nlp(m, options={"tol": 1e-10})
    m.x[4].fix(2.0)
    cached = solve_nlp(m, options={"tol": 1e-10})
    clear_cache()
    m2 = hs71()
    m2.x[4].fix(2.0)
    fresh = solve_nlp(m2, options={"tol": 1e-10})
    assert cached.cache_hit and not fresh.cache_hit
    assert cached.objective == pytest.approx(fresh.objective, rel=1e-10)
    assert r1.objective != pytest.approx(cached.objective, rel=1e-3)


def test_integers_must_be_fixed_or_relaxed():
    m = pyo.ConcreteModel()
    m.n = pyo.Var(domain=pyo.Integers, bounds=(0, 10), initialize=0)
    m.x = pyo.Var(initialize=1.0)
    m.obj = pyo.Objective(expr=(m.n - 2.4) ** 2 + (m.x - m.n) ** 2)
    with pytest.raises(InputError, match=r"'n'.*integer variable is free.*relax_integers"):
        solve_nlp(m)
    r = solve_nlp(m, relax_integers=True, options={"tol": 1e-10})
    assert r.status == "optimal"
    assert pyo.value(m.n) == pytest.approx(2.4, abs=1e-7)
    m.n.fix(3)
    r = solve_nlp(m)
    assert r.status == "optimal" and pyo.value(m.x) == pytest.approx(3.0, abs=1e-7)


def test_unsupported_expression_names_component():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=1.0)
    m.ext = pyo.ExternalFunction(lambda v: v ** 2)
    m.obj = pyo.Objective(expr=m.x ** 2)
    m.uses_ext = pyo.Constraint(expr=m.ext(m.x) <= 4)
    with pytest.raises(InputError, match=r"uses_ext.*unsupported expression.*External"):
        solve_nlp(m)


def test_evaluation_errors_make_ipopt_backtrack():
    """min x - log(x) from x0 = 3: the full Newton step lands at x = -3 where log fails."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=3.0)
    m.obj = pyo.Objective(expr=m.x - pyo.log(m.x))
    layout, compiled, _ = compile_model(m)
    nlp = CasadiPyomoNLP(layout, compiled)
    nlp.set_primals(np.array([-3.0]))
    from pyomo.contrib.pynumero.exceptions import PyNumeroEvaluationError
    with pytest.raises(PyNumeroEvaluationError):
        nlp.evaluate_objective()
    r = solve_nlp(m, options={"tol": 1e-10})
    assert r.status == "optimal"
    assert pyo.value(m.x) == pytest.approx(1.0, abs=1e-7) and r.objective == pytest.approx(1.0)


def test_infeasible_and_trivially_infeasible():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=0.0)
    m.y = pyo.Var(initialize=0.0)
    m.obj = pyo.Objective(expr=m.x + m.y)
    m.disk = pyo.Constraint(expr=m.x ** 2 + m.y ** 2 <= 1)
    m.far = pyo.Constraint(expr=m.x + m.y >= 3)
    assert solve_nlp(m).status == "infeasible"
    res = pyo.SolverFactory("cyipopt_direct").solve(m)
    assert res.solver.termination_condition == pyo.TerminationCondition.infeasible
    m.far.deactivate()
    m.z = pyo.Var(initialize=1.0)
    m.z.fix()
    m.const = pyo.Constraint(expr=m.z ** 2 >= 2)  # no free variable: checked before Ipopt
    r = solve_nlp(m)
    assert r.status == "infeasible" and "const" in r.message and r.iterations == 0


# -- options --------------------------------------------------------------------------------
@pytest.mark.parametrize("driver", DRIVERS)
def test_options_max_iter_and_wall_time(driver):
    r = solve_nlp(hs74(), driver=driver, options={"max_iter": 2})
    assert r.status == "max_iter" and r.iterations == 2
    # an int for a numeric option is accepted; a tiny wall-clock limit stops Ipopt
    r = solve_nlp(hs74(), driver=driver, options={"max_wall_time": 1e-7})
    assert r.status == "time_limit"
    r = solve_nlp(hs74(), driver=driver, options={"max_wall_time": 100, "linear_solver": "mumps"})
    assert r.status == "optimal"


@pytest.mark.parametrize("driver", DRIVERS)
def test_tee_prints_ipopt_log(driver, capfd):
    solve_nlp(hs71(), driver=driver, tee=True)
    out = capfd.readouterr().out
    assert "EXIT: Optimal Solution Found" in out
    solve_nlp(hs71(), driver=driver, tee=False)
    assert "EXIT" not in capfd.readouterr().out


def test_warm_start_from_current_values():
    m = hs74()
    cold = solve_nlp(m)
    warm = solve_nlp(m)  # the Vars now hold the optimum
    assert warm.status == "optimal" and warm.iterations < cold.iterations


def test_drivers_agree_on_primal_and_dual():
    a, b = solve_nlp(hs74(), driver="cyipopt", options={"tol": 1e-10}), solve_nlp(
        hs74(), driver="casadi", options={"tol": 1e-10})
    for k in a.x:
        assert a.x[k] == pytest.approx(b.x[k], rel=1e-6, abs=1e-8)
    for k in a.duals:
        assert a.duals[k] == pytest.approx(b.duals[k], rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("driver", DRIVERS)
def test_invalid_option_is_reported(driver):
    with pytest.raises(InputError, match="no_such_option"):
        solve_nlp(hs71(), driver=driver, options={"no_such_option": 1.0})
    with pytest.raises(InputError, match="driver"):
        solve_nlp(hs71(), driver="knitro")


# -- SolverFactory plugin ---------------------------------------------------------------------
def test_solverfactory_results_and_suffixes():
    m = hs71()
    m.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    m.ipopt_zL_out = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    m.ipopt_zU_out = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    opt = pyo.SolverFactory("cyipopt_direct")
    assert isinstance(opt, CyIpoptDirectSolver) and opt.available()
    opt.config.options["tol"] = 1e-10
    res = opt.solve(m)
    assert res.solver.termination_condition == pyo.TerminationCondition.optimal
    assert res.solver.status == pyo.SolverStatus.ok
    assert res.problem.upper_bound == pytest.approx(17.0140173, abs=1e-6)
    assert res.problem.number_of_variables == 4 and res.problem.number_of_constraints == 2
    assert m.dual[m.prod] == pytest.approx(-0.55229366, abs=1e-6)  # Ipopt sign, min form
    assert m.ipopt_zL_out[m.x[1]] == pytest.approx(1.08787121, abs=1e-5)  # x1 at its lower bound
    assert m.ipopt_zU_out[m.x[1]] == pytest.approx(0.0, abs=1e-6)


def test_solverfactory_load_solutions_false_round_trip():
    m = hs71()
    m.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    res = pyo.SolverFactory("cyipopt_direct").solve(m, load_solutions=False)
    assert pyo.value(m.x[2]) == 5  # untouched
    assert len(res.solution) == 1
    m.solutions.load_from(res)
    assert pyo.value(m.x[2]) == pytest.approx(4.7429994, abs=1e-6)
    assert m.dual[m.sphere] == pytest.approx(0.16146856, abs=1e-6)


def test_solverfactory_return_nlp_and_max_iter():
    res, nlp = pyo.SolverFactory("cyipopt_direct").solve(hs71(), return_nlp=True)
    assert isinstance(nlp, CasadiPyomoNLP) and nlp.n_primals() == 4
    res = pyo.SolverFactory("cyipopt_direct", options={"max_iter": 1}).solve(hs74())
    assert res.solver.termination_condition == pyo.TerminationCondition.maxIterations


def test_register_is_idempotent_and_claims_cyipopt_without_asl():
    from pyomo.contrib.pynumero.asl import AmplInterface

    names = register()
    assert register() == names and "cyipopt_direct" in names
    if not AmplInterface.available():
        assert "cyipopt" in names
        assert isinstance(pyo.SolverFactory("cyipopt"), CyIpoptDirectSolver)
    else:
        assert not isinstance(pyo.SolverFactory("cyipopt"), CyIpoptDirectSolver)


def test_expr_if_and_ranged_conditions():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=3.0, bounds=(-5, 5))
    m.y = pyo.Var(initialize=0.5)
    m.obj = pyo.Objective(expr=pyo.Expr_if(IF=m.x >= 0, THEN=(m.x - 1) ** 2, ELSE=m.x ** 2 + 1)
                          + pyo.Expr_if(IF=pyo.inequality(-1, m.y, 1), THEN=m.y ** 2, ELSE=1.0))
    r = solve_nlp(m, options={"tol": 1e-10})
    assert r.status == "optimal" and r.objective == pytest.approx(0.0, abs=1e-9)
    assert (pyo.value(m.x), pyo.value(m.y)) == pytest.approx((1.0, 0.0), abs=1e-6)
    layout, compiled, _ = compile_model(m)
    for xv, yv in [(2.0, 0.3), (-2.0, 0.3), (2.0, 3.0)]:
        f = float(compiled.fn_f([xv, yv], []))
        m.x.set_value(xv), m.y.set_value(yv)
        assert f == pytest.approx(pyo.value(m.obj))
