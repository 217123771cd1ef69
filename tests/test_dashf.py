"""DASHF variant (models/dashf-2024.toml), service_quality block and the mecsplit-dashf plugin."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pyomo.environ as pyo
import pytest

from mecsplit.evaluate import evaluate
from mecsplit.instance import generate
from mecsplit.model import build_model, load_solution
from mecsplit.plugins import get_manager
from mecsplit.solve import Problem, solve
from mecsplit.variant import load_variant

pytest.importorskip("cvxpy")
pytest.importorskip("mecsplit_dashf")
pytest.importorskip("mecsplit_liuzhao.fp")

from mecsplit_dashf.model import Dashf  # noqa: E402
from mecsplit_dashf.solver import OPTIONS, Engine  # noqa: E402
from mecsplit_dashf.steps import QCQP, dinkelbach, hungarian_slots, solve_sdr, sdr_association  # noqa: E402

KINDS = ("offload_log", "local_log", "rate_log", "rate_sigmoid")
FAST = {"starts": 1, "randomisations": 10, "evaluate_candidates": 2}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def variant(kind=None):
    ov = {"blocks": {"service_quality": {"kind": kind}}} if kind else None
    return load_variant("dashf-2024", overrides=ov)


def random_point(inst, rng):
    sol = inst.reference_solution()
    sol["server"] = rng.integers(0, inst.M, inst.N)
    sol["alpha"] = rng.uniform(0, float(inst.block("llm")["layers"]), inst.N)
    sol["f_GHz"] = sol["f_GHz"] * rng.uniform(0.1, 1, inst.N)
    sol["p_W"] = sol["p_W"] * rng.uniform(0.01, 1, inst.N)
    cnt = np.bincount(sol["server"], minlength=inst.M)[sol["server"]]
    sol["b_MHz"] = inst.block("uplink")["b_max_MHz"][sol["server"]] / cnt * rng.uniform(0.2, 1, inst.N)
    sol["fe_GHz"] = inst.block("edge_compute")["F_max_GHz"][sol["server"]] / cnt * rng.uniform(0.2, 1, inst.N)
    return sol


def test_variant_shape_and_defaults():
    v = variant()
    assert v.sizes == {"users": 10, "servers": 2}
    assert v.objective.kind == "cost_per_quality"
    assert [b.name for b in v.blocks] == ["llm", "association", "user_compute", "edge_compute", "uplink", "service_quality"]
    assert v.block("llm").p["split"] == "continuous" and v.block("llm").p["alpha_min"] == 0
    inst = generate(v, seed=1)
    ev = evaluate(v, inst, inst.reference_solution())
    assert ev.feasible and ev.metrics["total_quality"] == pytest.approx(10 * (1 + np.log(1 + 4 * 0.5)))


@pytest.mark.parametrize("kind", KINDS)
def test_pyomo_objective_equals_evaluator(kind):
    v = variant(kind)
    rng = np.random.default_rng(11)
    for seed in (1, 2):
        inst = generate(v, 6, 3, seed)
        for _ in range(4):
            sol = random_point(inst, rng)
            m = build_model(v, inst)
            load_solution(m, v, inst, sol)
            ev = evaluate(v, inst, sol)
            assert np.isfinite(ev.objective)
            assert pyo.value(m.obj) == pytest.approx(ev.objective, rel=1e-9)
            # the plugin's own numpy ratio agrees too (independent code path: mecsplit_liuzhao coefficients)
            d = Dashf(v, inst)
            x = {k: np.asarray(sol[k], float) for k in ("alpha", "f_GHz", "fe_GHz", "p_W", "b_MHz")}
            assert d.ratio(np.asarray(sol["server"]), x) == pytest.approx(ev.objective, rel=1e-9)


def test_quality_kind_changes_the_objective_and_is_validated():
    from mecsplit.errors import InputError

    inst_vals = []
    for k in KINDS:
        v = variant(k)
        inst = generate(v, 4, 2, 3)
        sol = inst.reference_solution()
        sol["alpha"] = np.full(4, 8.0)   # not Υ/2, where offload_log and local_log coincide
        inst_vals.append(evaluate(v, inst, sol).metrics["total_quality"])
    assert len(set(np.round(inst_vals, 9))) == len(KINDS)
    with pytest.raises(InputError, match="service_quality.kind"):
        variant("sqrt_rate")


def test_dashf_verified_and_dinkelbach_converges():
    v = variant()
    inst = generate(v, 6, 2, 5)
    r = solve(v, inst, "dashf", FAST, seed=0)
    assert r.verification["verdict"] == "ok", r.verification
    assert r.status == "feasible"
    dk = r.extra["dinkelbach"]
    F, lam = dk["F"], dk["lambda"]
    assert dk["converged"] and abs(F[-1]) <= 1e-9 * r.extra["cost"]
    assert all(f <= 1e-12 for f in F)                      # inner never worsens its start: F(λ_k) ≤ 0
    assert all(b <= a * (1 + 1e-12) for a, b in zip(lam, lam[1:]))   # λ monotone
    assert abs(F[-1]) < 1e-6 * abs(F[0])                   # F(λ) → 0
    assert lam[-1] == pytest.approx(r.objective, rel=1e-12)
    # at least as good as every one of its starting points' fixed-association counterpart
    g = solve(v, inst, "dashf-greedy", seed=0)
    assert r.objective <= g.objective * (1 + 1e-9)


def test_dinkelbach_exact_inner_superlinear():
    """Discrete toy ratio with an exact inner solve: Dinkelbach reaches the enumerated optimum and
    the error contracts superlinearly."""
    rng = np.random.default_rng(2)
    Nv, Dv = rng.uniform(1, 5, 200), rng.uniform(0.5, 3, 200)
    inner = lambda lam, i: (int(np.argmin(Nv - lam * Dv)), None)
    res = dinkelbach(inner, lambda i: Nv[i], lambda i: Dv[i], 0, tol=1e-14, max_iter=50)
    assert res.lam == pytest.approx(np.min(Nv / Dv), rel=1e-14)
    lams = [h["lambda"] for h in res.history]
    assert all(b <= a for a, b in zip(lams, lams[1:]))
    assert res.iterations <= 6


def _qcqp(rng, N, M, capf=1.0):
    cap = np.full(M, int(np.ceil(capf * N / M)))
    return QCQP(K=rng.uniform(1, 3, (N, M)), D=rng.uniform(-0.1, 0.1, (N, M)), qa=rng.uniform(0, 0.01, N),
                qb=rng.uniform(-0.1, 0.1, N), qc=rng.uniform(-1, 1, N), lo=0.0, hi=32.0, cap=cap)


@pytest.mark.parametrize("N,M,seed", [(4, 2, 0), (5, 2, 1), (4, 3, 2), (6, 2, 3)])
def test_sdr_is_a_lower_bound_of_the_qcqp(N, M, seed):
    q = _qcqp(np.random.default_rng(seed), N, M)
    opt, arg = q.enumerate_optimum()
    r = solve_sdr(q)
    assert r.status.startswith("optimal")
    assert r.value <= opt + 1e-6 * abs(opt)
    rr = sdr_association(q, np.random.default_rng(seed), randomisations=20)
    assert rr.value >= opt - 1e-9 * abs(opt)            # a rounded point is feasible: never below the optimum
    assert np.all(np.bincount(rr.server, minlength=M) <= q.cap)


def test_sdr_lower_bound_on_instance_pair_data():
    """The QCQP DASHF builds from a real instance (tentative shares, quadratic majoriser of −λQ)."""
    v = variant()
    inst = generate(v, 5, 2, 4)
    eng = Engine(Problem(v, inst, 0), dict(OPTIONS, **FAST))
    server, x = eng.initial("dashf")
    d = eng.d
    lam = d.ratio(server, x)
    pdat = d.pair_data(server, x, lam)
    qa, qb, qc = d.quad_majoriser(x["alpha"], lam)
    q = QCQP(pdat.K, pdat.D, qa, qb, qc, d.lo, d.hi, np.array([3, 3]))
    opt, _ = q.enumerate_optimum()
    assert solve_sdr(q).value <= opt + 1e-6 * abs(opt)
    # the majoriser is an upper bound of −λQ, tight at α0
    a = np.linspace(d.lo, d.hi, 7)
    for n in range(inst.N):
        maj = qa[n] * a**2 + qb[n] * a + qc[n]
        true = -lam * d.w[n] * (d.q0 + d.sq.g_alpha(a, d.Y))
        assert np.all(maj >= true - 1e-12)
    assert qa @ x["alpha"] ** 2 + qb @ x["alpha"] + qc.sum() == pytest.approx(-lam * np.sum(d.quality_user(server, x)))


def test_hungarian_slots_capacity_and_optimality():
    rng = np.random.default_rng(7)
    for N, M, c in [(5, 2, 3), (6, 3, 2), (7, 3, 3), (4, 4, 1)]:
        cost = rng.uniform(0, 10, (N, M))
        cost[:, 0] -= 20  # everyone prefers server 0: capacities must bind
        cap = np.full(M, c)
        s = hungarian_slots(cost, cap)
        assert np.all(np.bincount(s, minlength=M) <= cap)
        best = min(sum(cost[n, a[n]] for n in range(N)) for a in itertools.product(range(M), repeat=N)
                   if np.all(np.bincount(np.array(a), minlength=M) <= cap))
        assert sum(cost[n, s[n]] for n in range(N)) == pytest.approx(best, rel=1e-12)
    with pytest.raises(ValueError):
        hungarian_slots(np.zeros((5, 2)), [2, 2])


def test_steps_and_solvers_registered():
    mgr = get_manager()
    assert {"dinkelbach": "outer", "sdr-association": "association", "hungarian-assignment": "association"}.items() <= \
        {k: s.kind for k, s in mgr.steps.items()}.items()
    for name in ("dashf", "dashf-random", "dashf-greedy", "no-offloading", "full-offloading"):
        assert mgr.solvers[name].supports(variant()) and not mgr.solvers[name].exact


def test_baselines_verified_and_dashf_beats_random_on_average():
    v = variant()
    ours, rand = [], []
    for seed in (1, 2, 3):
        inst = generate(v, 6, 2, seed)
        r = solve(v, inst, "dashf", {"randomisations": 10, "evaluate_candidates": 2, "starts": 2}, seed=0)
        b = solve(v, inst, "dashf-random", seed=seed)
        for res in (r, b):
            assert res.verification["verdict"] == "ok"
        ours.append(r.objective)
        rand.append(b.objective)
    assert np.mean(ours) <= np.mean(rand)
    inst = generate(v, 6, 2, 1)
    lo, hi = solve(v, inst, "no-offloading"), solve(v, inst, "full-offloading")
    Y = float(inst.block("llm")["layers"])
    assert lo.verification["verdict"] == "ok" and hi.verification["verdict"] == "ok"
    assert np.allclose(lo.solution["alpha"], Y) and np.allclose(hi.solution["alpha"], 0.0)


@pytest.mark.parametrize("kind", ["local_log", "offload_log"])
def test_certified_lower_bound_below_every_association(kind):
    """λ_LB (mecsplit_dashf.bound) ≤ the ratio found for every one of the 16 associations of a 4×2
    instance (each by Dinkelbach over α + FP resources), hence ≤ the best known; and it is close."""
    from mecsplit_dashf.bound import lower_bound, refine_multipliers

    v = variant(kind)
    inst = generate(v, 4, 2, 1)
    r = solve(v, inst, "dashf", FAST, seed=0)
    x = {k: r.solution[k] for k in ("alpha", "f_GHz", "fe_GHz", "p_W", "b_MHz")}
    lb0 = lower_bound(v, inst, r.solution["server"], x, lam_hi=r.objective)
    lb = refine_multipliers(v, inst, lb0, r.objective, rounds=1)["lambda_lb"]
    assert lb >= lb0["lambda_lb"]
    eng = Engine(Problem(v, inst, 0), dict(OPTIONS, **FAST))
    d = eng.d
    vals = []
    for s in itertools.product(range(2), repeat=4):
        server = np.array(s)
        x0, _ = d.resources(server, np.full(4, 16.0))
        res = dinkelbach(lambda lam, st: eng.inner(lam, st, assoc=False), lambda st: d.parts(*st)[0],
                         lambda st: d.parts(*st)[1], (server, x0), tol=1e-9, max_iter=30)
        vals.append(res.lam)
    assert 0 < lb <= min(vals) <= r.objective * (1 + 1e-9)
    assert r.objective == pytest.approx(min(vals), rel=1e-6)   # DASHF finds the best association here
    assert (r.objective - lb) / r.objective < 0.05              # measured ≈ 1.6 % / 0.7 % before refinement


def test_generic_ipopt_path_agrees_with_dashf():
    """Generic path (issue 2): the Pyomo model with χ fixed to DASHF's association, solved by Ipopt
    (mecsplit.ipopt bridge) from the reference point, not from DASHF's. Independent of the FP code:
    both must land on the same ratio, above the certified bound."""
    ipopt = pytest.importorskip("mecsplit.ipopt")
    from mecsplit.model import extract_solution
    from mecsplit_dashf.bound import lower_bound

    v = variant()
    inst = generate(v, 4, 2, 1)
    r = solve(v, inst, "dashf", FAST, seed=0)
    sol = inst.reference_solution()
    sol["server"] = np.array(r.solution["server"])
    cnt = np.bincount(sol["server"], minlength=2)[sol["server"]]
    sol["fe_GHz"] = inst.block("edge_compute")["F_max_GHz"][sol["server"]] / cnt
    sol["b_MHz"] = inst.block("uplink")["b_max_MHz"][sol["server"]] / cnt
    m = build_model(v, inst)
    load_solution(m, v, inst, {k: np.asarray(val).tolist() for k, val in sol.items()}, fix=("server",))
    res = ipopt.solve_nlp(m, options={"tol": 1e-10, "max_iter": 3000})
    assert res.status == "optimal"
    ev = evaluate(v, inst, extract_solution(m, v, inst))
    assert ev.max_violation < 1e-6
    assert ev.objective == pytest.approx(r.objective, rel=1e-6)
    x = {k: r.solution[k] for k in ("alpha", "f_GHz", "fe_GHz", "p_W", "b_MHz")}
    assert lower_bound(v, inst, r.solution["server"], x, lam_hi=r.objective)["lambda_lb"] <= ev.objective
