"""The variant language beyond parameters (issue 15): constraints and objective terms as expressions,
units, the compiled form, capabilities.

The Pyomo model and the evaluator compute every quantity by separate code (block ``build`` vs
``evaluate``); the property test draws random expressions and random points and checks that both
give the same values."""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mecsplit.errors import InputError
from mecsplit.evaluate import _run_blocks, _totals, coerce_solution, evaluate, quantity_values
from mecsplit.expr import PyomoValue, evaluate as expr_eval, parse, to_pyomo
from mecsplit.instance import generate
from mecsplit.model import build_model, load_solution, quantity_values as pyomo_quantities
from mecsplit.plugins import get_manager
from mecsplit.solve import solve
from mecsplit.variant import load_variant

from conftest import random_feasible_point

ISSUE_EXAMPLE = """
[variant]
extends = "default"
description = "default with a per-user deadline, a rate floor and at most 3 users per server"

[[constraints]]
name = "deadline"
for_each = "user"
expr = "delay_s <= 12000"

[[constraints]]
name = "rate-floor"
for_each = "user"
expr = "rate_Mbps >= 0.5"

[[constraints]]
name = "server-cap"
for_each = "server"
expr = "n_users <= 3"

[[objective.terms]]
name = "peak-power"
expr = "0.01 * max_over_users(p_W)"
"""


