"""Peak memory as a metric and an objective (issue 18): the memory profile against independent hand counts
from published model configs, the per-scheme peaks against hand formulas, the peak-memory objective's Pyomo
epigraph against the evaluator, and bad input. Core only (no plugin needed)."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest

from mecsplit.blocks.memory import peak_memory_GB, user_memory_GB
from mecsplit.errors import InputError
from mecsplit.evaluate import evaluate
from mecsplit.instance import generate
from mecsplit.model import build_model, load_solution
from mecsplit.variant import load_variant

SCHEMES = ("splitllm-2025", "splitllm-sl-2025", "splitllm-sfl-2025", "splitllm-device-2025", "splitllm-cloud-2025")


# --- the memory profile against independent counts ----------------------------------------------------
def _korthikanti_bytes(s, b, h, a):
    """Activation bytes of one transformer layer, counted tensor by tensor (fp16, no recomputation;
    Korthikanti et al. 2022 §4.1) — written out here, independently of blocks/memory.py's closed form."""
    attention = (2 * s * b * h      # input of the QKV projection
                 + 4 * s * b * h    # Q and K (for QKᵀ)
                 + 2 * a * s * s * b  # softmax output
                 + a * s * s * b    # softmax dropout mask (1 byte)
                 + 2 * a * s * s * b  # dropout output (for the product with V)
                 + 2 * s * b * h    # V
                 + 2 * s * b * h    # input of the output projection
                 + s * b * h)       # its dropout mask
    mlp = 2 * s * b * h + 8 * s * b * h + 8 * s * b * h + s * b * h   # in, GeLU in (4h), 2nd linear in (4h), mask
    norms = 2 * 2 * s * b * h
    return attention + mlp + norms


def test_gpt2_profile_matches_a_hand_count_of_its_published_config():
    """GPT-2 small (HF config: n_layer 12, n_embd 768, n_head 12, n_inner 4·768, vocab 50257, n_positions 1024,
    tied LM head): 124,439,808 parameters, counted matrix by matrix here."""
    h, L, a, V, P, s, B = 768, 12, 12, 50257, 1024, 1024, 2
    per_block = ((h * 3 * h + 3 * h) + (h * h + h)          # attention: c_attn, c_proj (with biases)
                 + (h * 4 * h + 4 * h) + (4 * h * h + h)      # MLP: c_fc, c_proj
                 + 2 * 2 * h)                                 # ln_1, ln_2 (weight, bias)
    total = V * h + P * h + L * per_block + 2 * h             # wte, wpe, blocks, ln_f
    assert total == 124_439_808                               # the published GPT-2 small size
    v = load_variant("splitllm-2025", overrides={"blocks": {
        "llm": {"layers": L, "hidden": h, "tokens": s, "batch": B},
        "memory": {"ffn_hidden": 4 * h, "ffn_matrices": 2, "heads": a, "embedding_Mparam": (V * h + P * h) / 1e6,
                   "head_Mparam": 0.0, "lora_rank": 8, "lora_targets": "qv"}}})
    mem = generate(v, 2, 1, seed=0).block("memory")
    # the model's weight matrices (biases and norms, 0.14 % of a block, are left out on purpose)
    assert mem["frozen_block_GB"] * 1e9 / 2 == pytest.approx(per_block, rel=2e-3)
    emb_GB = 2 * (V * h + P * h) / 1e9
    assert (emb_GB + L * mem["frozen_block_GB"]) * 1e9 / 2 == pytest.approx(total, rel=2e-3)
    assert mem["act_block_GB"][0] * 1e9 == pytest.approx(_korthikanti_bytes(s, B, h, a), rel=1e-12)
    assert mem["lora_block_GB"] * 1e9 == pytest.approx((2 * 2 + 8) * 2 * (h * 8 + 8 * h), rel=1e-12)  # q, v: A and B
    assert mem["cut_GB"][0] * 1e9 == pytest.approx(2 * B * s * h, rel=1e-12)


