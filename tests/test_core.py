"""Core: variants, seeded instances, Pyomo model vs the independent numpy evaluator."""

from __future__ import annotations

import json

import numpy as np
import pyomo.environ as pyo
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mecsplit.evaluate import evaluate
from mecsplit.instance import generate, load
from mecsplit.model import build_model, extract_solution, load_solution
from mecsplit.servers import fixed_server_count
from mecsplit.variant import available_variants, load_variant

from conftest import CORE_VARIANTS, random_feasible_point


@pytest.mark.parametrize("name", CORE_VARIANTS)
def test_same_seed_gives_byte_identical_instances(name, tmp_path):
    v = load_variant(name)
    a, b = generate(v, 7, 3, seed=11), generate(load_variant(name), 7, 3, seed=11)
    assert a.to_json() == b.to_json()
    assert generate(v, 7, 3, seed=12).to_json() != a.to_json()
    a.save(tmp_path / "i.json")
    back = load(tmp_path / "i.json", v)
    assert back.to_json() == a.to_json() and back.hash == a.hash


def test_defaults_reproduce_the_paper_setup():
    """spec §1.11: 50 users, 10 servers, Υ=32, B=512, h=1024, d~U[512,1024], p_max~U[1,2] W, 20 MHz."""
    v = load_variant("liu-zhao-2024")
    inst = generate(v, seed=0)
    assert (inst.N, inst.M) == (50, 10)
    llm, up, ec, uc = (inst.block(k) for k in ("llm", "uplink", "edge_compute", "user_compute"))
    assert (llm["layers"], llm["batch"], llm["hidden"]) == (32, 512, 1024)
    assert llm["tokens"].min() >= 512 and llm["tokens"].max() <= 1024
    assert np.all((up["p_max_W"] >= 1) & (up["p_max_W"] <= 2)) and np.all(up["b_max_MHz"] == 20)
    assert np.all((ec["cores"] >= 2560) & (ec["cores"] <= 5120)) and np.all((uc["cores"] >= 4) & (uc["cores"] <= 6))
    # ψ(d) = 72·B·d·h² + 12·B·d²·h  (2.14e13 FLOP at d = 512, spec §1.2)
    d = 512
    assert 72 * 512 * d * 1024**2 + 12 * 512 * d**2 * 1024 == pytest.approx(2.14e13, rel=2e-3)
    i = int(np.argmin(llm["tokens"]))
    t = float(llm["tokens"][i])
    assert llm["psi_TFLOP"][i] == pytest.approx((72 * 512 * t * 1024**2 + 12 * 512 * t**2 * 1024) / 1e12, rel=1e-12)
    # path loss 128.1 + 37.6 log10(d/km): gain of the first pair from the stored positions
    pos_u, pos_s = inst.topology["user_xy_km"][0], inst.topology["server_xy_km"][0]
    dist = max(np.linalg.norm(pos_u - pos_s), 0.01)
    assert inst.topology["gain"][0, 0] == pytest.approx(10 ** (-(128.1 + 37.6 * np.log10(dist)) / 10), rel=1e-12)


def test_extends_chain_and_overrides():
    v = load_variant("hardware-2024")
    assert v.name == "hardware-2024"
    assert v.chain == ["liu-zhao-2024", "default", "hardware-2024"]
    assert v.block("uplink").p["delay"] is True and v.block("uplink").p["upload"] == "activations"
    assert v.block("edge_compute").p["budget"] == "le"
    w = load_variant("default", overrides={"objective": {"weights": {"energy": 7}}})
    assert dict(w.objective.weights)["energy"] == 7.0
    # the weights do not shape the instance: a weight sweep reuses instances
    assert w.structure_hash() == load_variant("default").structure_hash()


@pytest.mark.parametrize("name", CORE_VARIANTS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 6), m=st.integers(1, 3))
def test_pyomo_objective_equals_evaluator(name, seed, n, m):
    v = load_variant(name)
    if v.block("edge_compute").p["budget"] == "eq":
        n = max(n, m)  # equality budgets: every server must serve someone, so N < M is infeasible
    inst = generate(v, n, m, seed)
    sol = random_feasible_point(v, inst, np.random.default_rng(seed))
    ev = evaluate(v, inst, sol)
    assert ev.feasible, ev.violations
    model = build_model(v, inst)
    load_solution(model, v, inst, sol)
    assert pyo.value(model.obj) == pytest.approx(ev.objective, rel=1e-9)
    # every Pyomo constraint holds at the point the evaluator calls feasible
    for c in model.component_data_objects(pyo.Constraint, active=True):
        body = pyo.value(c.body)
        if c.upper is not None:
            assert body <= pyo.value(c.upper) * (1 + 1e-9) + 1e-9
        if c.lower is not None:
            assert body >= pyo.value(c.lower) * (1 - 1e-9) - 1e-9
    back = extract_solution(model, v, inst)
    for k, vals in sol.items():
        assert np.allclose(back[k], vals, rtol=1e-12)


