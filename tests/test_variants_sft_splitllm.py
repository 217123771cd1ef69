"""SFT (sft-2025) and SplitLLM (splitllm-2025) variants: blocks memory / compression / tier.

Checks: seeded instances are byte-identical; the Pyomo objective equals the numpy evaluator at random
feasible points; each new constraint is flagged (by the evaluator and by the Pyomo model) when violated;
hand-computed numbers from the spec (§1.1 memory table, §2.3 compression sanity check); tiny instances
solved by enumerating the integers + Ipopt on the continuous rest, cross-checked with scipy SLSQP on the
evaluator's own functions and verified by the evaluator.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pyomo.environ as pyo
import pytest

from mecsplit.blocks.memory import tier_coef
from mecsplit.errors import InputError
from mecsplit.evaluate import evaluate
from mecsplit.instance import generate, load
from mecsplit.model import build_model, extract_solution, load_solution
from mecsplit.variant import load_variant

SIZES = {"sft-2025": (50, 1), "splitllm-2025": (20, 4)}


# --- helpers -------------------------------------------------------------------------------------
def _shares(rng, server, total, lo, M):
    """Random shares per server summing to a random fraction (0.5-1) of each server's budget."""
    N = len(server)
    w = rng.uniform(0.2, 1.0, N)
    tot = np.bincount(server, weights=w, minlength=M)
    return np.maximum(np.asarray(total)[server] * rng.uniform(0.5, 1.0) * w / tot[server], lo)


