"""Channel dynamics (mecsplit.slots): T slots of block fading, per-slot decisions, slot-averaged objective.

* T = 1 is today's static model: same variant hash, same instance, and a T = 2 instance whose two slots
  carry the static channel (slot_fading = "none") evaluates and models every point exactly as the static one;
* the evaluator and the Pyomo model agree on a slotted instance, and every per-slot constraint is checked
  in every slot;
* the slot fades come from their own stream (no other draw moves) and bad input is one line.
"""

from __future__ import annotations

import json

import numpy as np
import pyomo.environ as pyo
import pytest

from mecsplit.errors import InputError
from mecsplit.evaluate import evaluate
from mecsplit.instance import from_dict, generate
from mecsplit.model import build_model, extract_solution, load_solution
from mecsplit.plugins import get_manager
from mecsplit.variant import load_variant


def _point(inst, rng):
    """A random point of the static instance (per-user values, within bounds, budgets met)."""
    sol = {k: np.asarray(v, float) for k, v in inst.reference_solution().items()}
    c = inst.compiled
    sol["alpha"] = rng.integers(c.alpha_lo, c.alpha_hi + 1).astype(float)
    sol["rho"] = np.full(inst.N, 0.6)
    w = rng.uniform(0.5, 1.5, inst.N)
    sol["b_MHz"] = inst.block("uplink")["b_max_MHz"][0] * w / w.sum()
    sol["fe_GHz"] = inst.block("edge_compute")["F_max_GHz"][0] * w[::-1] / w.sum()
    return sol


def _pyomo_objective(v, inst, sol):
    m = build_model(v, inst)
    load_solution(m, v, inst, {k: np.asarray(x).tolist() for k, x in sol.items()})
    return float(pyo.value(m.obj))


def test_static_channel_keeps_hashes_and_instances():
    v = load_variant("sft-2025")
    v1 = load_variant("sft-2025", overrides={"generator": {"slots": 1, "slot_fading": "rician"}})
    assert v1.slots.T == 1 and v1.structure_hash() == v.structure_hash()
    a, b = generate(v, 6, 1, seed=4), generate(v1, 6, 1, seed=4)
    assert a.to_json() == b.to_json() and "gain_slots" not in a.to_json()


def test_two_identical_slots_are_the_static_model():
    """T = 2 with both slots the static channel: evaluation, metrics and the Pyomo model equal the static ones."""
    v = load_variant("sft-2025")
    v2 = load_variant("sft-2025", overrides={"generator": {"slots": 2, "slot_fading": "none"}})
    inst, inst2 = generate(v, 8, 1, seed=2), generate(v2, 8, 1, seed=2)
    assert np.array_equal(inst2.slot_gain[0], inst.topology["gain"]) and np.array_equal(inst2.slot_gain[1], inst.topology["gain"])
    sol = _point(inst, np.random.default_rng(0))
    ev, ev2 = evaluate(v, inst, sol), evaluate(v2, inst2, sol)   # (N,) held in both slots
    sol2 = {k: (np.stack([x, x]) if k in ("p_W", "b_MHz", "fe_GHz") else x) for k, x in sol.items()}
    ev2b = evaluate(v2, inst2, sol2)
    assert ev.feasible and ev2.feasible and ev2b.feasible
    for e in (ev2, ev2b):
        assert e.objective == pytest.approx(ev.objective, rel=1e-12)
        for k, x in ev.metrics.items():
            assert e.metrics[k] == pytest.approx(x, rel=1e-12, abs=1e-15), k
    assert _pyomo_objective(v2, inst2, sol2) == pytest.approx(_pyomo_objective(v, inst, sol), rel=1e-12)
    assert _pyomo_objective(v, inst, sol) == pytest.approx(ev.objective, rel=1e-12)


