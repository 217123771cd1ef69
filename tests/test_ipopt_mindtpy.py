"""MindtPy OA end to end through the bridge (nlp_solver='cyipopt', pip-only, no ASL).

A 3-user x 2-server assignment with log-rate terms, convex once the binaries are relaxed (so OA is
exact and its answer must equal brute-force enumeration of the 2^3 assignments, each NLP solved by
the bridge). Units: bandwidth b in MHz, rate r in Mbit/s, data S in Mbit, latency in s.
"""

from __future__ import annotations

import itertools

import pyomo.environ as pyo
import pytest
from pyomo.contrib.pynumero.asl import AmplInterface

from mecsplit.ipopt import CyIpoptDirectSolver, cache_info, clear_cache, solve_nlp

S = [4.0, 6.0, 3.0]  # Mbit to upload per user
EFF = [[2.0, 1.2], [1.0, 2.2], [1.5, 1.5]]  # rate per unit log(1 + b) (Mbit/s)
B = [10.0, 6.0]  # MHz per server
H = [[0.30, 0.10], [0.20, 0.40], [0.05, 0.30]]  # compute latency of user i on server j (s)
R_MIN = 0.5  # Mbit/s


def build_minlp():
    m = pyo.ConcreteModel(name="assign3x2")
    m.I, m.J = pyo.RangeSet(0, 2), pyo.RangeSet(0, 1)
    m.x = pyo.Var(m.I, m.J, domain=pyo.Binary, initialize=0)
    m.b = pyo.Var(m.I, m.J, bounds=lambda m, i, j: (0, B[j]), initialize=1.0)
    m.r = pyo.Var(m.I, bounds=(R_MIN, 50.0), initialize=1.0)
    m.assign = pyo.Constraint(m.I, rule=lambda m, i: sum(m.x[i, j] for j in m.J) == 1)
    m.link = pyo.Constraint(m.I, m.J, rule=lambda m, i, j: m.b[i, j] <= B[j] * m.x[i, j])
    m.budget = pyo.Constraint(m.J, rule=lambda m, j: sum(m.b[i, j] for i in m.I) <= B[j])
    # concave rate (convex constraint): r_i <= sum_j EFF_ij * log(1 + b_ij)
    m.rate = pyo.Constraint(m.I, rule=lambda m, i: m.r[i] - sum(
        EFF[i][j] * pyo.log(1 + m.b[i, j]) for j in m.J) <= 0)
    m.obj = pyo.Objective(expr=sum(S[i] / m.r[i] for i in m.I)
                          + sum(H[i][j] * m.x[i, j] for i in m.I for j in m.J))
    return m


def brute_force():
    """Best assignment by enumeration; every fixed-binary NLP solved by the bridge."""
    clear_cache()
    m = build_minlp()
    results = {}
    for servers in itertools.product([0, 1], repeat=3):
        for i in m.I:
            for j in m.J:
                m.x[i, j].fix(1 if servers[i] == j else 0)
        r = solve_nlp(m, options={"tol": 1e-10})
        assert r.status == "optimal", (servers, r.message)
        results[servers] = r.objective
    return results


def test_brute_force_reuses_one_compiled_structure():
    results = brute_force()
    assert len(results) == 8
    info = cache_info()
    assert info["misses"] == 1 and info["hits"] == 7


def test_mindtpy_oa_matches_brute_force(monkeypatch):
    calls = []
    orig = CyIpoptDirectSolver.solve
    monkeypatch.setattr(CyIpoptDirectSolver, "solve",
                        lambda self, model, **kw: calls.append(1) or orig(self, model, **kw))
    if not AmplInterface.available():
        assert isinstance(pyo.SolverFactory("cyipopt"), CyIpoptDirectSolver)
    results = brute_force()
    best = min(results, key=results.get)
    ranked = sorted(results.values())
    assert ranked[1] - ranked[0] > 1e-3  # the optimum is unique, so the assignment must match

    m = build_minlp()
    res = pyo.SolverFactory("mindtpy").solve(
        m, strategy="OA", mip_solver="appsi_highs", nlp_solver="cyipopt",
        absolute_bound_tolerance=1e-6, relative_bound_tolerance=1e-6)
    assert res.solver.termination_condition == pyo.TerminationCondition.optimal
    assert pyo.value(m.obj) == pytest.approx(results[best], rel=1e-6)
    chosen = tuple(max(m.J, key=lambda j: pyo.value(m.x[i, j])) for i in m.I)
    assert chosen == best
    assert len(calls) >= 2  # relaxed NLP + at least one fixed-binary NLP went through the bridge
    # the incumbent is feasible for the original model
    for c in m.component_data_objects(pyo.Constraint, active=True):
        body = pyo.value(c.body)
        assert (c.lb is None or body >= c.lb - 1e-6) and (c.ub is None or body <= c.ub + 1e-6)


# ------------------------------------------------------------------ what the bridge refuses (issue 21)
def test_grey_box_block_is_refused_by_name_not_sent_without_its_equations():
    from pyomo.contrib.mindtpy.tests.MINLP_simple import SimpleMINLP

    from mecsplit.errors import InputError

    m = SimpleMINLP(grey_box=True)
    with pytest.raises(InputError, match="ExternalGreyBoxBlock") as e:
        pyo.SolverFactory("cyipopt_direct").solve(m)
    assert e.value.field == "my_block.egb"
    with pytest.raises(InputError, match="ExternalGreyBoxBlock"):  # MindtPy's NLP subproblems reach the same check
        pyo.SolverFactory("mindtpy").solve(SimpleMINLP(grey_box=True), strategy="OA", mip_solver="appsi_highs",
                                           nlp_solver="cyipopt")


@pytest.mark.parametrize("reg", ["level_L1", "level_L_infinity"])  # level_L2 needs an MIQP solver, not HiGHS
def test_mindtpy_distance_regularisations_run_through_the_bridge(reg):
    from pyomo.contrib.mindtpy.tests.MINLP_simple import SimpleMINLP

    m = SimpleMINLP()
    pyo.SolverFactory("mindtpy").solve(m, strategy="OA", mip_solver="appsi_highs", nlp_solver="cyipopt",
                                       add_regularization=reg)
    assert pyo.value(m.objective) == pytest.approx(3.5, rel=1e-6)  # Pyomo's own test's known optimum
