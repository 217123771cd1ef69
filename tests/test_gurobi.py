"""The ``gurobi`` peer solver (plugins/mecsplit-peers, extra ``[gurobi]``).

Independent checks: every result goes through the framework's evaluator (``verification``); Gurobi's
optimum and bound are compared with the ``exact`` plugin's certified optimum (a different method:
Lagrangian bound + outer-approximation MILP on HiGHS); the precomputed valid inequalities are compared
with brute-force minima on grids. Skipped as a whole when gurobipy cannot be imported.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("mecsplit_peers")
gp = pytest.importorskip("gurobipy", reason="gurobipy not installed (pip install -e 'plugins/mecsplit-peers[gurobi]')")
try:
    _env = gp.Env(empty=True)
    _env.setParam("OutputFlag", 0)
    _env.start()
    _env.dispose()
except gp.GurobiError as _e:   # e.g. the pip licence of this gurobipy release has expired
    pytest.skip(f"gurobipy has no usable licence here: {_e}", allow_module_level=True)

from mecsplit.errors import InputError  # noqa: E402
from mecsplit.instance import generate  # noqa: E402
from mecsplit.plugins import get_manager  # noqa: E402
from mecsplit.solve import solve  # noqa: E402
from mecsplit.variant import load_variant  # noqa: E402
from mecsplit_peers.gurobi import LN2, core_of, cut_constants, edge_min, uplink_min  # noqa: E402

# Gurobi's bound may exceed the true optimum by its tolerances: measured ≤ 1.3e-8 relative on default
# 2x1-4x2 (docs/peers.md). Anything above this is a wrong certificate.
BOUND_RTOL = 1e-7

_cache: dict = {}


def run(v, N, M, solver, options=None, seed=0, time_limit_s=60.0):
    key = (v.name, v.structure_hash(), N, M, solver, tuple(sorted((options or {}).items())), seed, time_limit_s)
    if key not in _cache:
        _cache[key] = solve(v, generate(v, N, M, seed=seed), solver, options, time_limit_s=time_limit_s)
    return _cache[key]


def size_limited_licence() -> bool:
    from mecsplit_peers.gurobi import size_limited_licence as probe
    return probe()


@pytest.fixture(scope="module")
def default():
    return load_variant("default")


def check_against_exact(r, rx):
    assert r.verification["verdict"] == "ok", r.verification
    assert rx.status.value == "optimal"
    if r.bound is not None:
        assert r.bound <= rx.objective * (1 + BOUND_RTOL), (r.bound, rx.objective)
    assert rx.bound <= r.objective * (1 + 1e-9), (rx.bound, r.objective)   # exact's bound below Gurobi's verified point


def test_registered_with_honest_flags():
    s = get_manager().solvers["gurobi"]
    assert s.exact and s.requires == ("gurobipy",) and s.plugin == "peers" and s.variants is None
    assert s.options["threads"] == 1 and s.options["formulation"] == "auto"


@pytest.mark.parametrize("seed", [0, 1])
def test_structured_2x1_certifies_exact_optimum(default, seed):
    rx = run(default, 2, 1, "exact", {"rel_gap": 1e-9}, seed)
    r = run(default, 2, 1, "gurobi", {"rel_gap": 1e-6}, seed)
    assert r.extra["formulation"] == "pairs" and r.status.value == "optimal", r.message
    check_against_exact(r, rx)
    assert abs(r.objective - rx.objective) <= 1e-6 * rx.objective
    assert r.gap <= 1e-6


def test_lean_and_pairs_agree_on_2x2(default):
    v = load_variant("default", overrides={"blocks": {"llm": {"layers": 4}}})
    rx = run(v, 2, 2, "exact", {"rel_gap": 1e-9})
    for form in ("pairs", "lean"):
        r = run(v, 2, 2, "gurobi", {"rel_gap": 1e-6, "formulation": form})
        assert r.extra["formulation"] == form
        check_against_exact(r, rx)
        if r.status.value == "optimal":
            assert abs(r.objective - rx.objective) <= 1e-6 * rx.objective


def test_raw_formulation_on_the_variants_model():
    v = load_variant("default", overrides={"blocks": {"llm": {"layers": 4}}})
    rx = run(v, 2, 1, "exact", {"rel_gap": 1e-9})
    r = run(v, 2, 1, "gurobi", {"formulation": "raw"}, time_limit_s=20.0)
    assert r.extra["formulation"] == "raw" and r.status.value in ("optimal", "time_limit")
    assert r.solution is not None
    check_against_exact(r, rx)
    if r.status.value == "optimal":
        assert r.gap <= 1e-4 and abs(r.objective - rx.objective) <= 1e-4 * rx.objective


def test_auto_takes_the_variants_model_beyond_the_core():
    v = load_variant("sft-2025", overrides={"blocks": {"llm": {"layers": 4}}})
    r = run(v, 2, 1, "gurobi", None, seed=3, time_limit_s=5.0)
    assert r.extra["formulation"] == "raw" and "compression" in r.extra["why_raw"]
    assert r.verification["verdict"] == "ok", r.verification


def test_time_limit_is_never_optimal(default):
    rx = run(default, 6, 2, "exact", {"rel_gap": 1e-9})
    r = run(default, 6, 2, "gurobi", {"rel_gap": 1e-9}, time_limit_s=0.3)
    assert r.status.value == "time_limit", r.message
    if r.solution is not None:
        assert r.verification["verdict"] == "ok", r.verification
    if r.bound is not None:
        assert r.bound <= rx.objective * (1 + BOUND_RTOL)


def test_bad_options_and_uncovered_variants_are_one_line_errors(default):
    inst = generate(default, 2, 1, 0)
    with pytest.raises(InputError, match="gurobi.formulation"):
        solve(default, inst, "gurobi", {"formulation": "perspective"})
    with pytest.raises(InputError, match="gurobi.cuts"):
        solve(default, inst, "gurobi", {"cuts": "all"})
    v = load_variant("sft-2025", overrides={"blocks": {"llm": {"layers": 4}}})
    with pytest.raises(InputError, match="'raw'"):
        solve(v, generate(v, 2, 1, 0), "gurobi", {"formulation": "pairs"})


@pytest.mark.skipif(not size_limited_licence(), reason="this Gurobi licence is not size-limited")
def test_size_limit_is_reported_as_unavailable(default):
    with pytest.raises(InputError, match="unavailable for this size") as e:
        solve(default, generate(default, 20, 4, 0), "gurobi", None, time_limit_s=10.0)
    assert "'lean' model (220 variables)" in str(e.value)     # auto tried pairs, then lean


@pytest.mark.skipif(not size_limited_licence(), reason="this Gurobi licence is not size-limited")
def test_cli_prints_no_licence_banner_and_one_line_refusal(tmp_path):
    cli = [sys.executable, "-m", "mecsplit.cli"]
    for n, m in ((2, 1), (20, 4)):
        subprocess.run(cli + ["instance", "--variant", "default", "--users", str(n), "--servers", str(m), "--seed", "0",
                              "-o", str(tmp_path / f"i{n}.json")], check=True, capture_output=True)
    ok = subprocess.run(cli + ["solve", "--variant", "default", "--instance", str(tmp_path / "i2.json"), "--solver", "gurobi",
                               "--option", "formulation=raw", "--time-limit", "20"], capture_output=True, text=True)
    assert ok.returncode in (0, 1) and ok.stdout.startswith("gurobi on default 2x1: status"), ok.stdout + ok.stderr
    assert "licen" not in (ok.stdout + ok.stderr).lower(), ok.stdout + ok.stderr
    bad = subprocess.run(cli + ["solve", "--variant", "default", "--instance", str(tmp_path / "i20.json"), "--solver", "gurobi"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and "unavailable for this size" in bad.stderr, bad.stderr


def test_valid_inequalities_are_minima(default):
    """The cut constants against brute force: the uplink cost on a dense grid of p at the whole band, the
    edge cost on a dense grid of fe; the hand-derived cut is below the band cut."""
    core = core_of(default, generate(default, 4, 3, 2))
    band, h = cut_constants(core, "band")
    hand, _ = cut_constants(core, "hand")
    for n in range(core.N):
        ps = np.geomspace(1e-9, core.p_hi[n], 200001)
        for j in range(core.M):
            B = core.B[j]
            grid = np.min((core.c0[n] + core.c1[n] * ps) / (B * np.log1p(core.a[n, j] * ps / B) / LN2))
            assert band[n, j] <= grid and band[n, j] >= grid * (1 - 1e-6)
            assert hand[n, j] <= band[n, j]
            fes = np.linspace(core.fe_lo, core.F[j], 200001)
            egrid = np.min(core.t[n, j] / fes + core.e[n, j] * fes**2)
            assert h[n, j] <= egrid and h[n, j] >= egrid * (1 - 1e-6)
    assert uplink_min(1.0, 1.0, 0.0, 0.5, 2.0, 1.0) == pytest.approx(1.0 / math.log2(3.0))   # c1 = 0: p = p_max
    assert edge_min(2.0, 1.0, 0.1, 10.0) == pytest.approx(3.0)                                # fe* = 1


@pytest.mark.slow
@pytest.mark.parametrize("N,M,seed", [(3, 2, 0), (3, 2, 1), (4, 2, 0), (4, 2, 2)])
def test_structured_small_sizes_against_exact(default, N, M, seed):
    rx = run(default, N, M, "exact", {"rel_gap": 1e-9}, seed)
    r = run(default, N, M, "gurobi", {"rel_gap": 1e-6}, seed, time_limit_s=60.0)
    check_against_exact(r, rx)
    if r.status.value == "optimal":
        assert abs(r.objective - rx.objective) <= 1e-6 * rx.objective


@pytest.mark.skipif(not size_limited_licence(), reason="this Gurobi licence is not size-limited")
def test_a_benchmark_skips_sizes_the_licence_refuses(default, tmp_path):
    """Known before solving: the suite records a skip with the reason instead of an error cell."""
    from mecsplit.bench.cells import expand
    from mecsplit.bench.suite import parse_suite
    from mecsplit.plugins import get_manager

    assert get_manager().solvers["gurobi"].capabilities.why_not_size(default, 2, 1) is None
    assert "200-variable" in get_manager().solvers["gurobi"].capabilities.why_not_size(default, 50, 10)
    suite = parse_suite({"defaults": {"variants": ["default"], "sizes": [[2, 1], [50, 10]], "seeds": [0],
                                      "solvers": ["gurobi"], "reference": "none"}}, tmp_path / "s.toml")
    reasons = {(c.n_users, c.n_servers): c.skip_reason for c in expand(suite)}
    assert reasons[(2, 1)] == "" and "unavailable for 50x10" in reasons[(50, 10)]