@pytest.mark.parametrize("name", ["sft-2025-dynamic", "default"])
def test_evaluator_and_model_agree_per_slot(name):
    overrides = {} if name == "sft-2025-dynamic" else {"generator": {"slots": 3}}
    v = load_variant(name, overrides=overrides)
    inst = generate(v, 5, 1 if name.startswith("sft") else 2, seed=1)
    assert inst.T > 1 and inst.slot_gain.shape == (inst.T, inst.N, inst.M)
    rng = np.random.default_rng(3)
    sol = {k: np.asarray(x, float) for k, x in inst.reference_solution().items()}
    for k in ("p_W", "b_MHz", "fe_GHz"):     # different values in every slot
        sol[k] = sol[k][None] * rng.uniform(0.6, 1.0, (inst.T, inst.N))
    ev = evaluate(v, inst, sol)
    assert ev.feasible, ev.violations
    assert _pyomo_objective(v, inst, sol) == pytest.approx(ev.objective, rel=1e-10)
    m = build_model(v, inst)
    load_solution(m, v, inst, {k: x.tolist() for k, x in sol.items()})
    back = extract_solution(m, v, inst)
    assert np.allclose(np.asarray(back["b_MHz"]), sol["b_MHz"]) and np.asarray(back["p_W"]).shape == (inst.T, inst.N)
    if v.objective.kind == "max_delay":   # the slot average of the slowest user
        per_slot = [max(pyo.value(m.delay_user[n, t]) for n in m.U) for t in m.T]
        assert ev.objective == pytest.approx(np.mean(per_slot), rel=1e-10)


def test_budget_is_checked_in_every_slot():
    v = load_variant("sft-2025-dynamic")
    inst = generate(v, 4, 1, seed=5)
    sol = {k: np.asarray(x, float) for k, x in inst.reference_solution().items()}
    b = np.broadcast_to(sol["b_MHz"], (inst.T, inst.N)).copy()
    b[inst.T - 1] *= 1.01          # the last slot only: 1 % over the band
    sol["b_MHz"] = b
    ev = evaluate(v, inst, sol)
    assert not ev.feasible and ev.violations["bandwidth_budget"] == pytest.approx(0.01, rel=1e-9)


def test_fades_have_their_own_stream():
    v = load_variant("sft-2025-dynamic")
    static, dyn = generate(load_variant("sft-2025"), 7, 1, seed=9), generate(v, 7, 1, seed=9)
    assert np.array_equal(static.topology["gain"], dyn.topology["gain"])
    for b in static.data:
        for k, x in static.data[b].items():
            assert np.array_equal(x, dyn.data[b][k])
    fades = dyn.slot_gain / dyn.topology["gain"][None]
    assert not np.allclose(fades[0], fades[1]) and np.all(fades > 0)
    again = from_dict(json.loads(dyn.to_json()), v)      # the file round-trips
    assert again.hash == dyn.hash and np.array_equal(again.slot_gain, dyn.slot_gain)


def test_other_solvers_refuse_slots_with_the_reason():
    v = load_variant("sft-2025-dynamic")
    mgr = get_manager()
    assert "channel dynamics" in mgr.solvers["greedy"].why_not(load_variant("default", overrides={"generator": {"slots": 2}}))
    assert mgr.solvers["enumerate"].why_not(v) is None


@pytest.mark.parametrize("gen, field", [
    ({"slots": 0}, "generator.slots"),
    ({"slots": 2.5}, "generator.slots"),
    ({"slots": 2, "slot_fading": "nakagami"}, "generator.slot_fading"),
    ({"slots": 2, "fading": "rayleigh"}, "generator.fading"),
])
def test_bad_slot_settings(gen, field):
    with pytest.raises(InputError) as e:
        load_variant("sft-2025", overrides={"generator": gen})
    assert field in str(e.value)


def test_wrong_slot_shape_is_one_line():
    v = load_variant("sft-2025-dynamic")
    inst = generate(v, 3, 1, seed=1)
    sol = {k: np.asarray(x, float).tolist() for k, x in inst.reference_solution().items()}
    sol["b_MHz"] = [sol["b_MHz"]] * (inst.T - 1)
    with pytest.raises(InputError) as e:
        evaluate(v, inst, sol)
    assert "solution.b_MHz" in str(e.value) and "one per slot and user" in str(e.value)