def write(tmp_path, text, name="v.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_issue_example_works_as_written(tmp_path):
    v = load_variant(write(tmp_path, ISSUE_EXAMPLE))
    assert [(c.name, c.cls, c.value) for c in v.constraints] == [
        ("deadline", "user:delay_s<=", 12000.0), ("rate-floor", "user:rate_Mbps>=", 0.5), ("server-cap", "server:n_users<=", 3.0)]
    assert [t.name for t in v.terms] == ["peak-power"]
    inst = generate(v, 7, 2, 1)
    sol = {k: np.asarray(x).tolist() for k, x in inst.reference_solution().items()}
    sol["server"] = [0, 0, 0, 0, 1, 1, 1]          # 4 users on server 0: the cap is violated by 1/3
    sol["b_MHz"] = [5.0] * 4 + [20 / 3] * 3
    sol["fe_GHz"] = [float(inst.block("edge_compute")["F_max_GHz"][0]) / 4] * 4 + \
        [float(inst.block("edge_compute")["F_max_GHz"][1]) / 3] * 3
    ev = evaluate(v, inst, sol)
    s = coerce_solution(v, inst, sol)
    ledger, _ = _run_blocks(v, inst, s)
    delay = _totals(ledger, inst.N)["delay"]
    rate = ledger.quantities["rate_Mbps"]
    # each violation as the evaluator's relative measure, recomputed here from the quantities
    assert ev.violations["constraints.deadline"] == pytest.approx(max(0.0, (delay.max() - 12000) / 12000))
    assert ev.violations["constraints.rate-floor"] == pytest.approx(max(0.0, (0.5 - rate.min()) / 1.0))
    assert ev.violations["constraints.server-cap"] == pytest.approx(1 / 3)
    base = load_variant("default").objective.evaluate(inst, _totals(ledger, inst.N))
    assert ev.objective == pytest.approx(base + 0.01 * max(sol["p_W"]), rel=1e-12)
    assert ev.metrics["term.peak-power"] == pytest.approx(0.01 * max(sol["p_W"]))


@pytest.mark.parametrize("table, expr, field, token", [
    ("constraints", "delay_z <= 3", "constraints[0].expr", "delay_z"),
    ("constraints", "delay_s + energy_J <= 3", "constraints[0].expr", "adds s and J without a weight"),
    ("constraints", "delay_s <= rate_Mbps", "constraints[0].expr", "compares s and Mbit/s"),
    ("constraints", "max_over_users(p_W) >= 1", "constraints[0].expr", "max_over_users"),
    ("constraints", "__import__('os').system('true') <= 1", "constraints[0].expr", "__import__"),
    ("constraints", "delay_s.real <= 1", "constraints[0].expr", "delay_s.real"),
    ("constraints", "(lambda: 1)() <= 1", "constraints[0].expr", "lambda"),
    ("constraints", "1 <= delay_s <= 2", "constraints[0].expr", "one comparison"),
    ("constraints", "delay_s < 3", "constraints[0].expr", "one comparison"),
    ("constraints", "delay_s <= ", "constraints[0].expr", "syntax error"),
    ("constraints", "sum_users(delay_s) <= 3", "constraints[0].expr", "per server"),
    ("constraints", "n_users + delay_s <= 3", "constraints[0].expr", "mixes per-user and per-server"),
    ("constraints", "delay_s ** p_W <= 3", "constraints[0].expr", "exponent"),
    ("constraints", "mystery(delay_s) <= 3", "constraints[0].expr", "unknown function 'mystery'"),
    ("terms", "delay_s", "objective.terms[0].expr", "aggregate"),
    ("terms", "-max_over_users(p_W)", "objective.terms[0].expr", "max_over_users"),
])
def test_bad_expression_is_one_line_naming_file_field_and_token(tmp_path, cli, table, expr, field, token):
    head = "[[constraints]]\nname = \"c\"\nfor_each = \"user\"\n" if table == "constraints" else "[[objective.terms]]\nname = \"t\"\n"
    p = write(tmp_path, f"[variant]\nextends = \"default\"\n{head}expr = \"{expr}\"\n")
    r = cli("variants", "--show", str(p))
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(p) in lines[0] and f"'{field}'" in lines[0] and token in lines[0], lines


@pytest.mark.parametrize("text, field", [
    ("[[constraints]]\nname = \"c\"\nexpr = \"delay_s <= 3\"\n", "constraints[0].expr"),          # per user, no for_each
    ("[[constraints]]\nname = \"c\"\nfor_each = \"user\"\nexpr = \"mean_over_users(delay_s) <= 3\"\n", "constraints[0].expr"),
    ("[[constraints]]\nname = \"c\"\nfor_each = \"cell\"\nexpr = \"delay_s <= 3\"\n", "constraints[0].for_each"),
    ("[[constraints]]\nname = \"c\"\nfor_each = \"user\"\n", "constraints[0].expr"),
    ("[[constraints]]\nfor_each = \"user\"\nexpr = \"delay_s <= 3\"\n", "constraints[0].name"),
    ("[[constraints]]\nname = \"c\"\nfor_each = \"user\"\nexpr = \"delay_s <= 3\"\nweight = 2\n", "constraints[0].weight"),
    ("[[constraints]]\nname = \"c\"\nfor_each = \"user\"\nexpr = \"delay_s <= 3\"\n"
     "[[constraints]]\nname = \"c\"\nfor_each = \"user\"\nexpr = \"delay_s <= 4\"\n", "constraints[1].name"),
    ("[objective]\nterms = 5\n", "objective.terms"),
    ("[[constraints]]\nname = \"c\"\nfor_each = \"user\"\nexpr = 3\n", "constraints[0].expr"),
])
def test_bad_constraint_tables(tmp_path, text, field):
    with pytest.raises(InputError) as e:
        load_variant(write(tmp_path, "[variant]\nextends = \"default\"\n" + text))
    assert e.value.field == field, str(e.value)


def test_constraints_must_be_an_array_of_tables(tmp_path):
    with pytest.raises(InputError, match="array of tables") as e:
        load_variant(write(tmp_path, "constraints = 5\n[variant]\nextends = \"default\"\n"))
    assert e.value.field == "constraints"


def test_extends_merges_constraints_and_terms_by_name(tmp_path):
    write(tmp_path, ISSUE_EXAMPLE, "parent.toml")
    child = write(tmp_path, """
[variant]
extends = "parent"
[[constraints]]
name = "deadline"
for_each = "user"
expr = "delay_s <= 9000"
[[constraints]]
name = "server-cap"
enabled = false
for_each = "server"
expr = "n_users <= 3"
[[constraints]]
name = "mean-delay"
expr = "mean_over_users(delay_s) <= 20000"
""", "child.toml")
    v = load_variant(child)
    assert [c.name for c in v.constraints] == ["deadline", "rate-floor", "mean-delay"]   # server-cap dropped
    assert v.constraints[0].value == 9000.0 and v.constraints[1].value == 0.5 and v.constraints[2].kind == "general"
    assert [t.name for t in v.terms] == ["peak-power"]


def test_units_compose():
    sym = load_variant("default").symbols()
    assert str(parse("rate_Mbps * uplink_delay_s", sym).unit) == "Mbit"
    assert str(parse("uplink_energy_J / uplink_delay_s", sym).unit) == "W"     # W = J/s
    parse("uplink_energy_J / uplink_delay_s <= p_W", sym, compare=True)
    parse("rate_Mbps * uplink_delay_s <= upload_Mbit * 2", sym, compare=True)   # Mbit both sides
    with pytest.raises(InputError, match="compares Mbit and J"):
        parse("rate_Mbps * uplink_delay_s <= energy_J", sym, compare=True)
    assert parse("delay_s + 0.5 * energy_J", sym).unit == sym["delay_s"].unit  # the weight converts J to s


# --- Pyomo value = evaluator value on random expressions and random points ------------------------------

USER_Q = ["delay_s", "energy_J", "rate_Mbps", "p_W", "b_MHz", "f_GHz", "fe_GHz", "alpha", "uplink_delay_s",
          "user_compute_energy_J", "edge_compute_delay_s", "stability"]


def _leaf():
    return st.tuples(st.floats(0.1, 10.0), st.sampled_from(USER_Q)).map(lambda t: f"{t[0]:.4g} * {t[1]}")


def _user_expr():
    return st.recursive(_leaf(), lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "*", "/"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda e: f"sqrt({e})"), inner.map(lambda e: f"log(1 + {e})"),
        inner.map(lambda e: f"{e} ** 2")), max_leaves=5)


