"""benchmarks/exact_structure.py ``milp`` (docs/exact.md §5, session 13): its aggregate form of the
assignment MILP keeps every cut valid — for any assignment, each factored cut's value is at most the
cut's own and short of it by no more than ρ_j per user — and its optimum equals the dense form's."""

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
from mecsplit_exact.bnb import QuietTracer  # noqa: E402
from mecsplit_exact.subproblems import Data  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "exact_structure.py"


@pytest.fixture(scope="module")
def structure():
    spec = importlib.util.spec_from_file_location("exact_structure", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def first_milp(structure):
    v = load_variant("default")
    D = Data(v, generate(v, 12, 3, 1))
    with quiet.highs_options(random_seed=0, threads=1):
        b = structure.FirstMILP(D, QuietTracer(), 1e-12, 1e-15, 10**9, None, method="oa", seed=0)
        b.run()
    return b.milp


def test_factored_cuts_never_exceed_the_cuts_at_any_assignment(structure, first_milp):
    milp = first_milp
    dense = {}
    for col, sel, vals, rhs in milp.rows:
        dense.setdefault(int(col[0]), []).append((sel, vals, rhs))
    rng = np.random.default_rng(7)
    factored = structure.factored_cuts(milp)
    assert sum(f[5].size for f in factored) == len(milp.rows)
    for _ in range(50):           # random assignments: one kept option per user
        x = np.zeros(milp.nx)
        for n in range(milp.D.N):
            x[rng.choice(np.nonzero(milp.on == n)[0])] = 1.0
        for col, opts, Vt, C, rho, rhs in factored:
            own = np.array([vals @ x[sel] + r for sel, vals, r in dense[col]])
            mine = C @ (Vt @ x[opts]) - rho * x[opts].sum() + rhs
            assert np.all(mine <= own + 1e-12)
            assert np.all(own - mine <= 2 * rho * x[opts].sum() + 1e-12)


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
    dense, agg = values
    assert agg <= dense + 1e-7 * (1 + abs(dense))        # a relaxation of the dense form (HiGHS' tolerances)
    assert agg >= dense - 1e-7 * (1 + abs(dense))        # ... and no weaker beyond ρ (≤ 1e-10 per row)
