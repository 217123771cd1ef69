"""The framework verifies every solver's result the same way (flags, trace, provenance)."""

from __future__ import annotations

import json

import pytest

from mecsplit.instance import generate
from mecsplit.plugins import get_manager
from mecsplit.result import Result
from mecsplit.solve import solve
from mecsplit.variant import load_variant

FAKES = '''
from mecsplit.plugins import hookimpl
from mecsplit.result import Outcome, Status

def _ref(problem):
    sol = {k: v.tolist() for k, v in problem.instance.reference_solution().items()}
    return sol, problem.evaluate(sol).objective

def exact_liar(problem, options, tracer):
    sol, obj = _ref(problem)
    tracer.bound(obj * 0.5)
    tracer.incumbent(obj, sol)
    return Outcome(Status.OPTIMAL, sol, obj, bound=obj * options["bound_factor"])

def heuristic_bound(problem, options, tracer):
    sol, obj = _ref(problem)
    return Outcome(Status.FEASIBLE, sol, obj, bound=obj)

def wrong_objective(problem, options, tracer):
    sol, obj = _ref(problem)
    return Outcome(Status.FEASIBLE, sol, obj * 0.8)

def infeasible_point(problem, options, tracer):
    sol, obj = _ref(problem)
    sol["p_W"] = [10.0] * len(sol["p_W"])
    return Outcome(Status.FEASIBLE, sol, problem.evaluate(sol).objective)

def timed_out(problem, options, tracer):
    return Outcome(Status.TIME_LIMIT, None, None, bound=1.0)

def picky(problem, options, tracer):
    from mecsplit.errors import InputError
    raise InputError("<option>", "picky.level", "got 7", "1..3")

def not_an_outcome(problem, options, tracer):
    return {"objective": 1}

@hookimpl
def register_solvers(registry):
    registry.add_solver(name="exact-liar", solve=exact_liar, exact=True, options={"bound_factor": 1.0})
    registry.add_solver(name="heuristic-bound", solve=heuristic_bound, exact=False)
    registry.add_solver(name="wrong-objective", solve=wrong_objective, exact=False)
    registry.add_solver(name="infeasible-point", solve=infeasible_point, exact=False)
    registry.add_solver(name="timed-out", solve=timed_out, exact=True)
    registry.add_solver(name="not-an-outcome", solve=not_an_outcome, exact=False)
    registry.add_solver(name="picky", solve=picky, exact=False)
    registry.add_solver(name="only-sft", solve=timed_out, exact=False, variants=("sft-2025",))
'''


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("fakes")
    (d / "fakes.py").write_text(FAKES)
    get_manager(reload=True, plugins_dirs=[str(d)])
    v = load_variant("default")
    yield v, generate(v, 4, 2, 0)
    get_manager(reload=True)


def test_honest_exact_result_is_ok_and_traced(setup):
    v, inst = setup
    r = solve(v, inst, "exact-liar")
    assert r.verification["verdict"] == "ok" and r.gap == 0.0
    assert [e["bound"] for e in r.trace][:1] == [pytest.approx(r.objective * 0.5)]
    assert r.trace[-1]["incumbent"] == pytest.approx(r.objective)
    assert r.provenance["instance_hash"] == inst.hash and r.provenance["options"] == {"bound_factor": 1.0}
    back = Result.from_dict(json.loads(r.to_json()))
    assert back.objective == r.objective and back.status == r.status


@pytest.mark.parametrize("solver, options, flag", [
    ("exact-liar", {"bound_factor": 1.01}, "bound_above_objective"),
    ("heuristic-bound", {}, "heuristic_claims_bound"),
    ("wrong-objective", {}, "objective_mismatch"),
    ("infeasible-point", {}, "infeasible_solution"),
])
def test_dishonest_or_broken_results_are_flagged(setup, solver, options, flag):
    v, inst = setup
    r = solve(v, inst, solver, options)
    assert flag in r.verification["flags"] and r.verification["verdict"] == "flagged"


def test_time_limit_without_incumbent_keeps_the_bound(setup):
    v, inst = setup
    r = solve(v, inst, "timed-out")
    assert r.status.value == "time_limit" and r.objective is None and r.bound == 1.0 and r.gap is None


def test_non_outcome_return_is_an_error(setup):
    v, inst = setup
    r = solve(v, inst, "not-an-outcome")
    assert r.status.value == "error" and "Outcome" in r.message


def test_unsupported_variant_is_refused(setup):
    from mecsplit.errors import InputError

    v, inst = setup
    with pytest.raises(InputError, match="cannot take variant .*supports the variants sft-2025"):
        solve(v, inst, "only-sft")


def test_plugin_input_error_reaches_the_user(setup):
    from mecsplit.errors import InputError

    v, inst = setup
    with pytest.raises(InputError, match="picky.level"):
        solve(v, inst, "picky")
