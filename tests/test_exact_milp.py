"""benchmarks/exact_milp.py ``--form aggregate`` (docs/exact.md §5, session 13): its form of the
assignment MILP keeps every cut valid — for any assignment, each factored cut's value is at most the
cut's own and short of it by no more than ρ_j plus the rank tolerance per user — and its optimum equals
the dense form's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mecsplit_exact")
highspy = pytest.importorskip("highspy")

from mecsplit import quiet  # noqa: E402
from mecsplit.instance import generate  # noqa: E402
from mecsplit.variant import load_variant  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "exact_milp.py"


@pytest.fixture(scope="module")
def structure():
    spec = importlib.util.spec_from_file_location("exact_milp", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def first_milp(structure, tmp_path_factory):
    v = load_variant("default")
    path = str(tmp_path_factory.mktemp("milp") / "milp.mps")
    with quiet.highs_options(random_seed=0, threads=1):
        return structure.first_milp(v, generate(v, 20, 4, 0), path)[0]


def test_factored_cuts_never_exceed_the_cuts_at_any_assignment(structure, first_milp):
    milp = first_milp
    dense = {}
    for col, sel, vals, rhs in milp.rows:
        dense.setdefault(int(col[0]), []).append((sel, vals, rhs))
    rng = np.random.default_rng(7)
    tol = 1e-10
    factored = structure.factored_cuts(milp, rank_tol=tol)
    assert sum(f[5].size for f in factored) == len(milp.rows)
    for _ in range(50):           # random assignments: one kept option per user
        x = np.zeros(milp.nx)
        for n in range(milp.D.N):
            x[rng.choice(np.nonzero(milp.on == n)[0])] = 1.0
        for col, opts, Vt, C, rho, rhs in factored:
            own = np.array([vals @ x[sel] + r for sel, vals, r in dense[col]])
            mine = C @ (Vt @ x[opts]) - rho * x[opts].sum() + rhs
            assert np.all(mine <= own + 1e-12)
            assert np.all(own - mine <= (tol + rho) * x[opts].sum() + 1e-12)


def test_aggregate_form_has_the_dense_forms_optimum(structure, first_milp):
    milp = first_milp
    h, _ = structure.aggregated(milp)
    values = []
    with quiet.highs_options(random_seed=0, threads=1):
        for model in (milp.h, h):
            model.setOptionValue("mip_rel_gap", 0.0)
            model.setOptionValue("mip_abs_gap", 1e-12)
            model.setOptionValue("time_limit", 60.0)
            model.run()
            assert model.getModelStatus() == highspy.HighsModelStatus.kOptimal
            values.append(model.getInfo().objective_function_value)
    dense, agg = (milp.to_objective(val) for val in values)      # in objective units (the MILP is scaled)
    assert abs(agg - dense) <= 1e-9 * abs(dense)         # (6e-9 apart with HiGHS' presolve on: see aggregated)