def random_feasible_point(v, inst, rng) -> dict[str, list]:
    N, M = inst.N, inst.M
    llm, uc, up, mem = (inst.block(k) for k in ("llm", "user_compute", "uplink", "memory"))
    Y = int(llm["layers"])
    server = rng.integers(0, M, N)
    cap = np.floor((mem["M_max_GB"] - mem["base_GB"]) / mem["block_GB"]).astype(int)
    sol = {"server": server, "f_GHz": rng.uniform(uc["f_min_GHz"], uc["f_max_GHz"]),
           "p_W": rng.uniform(1e-3, up["p_max_W"]),
           "b_MHz": _shares(rng, server, up["b_max_MHz"], up["b_min_MHz"], M)}
    if v.has_block("compression"):  # SFT
        ec, cp = inst.block("edge_compute"), v.block("compression")
        hi = np.minimum(cap, Y - inst.block("split_bounds")["server_layers_min"])
        sol["alpha"] = np.array([rng.integers(1, h + 1) for h in hi], float)
        sol["fe_GHz"] = _shares(rng, server, ec["F_max_GHz"], ec["fe_min_GHz"], M)
        lo_r, hi_r = cp.p["rho_min"], cp.p["rho_max"]
        rho = rng.uniform(lo_r, hi_r, N)
        need = cp.rho_budget() + 1e-6  # (A1) ⇔ mean ρ ≥ (1 − δ_max)/(1 − ε)
        if rho.mean() < need:
            rho = rho + (need - rho.mean()) / (hi_r - rho.mean()) * (hi_r - rho)
        sol["rho"] = rho
    else:  # SplitLLM
        et, tm, cl = inst.block("edge_tier"), v.block("tier_memory"), v.block("cloud")
        e_l, e_0, c_l, c_0 = tier_coef(inst)
        alpha, beta = np.zeros(N), np.zeros(N)
        for n in range(N):
            a = rng.integers(1, min(cap[n], Y - 2) + 1)
            b_lo = max(a + 1, int(math.ceil(Y - (tm.p["cloud_M_max_GB"] - c_0[n]) / c_l[n])))
            b_hi = min(Y - 1, a + int((inst.block("tier_memory")["edge_M_max_GB"][server[n]] - e_0[n]) // e_l[n]))
            assert b_lo <= b_hi, "instance without a feasible cut pair"
            alpha[n], beta[n] = a, rng.integers(b_lo, b_hi + 1)
        sol.update(alpha=alpha, beta=beta, fe_GHz=_shares(rng, server, et["F_max_GHz"], et["fe_min_GHz"], M),
                   fc_GHz=_shares(rng, server, np.full(M, cl.slot_GHz(inst)), cl.p["fc_min_GHz"], M))
    return {k: np.asarray(x).tolist() for k, x in sol.items()}


def model_objective(m) -> float:
    """max_delay objective after load_solution: τ is an epigraph variable, set it to max_n delay_n."""
    m.tau.set_value(max(pyo.value(m.delay_user[n]) for n in m.U))
    return pyo.value(m.obj)


def violated_components(m, tol=1e-7) -> set[str]:
    out = set()
    for c in m.component_data_objects(pyo.Constraint, active=True):
        body = pyo.value(c.body)
        if c.upper is not None and body > pyo.value(c.upper) + tol * max(1.0, abs(pyo.value(c.upper))):
            out.add(c.parent_component().name)
        if c.lower is not None and body < pyo.value(c.lower) - tol * max(1.0, abs(pyo.value(c.lower))):
            out.add(c.parent_component().name)
    for var in m.component_data_objects(pyo.Var):
        if var.value is None:
            continue
        if (var.lb is not None and var.value < var.lb - 1e-9) or (var.ub is not None and var.value > var.ub + 1e-9):
            out.add(var.parent_component().name + ".bounds")
    return out


# --- loading and instances -----------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SIZES))
def test_variant_loads_and_same_seed_gives_byte_identical_instances(name, tmp_path):
    v = load_variant(name)
    assert v.objective.kind == "max_delay" and (v.sizes["users"], v.sizes["servers"]) == SIZES[name]
    N, M = SIZES[name]
    a, b = generate(v, N, M, seed=5), generate(load_variant(name), N, M, seed=5)
    assert a.to_json() == b.to_json()
    assert generate(v, N, M, seed=6).to_json() != a.to_json()
    a.save(tmp_path / "i.json")
    back = load(tmp_path / "i.json", v)
    assert back.to_json() == a.to_json() and back.hash == a.hash
    # the default-size instance admits a feasible point and its reference delay is O(1-100 s)
    sol = random_feasible_point(v, a, np.random.default_rng(0))
    ev = evaluate(v, a, sol)
    assert ev.feasible, ev.violations
    assert 0.05 < ev.objective < 500


def test_uplink_external_removes_exactly_the_upload_terms():
    """upload = 'external' (used with compression) drops s/r from delay and p·s/r from energy, nothing
    else; the defaults of the core variants are untouched."""
    assert load_variant("default").block("uplink").p["upload"] == "tokens"
    assert load_variant("hardware-2024").block("uplink").p["upload"] == "activations"
    v = load_variant("hardware-2024")
    w = load_variant("hardware-2024", overrides={"blocks": {"uplink": {"upload": "external"}}})
    inst_v, inst_w = generate(v, 4, 2, seed=9), generate(w, 4, 2, seed=9)
    assert inst_v.topology["gain"].tolist() == inst_w.topology["gain"].tolist()
    from conftest import random_feasible_point as core_point

    sol = core_point(v, inst_v, np.random.default_rng(2))
    ev_v, ev_w = evaluate(v, inst_v, sol), evaluate(w, inst_w, sol)
    up = inst_v.block("uplink")
    n = np.arange(4)
    a = up["snr_per_W_MHz"][n, sol["server"]]
    b, p = np.asarray(sol["b_MHz"]), np.asarray(sol["p_W"])
    t = up["upload_Mbit"] / (b * np.log2(1 + a * p / b))
    assert np.allclose(np.asarray(ev_v.per_user["delay_s"]) - ev_w.per_user["delay_s"], t, rtol=1e-10)
    assert np.allclose(np.asarray(ev_v.per_user["energy_J"]) - ev_w.per_user["energy_J"], p * t, rtol=1e-10)
    assert "delay_s.uplink" not in ev_w.metrics and ev_w.violations.keys() == ev_v.violations.keys()


# --- Pyomo == evaluator --------------------------------------------------------------------------
CASES = [(name, seed, n, m) for name in sorted(SIZES) for seed, n, m in
         [(0, 1, 1), (1, 3, 1), (2, 5, 2), (3, 7, 3), (4, 4, 4), (5, 9, 2)]
         if not (name == "sft-2025" and m > 1)] + [("sft-2025", 6, 12, 1), ("sft-2025", 7, 2, 1)]


@pytest.mark.parametrize("name,seed,n,m", CASES)
def test_pyomo_objective_equals_evaluator(name, seed, n, m):
    v = load_variant(name)
    inst = generate(v, n, m, seed)
    model = build_model(v, inst)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        sol = random_feasible_point(v, inst, rng)
        ev = evaluate(v, inst, sol)
        assert ev.feasible, ev.violations
        load_solution(model, v, inst, sol)
        assert model_objective(model) == pytest.approx(ev.objective, rel=1e-9)
        # per-user delays agree too (not only their max)
        assert [pyo.value(model.delay_user[i]) for i in model.U] == pytest.approx(
            evaluate(v, inst, sol).per_user["delay_s"], rel=1e-9)
        assert violated_components(model) == set()
        back = extract_solution(model, v, inst)
        for k, vals in sol.items():
            assert np.allclose(back[k], vals, rtol=1e-12)


@pytest.mark.parametrize("name,over", [
    ("sft-2025", {"compression": {"accuracy": "none"}}),
    ("sft-2025", {"uplink": {"delay": False}}),              # compression then adds energy only
    ("splitllm-2025", {"llm": {"split": "continuous"}, "tier_memory": {"cloud_lora": "shared"}}),
])
def test_options_keep_pyomo_and_evaluator_equal(name, over):
    v = load_variant(name, overrides={"blocks": over})
    inst = generate(v, 5, 1 if name == "sft-2025" else 2, seed=8)
    model = build_model(v, inst)
    rng = np.random.default_rng(8)
    for _ in range(3):
        sol = random_feasible_point(v, inst, rng)
        if v.block("llm").p["split"] == "continuous":
            sol["alpha"] = [a - 0.25 if a > 1.25 else a for a in sol["alpha"]]   # fractional cut, still feasible
        ev = evaluate(v, inst, sol)
        assert ev.feasible, ev.violations
        load_solution(model, v, inst, sol)
        assert model_objective(model) == pytest.approx(ev.objective, rel=1e-9)
        assert violated_components(model) == set()
    assert hasattr(model, "distortion_budget") == (name == "sft-2025" and "compression" not in over)


# --- each new constraint flagged ------------------------------------------------------------------
def _violate(v, inst, sol, what):
    s = {k: list(x) for k, x in sol.items()}
    Y = int(inst.block("llm")["layers"])
    if what == "device_memory":
        mem = inst.block("memory")
        s["alpha"][0] = float(np.floor((mem["M_max_GB"][0] - mem["base_GB"][0]) / mem["block_GB"][0]) + 1)
        if "beta" in s:
            s["beta"][0] = max(s["beta"][0], s["alpha"][0] + 1)
    elif what == "server_layers_min":
        s["alpha"][0] = float(Y)
    elif what == "rho_min":
        s["rho"][0] = v.block("compression").p["rho_min"] * 0.5
    elif what == "rho_max":
        s["rho"][0] = (v.block("compression").p["rho_max"] + 1.0) / 2  # still < 1: log(1 − ρ) defined
    elif what == "distortion_budget":
        s["rho"] = [v.block("compression").p["rho_min"]] * inst.N
    elif what == "edge_memory":
        s["alpha"][0], s["beta"][0] = 1.0, float(Y - 1)  # 30 layers ≈ 26 GB on one edge
    elif what == "cloud_memory":
        s["alpha"][0], s["beta"][0] = 1.0, 2.0           # 30 cloud layers × 4 streams ≈ 67 GB
    elif what == "beta_bounds":
        s["beta"][0] = float(Y)
    elif what == "beta_integer":
        s["beta"][0] += 0.5
    elif what == "edge_layers_min":
        s["beta"][0] = s["alpha"][0]
    elif what == "cloud_freq_budget":
        s["fc_GHz"] = [x * 2.5 for x in s["fc_GHz"]]
    elif what == "fc_max":
        s["fc_GHz"][0] = v.block("cloud").slot_GHz(inst) * 1.5
    elif what == "fc_min":
        s["fc_GHz"][0] = v.block("cloud").p["fc_min_GHz"] * 0.5
    return s


# (variant, violation name, Pyomo component expected to be violated)
FLAGS = [("sft-2025", "device_memory", "device_memory"), ("sft-2025", "server_layers_min", "alpha.bounds"),
         ("sft-2025", "rho_min", "rho.bounds"), ("sft-2025", "rho_max", "rho.bounds"),
         ("sft-2025", "distortion_budget", "distortion_budget"),
         ("splitllm-2025", "device_memory", "device_memory"), ("splitllm-2025", "edge_memory", "edge_memory"),
         ("splitllm-2025", "cloud_memory", "cloud_memory"), ("splitllm-2025", "beta_bounds", "beta.bounds"),
         ("splitllm-2025", "beta_integer", None), ("splitllm-2025", "edge_layers_min", "edge_layers"),
         ("splitllm-2025", "cloud_freq_budget", "cloud_freq_budget"), ("splitllm-2025", "fc_max", "fc.bounds"),
         ("splitllm-2025", "fc_min", "fc.bounds")]


@pytest.mark.parametrize("name,what,component", FLAGS)
def test_each_new_constraint_is_flagged(name, what, component):
    v = load_variant(name)
    if what == "edge_memory":  # make the edge cap bind for user 0 at 30 edge layers
        v = load_variant(name, overrides={"blocks": {"tier_memory": {"edge_M_max_GB": 16.0}}})
    inst = generate(v, 6, 1 if name == "sft-2025" else 4, seed=3)  # E = 4 cloud streams
    sol = random_feasible_point(v, inst, np.random.default_rng(1))
    assert evaluate(v, inst, sol).feasible
    bad = _violate(v, inst, sol, what)
    ev = evaluate(v, inst, bad)
    assert not ev.feasible and ev.violations[what] > 1e-6, ev.violations
    if component is not None:
        model = build_model(v, inst)
        load_solution(model, v, inst, bad)
        assert component in violated_components(model)


# --- numbers from the spec -------------------------------------------------------------------------
def test_memory_profile_matches_spec_table():
    """variant-models §1.1 table: ViT-B/16 (s=197, B=32) M_act ≈ 228 MB, P_blk ≈ 7.1 M; LLaMA-7B-like
    P_blk ≈ 201 M. The table's MB are MiB (2^20 bytes)."""
    sft = generate(load_variant("sft-2025"), 2, 1, seed=0).block("memory")
    assert sft["act_block_GB"][0] * 1e9 / 2**20 == pytest.approx(228, rel=0.01)
    assert sft["frozen_block_GB"] * 1e9 / 2 == pytest.approx(7.08e6, rel=0.01)
    llama = generate(load_variant("splitllm-2025"), 2, 1, seed=0).block("memory")
    assert llama["frozen_block_GB"] * 1e9 / 2 == pytest.approx(201e6, rel=0.01)
    # device cap = floor((M_max − base)/block), a linear bound on α
    inst = generate(load_variant("sft-2025"), 5, 1, seed=2)
    from mecsplit.blocks.memory import Memory
    m = inst.block("memory")
    assert np.all(m["base_GB"] + Memory.alpha_cap(inst) * m["block_GB"] <= m["M_max_GB"])
    assert np.all(m["base_GB"] + (Memory.alpha_cap(inst) + 1) * m["block_GB"] > m["M_max_GB"])


def test_peak_memory_report_is_bounded_by_the_caps():
    """peak_memory_GB (reporting) vs the constraints: at feasible points every tier's peak is within its
    cap (the cloud constraint is the conservative per-user form of the reported peak); 1-user hand check."""
    from mecsplit.blocks.memory import peak_memory_GB

    v = load_variant("splitllm-2025")
    inst = generate(v, 12, 4, seed=2)
    rng = np.random.default_rng(3)
    mem, tm = inst.block("memory"), inst.block("tier_memory")
    for _ in range(20):
        sol = random_feasible_point(v, inst, rng)
        assert evaluate(v, inst, sol).feasible
        pk = peak_memory_GB(inst, sol)
        assert pk["device"] <= mem["M_max_GB"].max() + 1e-9
        assert pk["edge"] <= tm["edge_M_max_GB"].max() + 1e-9
        assert pk["cloud"] <= tm["cloud_M_max_GB"] + 1e-9
        assert pk["overall"] == max(pk["device"], pk["edge"], pk["cloud"])
    one = generate(v, 1, 4, seed=2)
    m1 = one.block("memory")
    pk = peak_memory_GB(one, {"server": [2], "alpha": [3.0], "beta": [20.0]})
    assert pk["device"] == pytest.approx(m1["base_GB"][0] + 3 * m1["block_GB"][0], rel=1e-12)
    assert pk["edge"] == pytest.approx(17 * m1["block_GB"][0] + 4 * m1["cut_GB"][0], rel=1e-12)
    assert pk["cloud"] == pytest.approx(12 * (m1["frozen_block_GB"] + m1["lora_block_GB"] + m1["act_block_GB"][0])
                                        + 2 * m1["cut_GB"][0] + m1["head_GB"], rel=1e-12)


def test_compressed_size_matches_spec_sanity_check():
    """§2.3: b = 4, ρ = 0.3 → γ = S/(32 D) ≈ 6.5 %; ρ = 0.1 → 2.7 % (fp32 reference size)."""
    v = load_variant("sft-2025")
    inst = generate(v, 2, 1, seed=0)
    cp = v.block("compression")
    D = inst.block("compression")["elements"][0]
    assert D == 32 * 197 * 768
    gamma = lambda r: cp.size_Mbit(inst, np.array([r, r]))[0] * 1e6 / (32 * D)
    assert gamma(0.3) == pytest.approx(0.065, abs=5e-4)
    assert gamma(0.1) == pytest.approx(0.027, abs=5e-4)
    # hand-computed uplink delay for user 0 at a given point
    sol = random_feasible_point(v, inst, np.random.default_rng(4))
    up = inst.block("uplink")
    r = sol["b_MHz"][0] * math.log2(1 + up["snr_per_W_MHz"][0, 0] * sol["p_W"][0] / sol["b_MHz"][0])
    rho = sol["rho"][0]
    h2 = -(rho * math.log2(rho) + (1 - rho) * math.log2(1 - rho))
    S = (D * (rho * 4 + h2) + 64) / 1e6
    ev = evaluate(v, inst, sol)
    t_user = sol["alpha"][0] * inst.block("llm")["psi_TFLOP"][0] * 1e3 / (
        inst.block("user_compute")["cores"][0] * 2.0 * sol["f_GHz"][0])
    t_edge = (12 - sol["alpha"][0]) * inst.block("llm")["psi_TFLOP"][0] * 1e3 / (6912 * 10.0 * sol["fe_GHz"][0])
    assert ev.per_user["delay_s"][0] == pytest.approx(t_user + S / r + t_edge, rel=1e-12)


def test_bad_combinations_are_one_line_errors():
    with pytest.raises(InputError, match="upload"):
        generate(load_variant("sft-2025", overrides={"blocks": {"uplink": {"upload": "activations"}}}), 2, 1, 0)
    with pytest.raises(InputError, match="edge_compute"):
        generate(load_variant("splitllm-2025", overrides={"blocks": {"edge_compute": {"enabled": True}}}), 2, 1, 0)
    with pytest.raises(InputError, match="distortion_max"):
        generate(load_variant("sft-2025", overrides={"blocks": {"compression": {"distortion_max": 0.0}}}), 2, 1, 0)
    with pytest.raises(InputError, match="needs block.*edge_tier"):
        load_variant("splitllm-2025", overrides={"blocks": {"edge_tier": {"enabled": False}}})


# --- tiny instances: enumeration + continuous NLP -----------------------------------------------
INTEGER_ONLY = ("device_memory", "edge_memory", "cloud_memory", "server_layers_min", "beta_bounds", "edge_layers_min",
                "alpha_bounds")


def _enumerate(v, inst):
    """Every association/α/β combination that meets the integer-only constraints, each solved for the
    continuous variables with Ipopt; returns (best objective, best solution, number solved)."""
    from mecsplit.ipopt import solve_nlp

    N, M, Y = inst.N, inst.M, int(inst.block("llm")["layers"])
    ref = {k: np.asarray(x, float).tolist() for k, x in inst.reference_solution().items()}
    two_cuts = v.has_block("edge_tier")
    per_user = [(a, b) for a in range(1, Y) for b in (range(a + 1, Y) if two_cuts else [None])]
    model = build_model(v, inst)
    best, best_sol, solved = math.inf, None, 0
    for servers in itertools.product(range(M), repeat=N):
        for cuts in itertools.product(per_user, repeat=N):
            sol = dict(ref, server=list(servers), alpha=[float(c[0]) for c in cuts])
            if two_cuts:
                sol["beta"] = [float(c[1]) for c in cuts]
                for key in ("fe_GHz", "b_MHz", "fc_GHz"):  # equal shares on the chosen servers: a feasible start
                    cnt = np.bincount(servers, minlength=M)[list(servers)]
                    tot = {"fe_GHz": inst.block("edge_tier")["F_max_GHz"], "b_MHz": inst.block("uplink")["b_max_MHz"],
                           "fc_GHz": np.full(M, v.block("cloud").slot_GHz(inst))}[key]
                    sol[key] = (np.asarray(tot)[list(servers)] / cnt).tolist()
            ev0 = evaluate(v, inst, sol)
            if any(ev0.violations.get(k, 0) > 1e-9 for k in INTEGER_ONLY):
                continue
            fix = ("server", "alpha", "beta") if two_cuts else ("server", "alpha")
            for var in model.component_data_objects(pyo.Var):
                var.unfix()
            load_solution(model, v, inst, sol, fix=fix)
            model_objective(model)
            res = solve_nlp(model)
            assert res.status == "optimal", res
            solved += 1
            out = extract_solution(model, v, inst)
            ev = evaluate(v, inst, out)
            assert ev.feasible, ev.violations
            assert ev.objective == pytest.approx(res.objective, rel=1e-6)
            if ev.objective < best:
                best, best_sol = ev.objective, out
    return best, best_sol, solved


def _slsqp_check(v, inst, sol, cont):
    """Re-solve the continuous part at sol's integers with scipy SLSQP on the evaluator's functions."""
    from scipy.optimize import minimize

    N = inst.N
    sizes = [N] * len(cont)
    x0 = np.concatenate([np.asarray(sol[k], float) for k in cont])
    lo, hi = _cont_bounds(v, inst, sol, cont)
    x0 = np.clip(x0 * 0.8 + 0.2 * (lo + hi) / 2, lo, hi)  # start away from the Ipopt point

    def unpack(x):
        s = dict(sol)
        i = 0
        for k, n in zip(cont, sizes):
            s[k] = x[i:i + n].tolist()
            i += n
        return s

    def ev(x):
        return evaluate(v, inst, unpack(x))

    scale = np.maximum(np.abs(hi), 1e-3)
    cons = [{"type": "ineq", "fun": lambda z: z[-1] - np.asarray(ev(z[:-1] * scale).per_user["delay_s"])}]
    for c in _budget_constraints(v, inst, sol, cont):
        cons.append({"type": "ineq", "fun": (lambda c: lambda z: c(unpack(z[:-1] * scale)))(c)})
    z0 = np.append(x0 / scale, max(ev(x0).per_user["delay_s"]) * 1.1)
    res = minimize(lambda z: z[-1], z0, method="SLSQP", bounds=list(zip(lo / scale, hi / scale)) + [(0, None)],
                   constraints=cons, options={"maxiter": 500, "ftol": 1e-12})
    return evaluate(v, inst, unpack(res.x[:-1] * scale))


def _cont_bounds(v, inst, sol, cont):
    s = np.asarray(sol["server"], int)
    uc, up = inst.block("user_compute"), inst.block("uplink")
    ec = inst.block("edge_tier" if v.has_block("edge_tier") else "edge_compute")
    b = {"f_GHz": (np.full(inst.N, uc["f_min_GHz"]), uc["f_max_GHz"]),
         "fe_GHz": (np.full(inst.N, ec["fe_min_GHz"]), ec["F_max_GHz"][s]),
         "p_W": (np.full(inst.N, 1e-4), up["p_max_W"]),
         "b_MHz": (np.full(inst.N, up["b_min_MHz"]), up["b_max_MHz"][s])}
    if v.has_block("compression"):
        cp = v.block("compression")
        b["rho"] = (np.full(inst.N, cp.p["rho_min"]), np.full(inst.N, cp.p["rho_max"]))
    if v.has_block("cloud"):
        cl = v.block("cloud")
        b["fc_GHz"] = (np.full(inst.N, cl.p["fc_min_GHz"]), np.full(inst.N, cl.slot_GHz(inst)))
    return (np.concatenate([np.asarray(b[k][0], float) for k in cont]),
            np.concatenate([np.asarray(b[k][1], float) for k in cont]))


def _budget_constraints(v, inst, sol, cont):
    s = np.asarray(sol["server"], int)
    M = inst.M
    ec = inst.block("edge_tier" if v.has_block("edge_tier") else "edge_compute")
    out = [lambda q: inst.block("uplink")["b_max_MHz"] - np.bincount(s, weights=q["b_MHz"], minlength=M),
           lambda q: ec["F_max_GHz"] - np.bincount(s, weights=q["fe_GHz"], minlength=M)]
    if v.has_block("compression"):
        cp = v.block("compression")
        out.append(lambda q: cp.p["distortion_max"] - np.mean((1 - np.asarray(q["rho"])) + cp.eps_coef() * np.asarray(q["rho"])))
    if v.has_block("cloud"):
        slot = v.block("cloud").slot_GHz(inst)
        out.append(lambda q: slot - np.bincount(s, weights=q["fc_GHz"], minlength=M))
    return out


def test_tiny_sft_solved_by_enumeration_and_ipopt():
    pytest.importorskip("cyipopt")
    # 2 users, 4 blocks (α ≤ 3); a 0.6 GB device memory (≈ 0.021 + 2 × 0.254 GB) allows α ≤ 2: 2² combinations
    v = load_variant("sft-2025", overrides={"blocks": {"llm": {"layers": 4}, "memory": {"M_max_GB": 0.6}}})
    inst = generate(v, 2, 1, seed=3)
    best, sol, solved = _enumerate(v, inst)
    assert solved == 4
    ev = evaluate(v, inst, sol)
    assert ev.feasible and ev.objective == pytest.approx(best, rel=1e-12)
    assert max(sol["alpha"]) <= 2
    # pure delay objective: transmit power and device GPU clock at their maxima
    assert np.allclose(sol["p_W"], inst.block("uplink")["p_max_W"], rtol=1e-5)
    assert np.allclose(sol["f_GHz"], inst.block("user_compute")["f_max_GHz"], rtol=1e-5)
    # min-max: both users finish together; (A1) active
    d = ev.per_user["delay_s"]
    assert d[0] == pytest.approx(d[1], rel=1e-5)
    assert ev.violations["distortion_budget"] == 0.0
    # an independent continuous solve (SLSQP on the evaluator) at the same integers agrees
    alt = _slsqp_check(v, inst, sol, ["f_GHz", "fe_GHz", "p_W", "b_MHz", "rho"])
    assert alt.feasible or alt.max_violation < 1e-5
    assert alt.objective == pytest.approx(ev.objective, rel=1e-4)


def test_tiny_splitllm_solved_by_enumeration_and_ipopt():
    pytest.importorskip("cyipopt")
    # 2 users, 2 edges, 4 layers: 4 associations × 3² cut pairs = 36 mixed-integer combinations
    v = load_variant("splitllm-2025", overrides={"blocks": {"llm": {"layers": 4}}})
    inst = generate(v, 2, 2, seed=4)
    best, sol, solved = _enumerate(v, inst)
    assert solved == 36
    ev = evaluate(v, inst, sol)
    assert ev.feasible and ev.objective == pytest.approx(best, rel=1e-12)
    # brute force over the same grid is the optimum: no sampled feasible point does better
    rng = np.random.default_rng(0)
    for _ in range(200):
        pt = random_feasible_point(v, inst, rng)
        assert evaluate(v, inst, pt).objective >= best * (1 - 1e-9)
    alt = _slsqp_check(v, inst, sol, ["f_GHz", "fe_GHz", "p_W", "b_MHz", "fc_GHz"])
    assert alt.feasible or alt.max_violation < 1e-5
    assert alt.objective == pytest.approx(ev.objective, rel=1e-4)