def test_llama2_7b_profile_matches_a_hand_count_of_its_published_config():
    """LLaMA-2-7B (HF config: hidden 4096, intermediate 11008, 32 layers, 32 heads, vocab 32000, untied head):
    6,738,415,616 parameters; splitllm-2025's profile."""
    h, f, L, V = 4096, 11008, 32, 32000
    per_block = 4 * h * h + 3 * h * f + 2 * h                  # q k v o, gate up down, two RMSNorms
    total = V * h + L * per_block + h + V * h                 # embedding, blocks, final norm, lm_head
    assert total == 6_738_415_616
    inst = generate(load_variant("splitllm-2025"), 2, 1, seed=0)
    mem = inst.block("memory")
    assert mem["frozen_block_GB"] * 1e9 / 2 == pytest.approx(per_block, rel=1e-4)
    whole = (2 * 131e6 + L * mem["frozen_block_GB"] * 1e9 / 2)   # embedding_Mparam + head_Mparam + blocks
    assert whole == pytest.approx(total, rel=1e-3)


# --- the peak per scheme against hand formulas ---------------------------------------------------------
def test_peaks_of_every_scheme_match_hand_formulas():
    insts = {name: generate(load_variant(name), 3, 2, seed=5) for name in SCHEMES}
    mem = insts["splitllm-2025"].block("memory")
    blk, cut, head, fro, lora, act = (mem[k] for k in ("block_GB", "cut_GB", "head_GB", "frozen_block_GB",
                                                         "lora_block_GB", "act_block_GB"))
    emb = 2 * 131e6 / 1e9
    server, alpha, beta = np.array([0, 0, 1]), np.array([2.0, 3.0, 1.0]), np.array([20.0, 12.0, 30.0])
    pk = peak_memory_GB(insts["splitllm-2025"], {"server": server, "alpha": alpha, "beta": beta})
    assert pk["device"] == pytest.approx(emb + 2 * cut[1] + 3 * blk[1], rel=1e-12)
    assert pk["edge"] == pytest.approx(29 * blk[2] + 4 * cut[2], rel=1e-12)
    # cloud: frozen weights of the deepest span (Υ − 12 = 20) once; per edge its deepest stream (E = 2 streams)
    assert pk["cloud"] == pytest.approx(20 * fro + 20 * (lora + act[1]) + 2 * cut[1] + 2 * (lora + act[2]) + 2 * cut[2] + head,
                                        rel=1e-12)
    assert pk["overall"] == max(pk["device"], pk["edge"], pk["cloud"])
    Y = np.full(3, 32.0)
    sl = peak_memory_GB(insts["splitllm-sl-2025"], {"server": server, "alpha": alpha, "beta": Y})
    assert sl["edge"] == pytest.approx(31 * blk[2] + 2 * cut[2] + head, rel=1e-12) and sl["cloud"] == 0
    sfl = peak_memory_GB(insts["splitllm-sfl-2025"], {"server": server, "alpha": alpha, "beta": Y})
    assert sfl["edge"] == pytest.approx(max(30 * blk[0] + 29 * blk[1] + 2 * cut[0] + 2 * cut[1] + 2 * head,
                                            31 * blk[2] + 2 * cut[2] + head), rel=1e-12)
    dev = peak_memory_GB(insts["splitllm-device-2025"], {"alpha": Y})
    assert dev == {"device": pytest.approx(emb + 32 * blk[0] + head, rel=1e-12), "edge": 0.0, "cloud": 0.0,
                   "overall": pytest.approx(emb + 32 * blk[0] + head, rel=1e-12)}
    cc = peak_memory_GB(insts["splitllm-cloud-2025"], {"server": server, "alpha": 0 * Y, "beta": 0 * Y})
    assert cc["device"] == 0 and cc["edge"] == 0
    assert cc["cloud"] == pytest.approx(32 * fro + 2 * 32 * (lora + act[0]) + head + emb, rel=1e-12)


