"""pytest-benchmark timings (regression timing only, not part of the CI test run: pytest's
``testpaths = ["tests"]`` leaves benchmarks/ out).

Run and save a baseline, then compare a later run with it::

    pytest benchmarks/test_timings.py --benchmark-autosave
    pytest benchmarks/test_timings.py --benchmark-compare            # vs the latest saved run
    pytest benchmarks/test_timings.py --benchmark-compare=0001 --benchmark-compare-fail=median:50%

Saved runs live in benchmarks/.benchmarks/<machine>/ (a baseline is committed; numbers depend on the
machine and its load, see docs/benchmarks.md). Quality numbers (objective, gap) go in
``benchmark.extra_info`` so a faster but worse solver is visible in the JSON.
"""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_benchmark")

from mecsplit.evaluate import evaluate  # noqa: E402
from mecsplit.instance import generate  # noqa: E402
from mecsplit.plugins import get_manager  # noqa: E402
from mecsplit.variant import load_variant  # noqa: E402

SIZES = [(10, 3), (50, 10)]


@pytest.fixture(scope="module")
def variant():
    return load_variant("liu-zhao-2024")


@pytest.mark.parametrize("n,m", SIZES, ids=[f"{n}x{m}" for n, m in SIZES])
@pytest.mark.benchmark(group="instance")
def test_generate_instance(benchmark, variant, n, m):
    inst = benchmark(generate, variant, n, m, 1)
    benchmark.extra_info.update(instance_hash=inst.hash, users=n, servers=m)


@pytest.mark.parametrize("n,m", SIZES, ids=[f"{n}x{m}" for n, m in SIZES])
@pytest.mark.benchmark(group="model")
def test_build_pyomo_model(benchmark, variant, n, m):
    from mecsplit.model import build_model

    inst = generate(variant, n, m, 1)
    model = benchmark.pedantic(build_model, args=(variant, inst), rounds=3, warmup_rounds=1)
    benchmark.extra_info.update(users=n, servers=m, n_vars=model.nvariables())


@pytest.mark.parametrize("n,m", SIZES, ids=[f"{n}x{m}" for n, m in SIZES])
@pytest.mark.benchmark(group="evaluate")
def test_evaluator(benchmark, variant, n, m):
    inst = generate(variant, n, m, 1)
    sol = inst.reference_solution()
    if "greedy" in get_manager().solvers:  # a feasible point (the reference point may violate "eq" budgets)
        from mecsplit.solve import solve

        sol = solve(variant, inst, "greedy", seed=1).solution
    ev = benchmark(evaluate, variant, inst, sol)
    benchmark.extra_info.update(objective=ev.objective, feasible=ev.feasible)


@pytest.mark.parametrize("n,m", SIZES, ids=[f"{n}x{m}" for n, m in SIZES])
@pytest.mark.benchmark(group="solve")
def test_greedy_solve(benchmark, variant, n, m):
    if "greedy" not in get_manager().solvers:
        pytest.skip("plugins/mecsplit-baselines not installed")
    from mecsplit.solve import solve

    inst = generate(variant, n, m, 1)
    res = benchmark(solve, variant, inst, "greedy", None, None, 1)
    benchmark.extra_info.update(objective=res.objective, status=res.status.value, verdict=res.verification["verdict"])


@pytest.mark.benchmark(group="harness")
def test_harness_40_greedy_cells_2_workers(benchmark, tmp_path):
    """The bench harness end to end on 40 tiny greedy cells with 2 persistent workers: measures the
    per-cell overhead (pipe, instance generation, verification, SQLite commit)."""
    if "greedy" not in get_manager().solvers:
        pytest.skip("plugins/mecsplit-baselines not installed")
    from mecsplit.bench.runner import run_suite
    from mecsplit.bench.store import Store
    from mecsplit.bench.suite import parse_suite

    suite = parse_suite({"defaults": {"variants": ["liu-zhao-2024"], "sizes": [[10, 3]], "seeds": {"count": 40},
                                      "solvers": ["greedy"]}}, tmp_path / "harness.toml")
    k = iter(range(1000))

    def once():
        s = Store(tmp_path / f"h{next(k)}.sqlite")
        try:
            return run_suite(suite, s, workers=2, progress=False)
        finally:
            s.close()

    out = benchmark.pedantic(once, rounds=3, warmup_rounds=0)
    benchmark.extra_info.update(cells=out["ran"], solve_s=out["solve_s"], wall_s=out["wall_s"],
                                overhead_per_cell_s=(2 * out["wall_s"] - out["solve_s"]) / out["ran"])


@pytest.mark.benchmark(group="compile")
def test_compile_1000x50(benchmark):
    """The one numeric compilation (mecsplit.compile) of a seed-scale instance: every block's
    coefficients, the split bounds and the added constraints (issue 15: ≤ 1 s at 1000 x 50)."""
    from mecsplit.compile import compile_instance

    v = load_variant("default-constrained")
    inst = generate(v, 1000, 50, 1)
    c = benchmark(compile_instance, inst)
    benchmark.extra_info.update(users=c.N, servers=c.M, constraints=len(c.constraints))