def _violate(v, inst, sol, what):
    s = {k: list(x) for k, x in sol.items()}
    llm, uc, ec, up = (inst.block(k) for k in ("llm", "user_compute", "edge_compute", "uplink"))
    if what == "alpha_bounds":
        s["alpha"][0] = float(llm["layers"])  # = Υ: infinite stability, above Υ-1
    elif what == "alpha_integer":
        s["alpha"][0] = 1.5
    elif what == "f_max":
        s["f_GHz"][0] = float(uc["f_max_GHz"][0]) * 1.01
    elif what == "f_min":
        s["f_GHz"][0] = uc["f_min_GHz"] * 0.5
    elif what == "p_max":
        s["p_W"][0] = float(up["p_max_W"][0]) * 1.01
    elif what == "p_min":
        s["p_W"][0] = up["p_min_W"] * 0.5
    elif what == "b_min":
        s["b_MHz"][0] = up["b_min_MHz"] * 0.5
    elif what == "fe_min":
        s["fe_GHz"][0] = ec["fe_min_GHz"] * 0.5
    elif what == "bandwidth_budget":
        s["b_MHz"] = [x * 2.5 for x in s["b_MHz"]]
    elif what == "edge_freq_budget":
        s["fe_GHz"] = [x * 2.5 for x in s["fe_GHz"]]
    elif what == "fe_max":
        s["fe_GHz"][0] = float(ec["F_max_GHz"][s["server"][0]]) * 1.5
    return s


@pytest.mark.parametrize("what", ["alpha_bounds", "alpha_integer", "f_max", "f_min", "p_max", "p_min", "b_min",
                                  "fe_min", "bandwidth_budget", "edge_freq_budget", "fe_max"])
def test_each_violated_constraint_is_flagged(what):
    v = load_variant("liu-zhao-2024")  # p_min > 0 and equality budgets
    inst = generate(v, 6, 2, 3)
    sol = random_feasible_point(v, inst, np.random.default_rng(0))
    assert evaluate(v, inst, sol).feasible
    ev = evaluate(v, inst, _violate(v, inst, sol, what))
    assert not ev.feasible
    assert ev.violations[what] > 1e-6, ev.violations


def test_equality_budget_under_use_and_empty_server_are_flagged():
    v = load_variant("liu-zhao-2024")
    inst = generate(v, 4, 2, 5)
    sol = random_feasible_point(v, inst, np.random.default_rng(1))
    under = dict(sol, b_MHz=[x * 0.9 for x in sol["b_MHz"]])
    assert evaluate(v, inst, under).violations["bandwidth_budget"] > 1e-3
    empty = dict(sol, server=[0] * inst.N)  # server 1 serves nobody: Σ = 0 ≠ b_max
    ev = evaluate(v, inst, empty)
    assert not ev.feasible and ev.violations["edge_freq_budget"] > 0.1
    # the default variant reads budgets as ≤: under-use is fine there
    d = load_variant("default")
    inst_d = generate(d, 4, 2, 5)
    sol_d = random_feasible_point(d, inst_d, np.random.default_rng(1))
    assert evaluate(d, inst_d, dict(sol_d, b_MHz=[x * 0.9 for x in sol_d["b_MHz"]])).feasible