def test_metrics_carry_the_peaks_and_baselines_share_the_draws():
    """Every evaluation of a variant with a memory block reports peak_memory_GB.{device,edge,cloud,overall};
    the baseline variants draw the same users, channels and hardware as splitllm-2025 for a seed."""
    base = generate(load_variant("splitllm-2025"), 6, 2, seed=3)
    for name in SCHEMES:
        inst = generate(load_variant(name), 6, 2, seed=3)
        np.testing.assert_array_equal(inst.topology["gain"], base.topology["gain"])
        for b in inst.variant.blocks:
            if base.has_block(b.name):
                for k, arr in inst.data[b.name].items():
                    np.testing.assert_array_equal(arr, base.data[b.name][k], err_msg=f"{name}: {b.name}.{k}")
        ev = evaluate(inst.variant, inst, inst.reference_solution())
        pk = peak_memory_GB(inst, inst.reference_solution())
        assert {f"peak_memory_GB.{k}": v for k, v in pk.items()}.items() <= ev.metrics.items()
    assert "peak_memory_GB.overall" not in evaluate(load_variant("default"), generate(load_variant("default"), 2, 1, seed=0),
                                                    generate(load_variant("default"), 2, 1, seed=0).reference_solution()).metrics


# --- the objective -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SCHEMES)
@pytest.mark.parametrize("objective", [{"kind": "peak_memory"},
                                       {"kind": "weighted_sum", "weights": {"delay": 1, "energy": 0.5, "stability": 0, "peak_memory": 2}}])
def test_peak_memory_objective_pyomo_equals_evaluator(name, objective):
    from test_variants_sft_splitllm import random_feasible_point

    v = load_variant(name, overrides={"objective": objective})
    inst = generate(v, 7, 3, seed=4)
    rng = np.random.default_rng(0)
    ref = {k: np.asarray(x) for k, x in inst.reference_solution().items()}
    for k in range(4):
        if name == "splitllm-2025":
            sol = random_feasible_point(v, inst, rng)
        else:   # the reference with random cuts where the scheme has any
            sol = dict(ref)
            if name in ("splitllm-sl-2025", "splitllm-sfl-2025"):
                sol["server"] = rng.integers(0, inst.M, inst.N)
                sol["alpha"] = rng.integers(1, 6, inst.N).astype(float)
        ev = evaluate(v, inst, sol)
        m = build_model(v, inst)
        load_solution(m, v, inst, sol)
        assert pyo.value(m.obj) == pytest.approx(ev.objective, rel=1e-12)
        for c in m.component_data_objects(pyo.Constraint, active=True):   # the epigraph point is feasible
            if c.name.startswith(("peak_", "cloud_span", "cloud_worst")):
                assert pyo.value(c.body) <= c.upper + 1e-9, c.name
    # π below the evaluator's peak violates an epigraph row: the form is tight, not only valid
    m.peak_memory_GB.set_value(peak_memory_GB(inst, {k: np.asarray(x) for k, x in sol.items()})["overall"] * (1 - 1e-6))
    assert any(pyo.value(c.body) > c.upper + 1e-12 for c in m.component_data_objects(pyo.Constraint, active=True)
               if c.name.startswith("peak_"))


def test_user_memory_is_published_per_user_and_tier():
    inst = generate(load_variant("splitllm-2025"), 4, 2, seed=1)
    sol = {"server": np.array([0, 1, 1, 0]), "alpha": np.array([1.0, 2, 3, 4]), "beta": np.array([10.0, 11, 12, 13])}
    use = user_memory_GB(inst, sol)
    assert set(use) == {"device", "edge", "cloud"} and all(u.shape == (4,) for u in use.values())
    assert np.all(np.diff(use["device"]) > 0) and np.all(np.diff(use["cloud"]) < 0)


def test_bad_input_one_line():
    with pytest.raises(InputError, match="peak memory needs the memory profile"):
        load_variant("default", overrides={"objective": {"kind": "peak_memory"}})
    with pytest.raises(InputError, match="objective.weights.peak_memory"):
        load_variant("default", overrides={"objective": {"weights": {"peak_memory": 1}}})
    v = load_variant("splitllm-2025", overrides={"blocks": {"pinned_split": {"at": "cloud"}}})
    with pytest.raises(InputError, match="alpha_min = 0"):
        generate(v, 2, 1, seed=0)
    v = load_variant("splitllm-2025", overrides={"blocks": {"pinned_split": {"at": "device"}}})
    with pytest.raises(InputError, match="'device' with a server tier"):
        generate(v, 2, 1, seed=0)