_VARIANT, _INST = None, None


def _setup():
    global _VARIANT, _INST
    if _VARIANT is None:
        _VARIANT = load_variant("default", overrides={"blocks": {"llm": {"layers": 6}}})
        _INST = generate(_VARIANT, 3, 2, 4)
    return _VARIANT, _INST


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ue=_user_expr(), agg=st.sampled_from(["sum_over_users", "mean_over_users", "max_over_users"]),
       seed=st.integers(0, 10**6))
def test_pyomo_equals_evaluator_on_random_expressions_and_points(ue, agg, seed):
    v, inst = _setup()
    sym = v.symbols()
    user_e, term_e = parse(ue, sym), parse(f"0.5 * {agg}({ue})", sym)
    srv_e = parse(f"sum_users({ue})", sym)
    sol = random_feasible_point(v, inst, np.random.default_rng(seed))
    # the evaluator's side: block.evaluate (numpy) -> quantities -> expr.evaluate
    s = coerce_solution(v, inst, sol)
    ledger, _ = _run_blocks(v, inst, s)
    vals = quantity_values(v, inst, s, ledger, _totals(ledger, inst.N))
    ref_user = np.asarray(expr_eval(user_e, vals, s["server"], inst.M), float)
    ref_term = float(expr_eval(term_e, vals, s["server"], inst.M))
    ref_srv = np.asarray(expr_eval(srv_e, vals, s["server"], inst.M), float)
    # the model's side: block.build (Pyomo) -> quantities -> expr.to_pyomo, values at the loaded point
    m = pyo.ConcreteModel()
    from mecsplit.blocks.base import Ledger
    m.U, m.S = pyo.RangeSet(0, inst.N - 1), pyo.RangeSet(0, inst.M - 1)
    m.epigraphs = []
    led = Ledger()
    for b in v.blocks:
        b.build(m, inst, led)
    pv = pyomo_quantities(m, v, inst, led)
    k = [0]

    def add(c):
        k[0] += 1
        m.add_component(f"aux{k[0]}", c)
        return getattr(m, f"aux{k[0]}")

    pu, pt, ps = (to_pyomo(e, pv, m, add) for e in (user_e, term_e, srv_e))
    load_solution(m, v, inst, sol)
    got_user = np.array([pyo.value(x) for x in pu.v])
    got_srv = np.array([pyo.value(x) for x in ps.v])
    assert np.allclose(got_user, ref_user, rtol=1e-9, atol=1e-12), (ue, got_user, ref_user)
    assert pyo.value(pt.v) == pytest.approx(ref_term, rel=1e-9, abs=1e-12), ue
    assert np.allclose(got_srv, ref_srv, rtol=1e-9, atol=1e-12), (ue, got_srv, ref_srv)


def test_model_objective_and_constraints_equal_the_evaluator(tmp_path):
    """The whole path: a variant with a general constraint, a server constraint and two terms."""
    p = write(tmp_path, ISSUE_EXAMPLE + """
[[constraints]]
name = "power-per-server"
for_each = "server"
expr = "sum_users(p_W) <= 2.5"
[[constraints]]
name = "mean-delay"
expr = "mean_over_users(delay_s) <= 1e9"
[[objective.terms]]
name = "bandwidth"
expr = "0.001 * sum_over_users(b_MHz * log(1 + rate_Mbps))"
""")
    v = load_variant(p)
    inst = generate(v, 4, 2, 2)
    rng = np.random.default_rng(0)
    for _ in range(5):
        sol = random_feasible_point(v, inst, rng)
        ev = evaluate(v, inst, sol)
        m = build_model(v, inst)
        load_solution(m, v, inst, sol)
        assert pyo.value(m.obj) == pytest.approx(ev.objective, rel=1e-10)
        s = np.asarray(sol["server"])
        for j in range(inst.M):   # the Pyomo row and the evaluator agree on the per-server constraint
            body = pyo.value(m.constraint_power_per_server[j].body)
            assert body == pytest.approx(np.sum(np.asarray(sol["p_W"])[s == j]), rel=1e-12, abs=1e-12)


# --- the compiled form ---------------------------------------------------------------------------------