def test_evaluator_matches_hand_computation_for_one_user():
    """1 user, 1 server, every term written out from spec eqs. (1)-(7), (10)."""
    v = load_variant("default")
    inst = generate(v, 1, 1, 9)
    llm, uc, ec, up, stb = (inst.block(k) for k in ("llm", "user_compute", "edge_compute", "uplink", "stability"))
    a, f, fe, p, b = 5.0, 0.7, 0.9, 1.1, 3.0
    psi = 72 * 512 * float(llm["tokens"][0]) * 1024**2 + 12 * 512 * float(llm["tokens"][0]) ** 2 * 1024  # FLOP
    T_u = a * psi / (f * 1e9 * uc["cores"][0] * uc["flops_per_cycle"][0])
    E_u = a * 1e-28 * (f * 1e9) ** 2 * psi / (uc["cores"][0] * uc["flops_per_cycle"][0])
    T_e = (32 - a) * psi / (fe * 1e9 * ec["cores"][0] * ec["flops_per_cycle"][0])
    E_e = (32 - a) * 1e-28 * (fe * 1e9) ** 2 * psi / (ec["cores"][0] * ec["flops_per_cycle"][0])
    sigma2 = 10 ** (-134 / 10) / 1000  # W/Hz
    r = b * 1e6 * np.log2(1 + inst.topology["gain"][0, 0] * p / (sigma2 * b * 1e6))  # bit/s
    s_bits = float(llm["tokens"][0])
    AS = 2 * 1.0 / (stb["samples"][0] * (1 - a / 32))
    ev = evaluate(v, inst, {"server": [0], "alpha": [a], "f_GHz": [f], "fe_GHz": [fe], "p_W": [p], "b_MHz": [b]})
    assert ev.metrics["delay_s.user_compute"] == pytest.approx(T_u, rel=1e-12)
    assert ev.metrics["energy_J.edge_compute"] == pytest.approx(E_e, rel=1e-12)
    assert ev.metrics["delay_s.uplink"] == pytest.approx(s_bits / r, rel=1e-12)
    assert ev.metrics["total_energy_J"] == pytest.approx(E_u + E_e + p * s_bits / r, rel=1e-12)
    om = v.objective.omega(inst)
    assert ev.objective == pytest.approx(om["delay"] * (T_u + T_e + s_bits / r) + om["energy"] * (E_u + E_e + p * s_bits / r)
                                         + om["stability"] * AS, rel=1e-12)


def _per_layer_costs(v, inst, w):
    """Smallest possible per-layer user cost min_f A(f) and largest possible edge cost B(fe) (spec (14), (15))."""
    om = v.with_overrides({"objective": {"weights": w}}).objective.omega(inst)
    llm, uc, ec = (inst.block(k) for k in ("llm", "user_compute", "edge_compute"))
    cdu = uc["cores"] * uc["flops_per_cycle"]
    f = np.linspace(uc["f_min_GHz"], uc["f_max_GHz"].max(), 4000)[None, :]
    A = om["delay"] * llm["psi_TFLOP"][:, None] * 1e3 / (cdu[:, None] * f) + om["energy"] * uc["kappa"] * 1e30 * llm["psi_TFLOP"][:, None] / cdu[:, None] * f**2
    A_min = A.min(axis=1)
    cde = ec["cores"] * ec["flops_per_cycle"]
    B = lambda fe: om["delay"] * llm["psi_TFLOP"][:, None] * 1e3 / (cde[None, :] * fe) + om["energy"] * ec["kappa"] * 1e30 * llm["psi_TFLOP"][:, None] / cde[None, :] * fe**2
    B_max = np.maximum(B(ec["fe_min_GHz"]), B(ec["F_max_GHz"][None, :])).max(axis=1)  # B is convex in fe: max at an end
    return A_min, B_max


def test_paper_constants_make_split_degenerate():
    """design-notes §3.5: with the paper's constants one local layer costs more than one edge layer for
    every user, server, resource choice and weight in 1..10, and stability also grows with α, so α = 1
    is optimal for every user. The hardware profile removes the degeneracy."""
    v = load_variant("liu-zhao-2024")
    inst = generate(v, 50, 10, 0)
    for w in ({"delay": 1, "energy": 1}, {"delay": 10, "energy": 1}, {"delay": 1, "energy": 10}):
        A_min, B_max = _per_layer_costs(v, inst, w)
        assert np.all(A_min > B_max)
    hw = load_variant("hardware-2024")
    inst = generate(hw, 50, 10, 0)
    A_min, B_max = _per_layer_costs(hw, inst, {"delay": 1, "energy": 1})
    assert np.any(A_min < B_max)  # some users would rather train locally under some allocation


def test_shipped_variant_files_all_load():
    names = available_variants()
    assert {"liu-zhao-2024", "default", "hardware-2024"} <= set(names)
    for name in names:
        v = load_variant(name)
        inst = generate(v, 2, fixed_server_count(v) or 1, 0)
        build_model(v, inst)  # builds without error for every shipped variant


def test_nonpositive_power_is_infeasible_even_without_a_floor():
    """A solver point with p = -2e-10 W (seen from SCIP) must not pass as feasible with a huge negative objective."""
    v = load_variant("default")
    inst = generate(v, 3, 1, 0)
    sol = random_feasible_point(v, inst, np.random.default_rng(0))
    for bad in (-2e-10, 0.0):
        ev = evaluate(v, inst, dict(sol, p_W=[bad] + sol["p_W"][1:]))
        assert not ev.feasible and (ev.violations["p_min"] == np.inf or ev.violations["rate_positive"] == np.inf)