def test_compiled_split_bounds_combine_every_block_and_added_bounds(tmp_path):
    v = load_variant("sft-2025")
    inst = generate(v, 6, 1, 2)
    C = inst.compiled
    mem = inst.block("memory")
    cap = np.floor((mem["M_max_GB"] - mem["base_GB"]) / mem["block_GB"] + 1e-9)
    assert np.array_equal(C.alpha_hi, np.minimum(cap, 12 - 1))      # memory and split_bounds (k_s = 1)
    assert np.all(C.alpha_lo == 1)
    p = write(tmp_path, '[variant]\nextends = "sft-2025"\n[[constraints]]\nname = "a"\nfor_each = "user"\n'
              'expr = "alpha <= 3"\n[[constraints]]\nname = "m"\nfor_each = "user"\nexpr = "memory_GB <= 2.5"\n')
    v2 = load_variant(p)
    C2 = generate(v2, 6, 1, 2).compiled
    assert np.array_equal(C2.alpha_hi, np.minimum(np.minimum(cap, 11), np.minimum(3, np.floor((2.5 - mem["base_GB"]) / mem["block_GB"] + 1e-9))))


def test_compiled_coefficients_are_the_ones_the_model_uses():
    v = load_variant("hardware-2024")
    inst = generate(v, 5, 3, 1)
    uc, ec, llm = inst.block("user_compute"), inst.block("edge_compute"), inst.block("llm")
    # independent recomputation from the raw parameters (eqs. 1, 5)
    psi = (72 * 8 * llm["tokens"] * 1024.0**2 + 12 * 8 * llm["tokens"].astype(float) ** 2 * 1024) / 1e12
    assert np.allclose(uc["t_layer"], psi * 1e3 / (uc["cores"] * uc["flops_per_cycle"]))
    assert np.allclose(ec["e_layer"], 1.7e-26 * 1e30 * psi[:, None] / (ec["cores"] * ec["flops_per_cycle"])[None, :])
    C = inst.compiled
    assert C.max_users().tolist() == [math.inf] * 3 and C.user_bound("delay_s", "<=") is None


# --- capabilities ------------------------------------------------------------------------------------------

def test_capabilities_name_the_first_missing_feature(tmp_path):
    pytest.importorskip("mecsplit_exact")
    pytest.importorskip("mecsplit_liuzhao")
    mgr = get_manager()
    v = load_variant(write(tmp_path, ISSUE_EXAMPLE))
    assert mgr.solvers["scip"].why_not(v) is None
    assert "objective term 'peak-power'" in mgr.solvers["liu-zhao"].why_not(v)
    assert mgr.solvers["exact"].why_not(load_variant("hardware-2024")) is None
    assert mgr.solvers["exact"].why_not(load_variant("sft-2025")) is None     # docs/exact.md §9
    assert "channel dynamics" in mgr.solvers["exact"].why_not(load_variant("sft-2025-dynamic"))
    assert "needs block 'service_quality'" in mgr.solvers["dashf"].why_not(load_variant("default"))
    with pytest.raises(InputError, match="cannot take variant"):
        solve(v, generate(v, 3, 2, 0), "liu-zhao")


def test_plugins_variant_lists_who_takes_it(cli, tmp_path):
    pytest.importorskip("mecsplit_exact")
    r = cli("plugins", "--variant", "hardware-2024", entry_points=True)
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines() if line.strip()}
    assert "takes hardware-2024" in rows["exact"] and "takes hardware-2024" in rows["liu-zhao"]
    assert "no: needs block 'service_quality'" in rows["dashf"]


# --- heuristics on added constraints: feasible or "no feasible point found", never a violating point ------

def test_greedy_respects_a_server_cap(tmp_path):
    pytest.importorskip("mecsplit_baselines")
    v = load_variant(write(tmp_path, '[variant]\nextends = "default"\n[[constraints]]\nname = "cap"\n'
                                     'for_each = "server"\nexpr = "n_users <= 2"\n'))
    inst = generate(v, 5, 3, 1)
    r = solve(v, inst, "greedy")
    assert r.status.value == "feasible" and r.verification["verdict"] == "ok"
    assert np.bincount(r.solution["server"], minlength=3).max() <= 2
    r2 = solve(v, generate(v, 7, 3, 1), "greedy")           # 3 servers x 2 < 7 users
    assert r2.status.value == "infeasible" and "admit 6 of 7" in r2.message


def test_unmodelled_deadline_is_reported_as_no_feasible_point(tmp_path):
    pytest.importorskip("mecsplit_liuzhao")
    v = load_variant(write(tmp_path, '[variant]\nextends = "default"\n[[constraints]]\nname = "deadline"\n'
                                     'for_each = "user"\nexpr = "delay_s <= 100"\n'))    # a local layer alone takes ~4,300 s
    r = solve(v, generate(v, 4, 2, 1), "liu-zhao")
    assert r.status.value == "infeasible" and "no feasible point found" in r.message and "deadline" in r.message
    assert r.verification["verdict"] == "ok" and not r.verification["feasible"]
