"""Memory caps of split fine-tuning (variant-models §1.1 [STD], §2.3 SFT device memory, §3.3 SplitLLM
per-tier memory). All memory in GB = 1e9 bytes.

Per transformer block, for user n (tokens s_n, batch B, hidden h, heads a, FFN width h_ff):

* frozen weights  P_blk = 4h² + k_ff·h·h_ff parameters (k_ff = 2 for a GELU MLP, 3 for SwiGLU), q_w bytes each;
* LoRA parameters R = 4rh (targets q, v) or 8rh + 2r(h + h_ff) (all attention + MLP matrices), trained
  with weights, gradients and two fp32 Adam moments: (2q_w + 8)·R bytes;
* activations M_act,n = (q_a/2)·B·s_n·h·(34 + 5·a·s_n/h) bytes (Korthikanti et al. 2022, fp16 without
  recomputation; scaled by q_a/2 for other activation widths [I]);
* cut tensor D_n = B·s_n·h elements, q_a bytes each (the activation sent uplink; its gradient comes back).

``memory_scheme`` (baseline schemes): concurrency at the edge and which caps are constraints.
``memory`` (device tier, SFT §2.3):  q_w·P_emb + 2·q_a·D_n + l_n·M_blk,n ≤ M^max_n   — linear in l_n = α_n.
``tier_memory`` (SplitLLM §3.3): the edge holds layers α_n..β_n of one active user stream, the cloud
layers β_n..Υ for E concurrent edge streams.

The memory each user occupies on each tier (:func:`user_memory_GB`) and the peak of every tier
(:func:`peak_memory_GB`, the metric SplitLLM reports) are computed here, once: the evaluator's metrics,
the ``peak_memory`` objective (numpy and its Pyomo epigraph :func:`peak_memory_epigraph`) and the
solvers all read them.
"""

from __future__ import annotations

import numpy as np

from ..lazy import lazy_module
from .base import Block, Param, quantity
from .tier import pinned_at

pyo = lazy_module("pyomo.environ")  # imported on first use: listing variants needs no Pyomo

GB = 1e9


class Memory(Block):
    name = "memory"
    requires = ("llm",)
    doc = ("Device memory cap (SFT, variant-models §2.3 [V] existence, [I] form): "
           "base_n + α_n·block_n ≤ M^max_n with base_n = q_w·P_emb + 2·q_a·D_n (embedding weights, cut "
           "activation + its gradient) and block_n = q_w·P_blk + (2q_w+8)·R + M_act,n (§1.1), all in GB. "
           "Also the memory profile that 'tier_memory' reuses.")
    params = (
        Param("M_max_GB", "GB", {"dist": "uniform", "low": 2.0, "high": 8.0},
              "M^max_n, device memory available for fine-tuning (variant-models §2.5 [I]: 2-8 GB)",
              per="user", min=1e-6, max=1e6),
        Param("ffn_hidden", "1", 3072, "h_ff, FFN width (4h = 3072 for ViT-B/GPT-2; 11008 for LLaMA-7B)", min=1, max=1e7, integer=True),
        Param("ffn_matrices", "1", 2, "k_ff, FFN weight matrices (2 GELU MLP, 3 SwiGLU)", min=1, max=3, integer=True),
        Param("heads", "1", 12, "a, attention heads (in the activation-memory term)", min=1, max=1e5, integer=True),
        Param("bytes_per_weight", "byte", 2, "q_w (2 = fp16 frozen weights)", min=0.125, max=8),
        Param("bytes_per_activation", "byte", 2, "q_a (2 = fp16 activations)", min=0.125, max=8),
        Param("lora_rank", "1", 8, "r, LoRA rank", min=0, max=1e5, integer=True),
        Param("lora_targets", "1", "qv", "adapted matrices: 'qv' (R = 4rh) or 'all' (R = 8rh + 2r(h+h_ff))", choices=("qv", "all")),
        Param("embedding_Mparam", "Mparam", 0.74, "P_emb, embedding parameters on the device (ViT-B/16 patch+position ≈ 0.74 M)", min=0, max=1e6),
        Param("head_Mparam", "Mparam", 0.077, "P_head, output-head parameters on the last tier (ViT-B → 100 classes ≈ 0.077 M)", min=0, max=1e6),
    )

    def derive(self, inst):
        llm = inst.block("llm")
        h, B = float(llm["hidden"]), float(llm["batch"])
        s = llm["tokens"].astype(float)
        hff, k, a = float(self.p["ffn_hidden"]), float(self.p["ffn_matrices"]), float(self.p["heads"])
        qw, qa, r = float(self.p["bytes_per_weight"]), float(self.p["bytes_per_activation"]), float(self.p["lora_rank"])
        P_blk = 4 * h**2 + k * h * hff
        R = 4 * r * h if self.p["lora_targets"] == "qv" else 8 * r * h + 2 * r * (h + hff)
        frozen = qw * P_blk / GB
        lora = (2 * qw + 8) * R / GB
        act = (qa / 2) * B * s * h * (34 + 5 * a * s / h) / GB
        cut = qa * B * s * h / GB
        head = qw * self.p["head_Mparam"] * 1e6 / GB
        # the device keeps the cut activation + its gradient when a server tier trains the rest, else the
        # head; in the cloud-centric baseline it keeps no model at all
        tail = 2 * cut if inst.has_block("edge_compute") or inst.has_block("edge_tier") else head + 0.0 * cut
        base = 0.0 * cut if pinned_at(inst) == "cloud" else qw * self.p["embedding_Mparam"] * 1e6 / GB + tail
        return {"frozen_block_GB": frozen, "lora_block_GB": lora, "act_block_GB": act,
                "block_GB": frozen + lora + act, "cut_GB": cut, "base_GB": base, "head_GB": head}

    def quantities(self):
        return (quantity("memory_GB", "GB", "device memory used: base + α·block (§2.3)"),)

    def alpha_bounds(self, inst):
        if not caps_enforced(inst, "device"):
            return None
        d = inst.block(self.name)   # base + α·block ≤ M^max is a bound on α (block > 0)
        return -np.inf, (d["M_max_GB"] - d["base_GB"]) / d["block_GB"]

    def build(self, m, inst, ledger):
        d = inst.block(self.name)
        base, blk, cap = d["base_GB"], d["block_GB"], d["M_max_GB"]
        m.device_memory_GB = pyo.Expression(m.U, rule=lambda m, n: float(base[n]) + float(blk[n]) * m.alpha[n])
        ledger.quantities["memory_GB"] = [m.device_memory_GB[n] for n in m.U]
        if caps_enforced(inst, "device"):
            m.device_memory = pyo.Constraint(m.U, rule=lambda m, n: m.device_memory_GB[n] <= float(cap[n]))

    def evaluate(self, sol, inst, ledger, viol):
        ledger.quantities["memory_GB"] = user_memory_GB(inst, sol)["device"]
        if caps_enforced(inst, "device"):
            viol.leq("device_memory", ledger.quantities["memory_GB"], inst.block(self.name)["M_max_GB"])
        use = ledger.quantities["memory_GB"] / inst.block(self.name)["M_max_GB"]   # device memory used against its cap
        ledger.metrics.update(device_memory_of_cap_max=float(np.max(use)), device_memory_of_cap_mean=float(np.mean(use)))

    @staticmethod
    def alpha_cap(inst) -> np.ndarray:
        """Largest α_n the device memory allows (may be < 1: the user cannot hold one block)."""
        d = inst.block("memory")
        return np.floor((d["M_max_GB"] - d["base_GB"]) / d["block_GB"] + 1e-12)


class TierMemory(Block):
    name = "tier_memory"
    requires = ("llm", "association", "memory", "edge_tier")
    doc = ("Per-tier memory caps of SplitLLM (variant-models §3.3 [I]), per user n on edge m(n), E = number "
           "of edge servers: edge (one active stream per edge) (β_n−α_n)·block_n + 4·cut_n ≤ M^edge_m; "
           "cloud (E concurrent streams, each assumed as deep as user n's — exact when all users share the "
           "profile) (Υ−β_n)·(frozen + c·lora + E·act_n) + E·2·cut_n + head ≤ M^cloud, c = E (one LoRA "
           "copy per stream) or 1 (shared cloud LoRA). Without the 'cloud' block (two-tier split learning) the "
           "edge trains through layer Υ and holds the head: (Υ−α_n)·block_n + 2·cut_n + head. "
           "memory_scheme.edge_streams = 'per_user' (split federated learning): all users of an edge train at once, each "
           "with its own server-side model: Σ_{n∈m} stream_n ≤ M^edge_m.")
    params = (
        Param("edge_M_max_GB", "GB", {"dist": "uniform", "low": 16.0, "high": 24.0},
              "M^max_e, edge GPU memory for the active stream (T4 16 GB .. A10 24 GB [I])", per="server", min=1e-6, max=1e6),
        Param("cloud_M_max_GB", "GB", 80.0, "M^max_c, cloud GPU memory (A100-80GB [I])", min=1e-6, max=1e7),
        Param("cloud_lora", "1", "per_stream", "cloud LoRA copies: 'per_stream' (σ_c = 1, one per edge stream, "
              "aggregated at round end) or 'shared' (one copy; only activations scale with E)", choices=("per_stream", "shared")),
    )

    def quantities(self):
        return (quantity("edge_memory_GB", "GB", "edge memory of the user's stream (β−α)·block + 4·cut"),
                quantity("cloud_memory_GB", "GB", "cloud memory if every stream were as deep as the user's (§3.3)"))

    def build(self, m, inst, ledger):
        Y = float(inst.block("llm")["layers"])
        e_l, e_0, c_l, c_0 = tier_coef(inst)
        m.edge_memory_GB = pyo.Expression(m.U, rule=lambda m, n: float(e_l[n]) * (m.beta[n] - m.alpha[n]) + float(e_0[n]))
        if inst.has_block("cloud"):
            m.cloud_memory_GB = pyo.Expression(m.U, rule=lambda m, n: float(c_l[n]) * (Y - m.beta[n]) + float(c_0[n]))
        ledger.quantities["edge_memory_GB"] = [m.edge_memory_GB[n] for n in m.U]
        ledger.quantities["cloud_memory_GB"] = [m.cloud_memory_GB[n] if inst.has_block("cloud") else 0.0 for n in m.U]
        if not caps_enforced(inst, "servers"):
            return
        cap_e = inst.block(self.name)["edge_M_max_GB"]
        if edge_streams(inst) == "one":
            m.edge_memory = pyo.Constraint(m.U, rule=lambda m, n: m.edge_memory_GB[n]
                                           <= sum(m.chi[n, j] * float(cap_e[j]) for j in m.S))
        else:
            m.edge_memory = pyo.Constraint(m.S, rule=lambda m, j: sum(m.chi[n, j] * m.edge_memory_GB[n] for n in m.U)
                                           <= float(cap_e[j]))
        if inst.has_block("cloud"):
            m.cloud_memory = pyo.Constraint(m.U, rule=lambda m, n: m.cloud_memory_GB[n] <= float(self.p["cloud_M_max_GB"]))

    def evaluate(self, sol, inst, ledger, viol):
        Y = float(inst.block("llm")["layers"])
        _, _, c_l, c_0 = tier_coef(inst)   # the conservative per-user form (all E streams as deep as n's)
        q = ledger.quantities
        q["edge_memory_GB"] = user_memory_GB(inst, sol)["edge"]
        q["cloud_memory_GB"] = c_l * (Y - sol["beta"]) + c_0 if inst.has_block("cloud") else np.zeros(inst.N)
        if not caps_enforced(inst, "servers"):
            return
        s, cap_e = inst.servers_of(sol), inst.block(self.name)["edge_M_max_GB"]
        if edge_streams(inst) == "one":
            viol.leq("edge_memory", q["edge_memory_GB"], cap_e[s])
        else:
            viol.leq("edge_memory", np.bincount(s, weights=q["edge_memory_GB"], minlength=inst.M), cap_e)
        if inst.has_block("cloud"):
            viol.leq("cloud_memory", q["cloud_memory_GB"], self.p["cloud_M_max_GB"])


class MemoryScheme(Block):
    name = "memory_scheme"
    requires = ("memory",)
    doc = ("How a scheme uses the memory of its machines (the baselines of SplitLLM, docs/splitllm.md): "
           "edge_streams — users an edge trains at once, 'one' (SplitLLM's schedule, §3.2 [V]) or 'per_user' (all "
           "of them, each with its own server-side model: SFL, §3.3); caps — which memory caps are constraints: "
           "'all', 'device' (the edge and cloud are only measured) or 'none' (only measured: metrics peak_memory_GB.*). "
           "Without this block: one stream per edge, every cap enforced.")
    params = (
        Param("edge_streams", "1", "one", "users an edge trains at once: 'one' or 'per_user' (SFL)", choices=("one", "per_user")),
        Param("caps", "1", "all", "memory caps enforced as constraints: 'all', 'device' or 'none' (the rest measured only)",
              choices=("all", "device", "none")),
    )


def _scheme(inst, key: str, default: str) -> str:
    return inst.variant.block("memory_scheme").p[key] if inst.has_block("memory_scheme") else default


def edge_streams(inst) -> str:
    """'one' (SplitLLM's schedule) or 'per_user' (SFL), from the ``memory_scheme`` block."""
    return _scheme(inst, "edge_streams", "one")


def caps_enforced(inst, tier: str) -> bool:
    """Whether the device's (tier = 'device') or the edge's and cloud's (tier = 'servers') caps are constraints."""
    caps = _scheme(inst, "caps", "all")
    return caps == "all" or (caps == "device" and tier == "device")


def tier_coef(inst):
    """(edge GB per layer (N,), edge fixed GB (N,), cloud GB per layer (N,), cloud fixed GB (N,)) of the
    per-user constraints: edge (β−α)·e_l + e_0, cloud (Υ−β)·c_l + c_0 (all E streams as deep as n's)."""
    mem, E = inst.block("memory"), float(inst.M)
    edge_0 = 4 * mem["cut_GB"] if inst.has_block("cloud") else 2 * mem["cut_GB"] + mem["head_GB"]
    if pinned_at(inst) == "cloud":   # cloud-centric: the edge only relays the users' tokens
        edge_0 = 0.0 * edge_0
    stream, once, stream_0, fixed = _cloud_parts(inst)
    return mem["block_GB"], edge_0, once + E * stream, E * stream_0 + fixed


def _cloud_parts(inst):
    """The cloud's memory in parts, GB: (per layer of one user's stream (N,), per layer held once, fixed
    per stream (N,), fixed once). A stream holds its activations (and its LoRA copy with cloud_lora =
    'per_stream') and the cut activation + gradient it receives; the frozen weights (and a shared LoRA)
    are held once for the deepest span, with the head (and the embedding in the cloud-centric baseline)."""
    mem = inst.block("memory")
    per_stream = inst.variant.block("tier_memory").p["cloud_lora"] == "per_stream"
    stream = np.broadcast_to((mem["lora_block_GB"] if per_stream else 0.0) + mem["act_block_GB"], (inst.N,)).astype(float)
    once = float(mem["frozen_block_GB"] + (0.0 if per_stream else mem["lora_block_GB"]))
    if pinned_at(inst) == "cloud":   # tokens arrive instead of a cut tensor; the cloud embeds them
        emb = float(inst.variant.block("memory").p["bytes_per_weight"] * inst.variant.block("memory").p["embedding_Mparam"] * 1e6 / GB)
        return stream, once, 0.0 * mem["cut_GB"], float(mem["head_GB"]) + emb
    return stream, once, 2 * mem["cut_GB"], float(mem["head_GB"])


def user_memory_GB(inst, sol) -> dict[str, np.ndarray]:
    """Memory user n occupies on each tier, GB, shape (N,) each (variant-models §1.1, §3.3):

    * ``device`` — base_n + α_n·block_n (embedding, cut buffers or the head, α_n blocks);
    * ``edge`` — its stream on edge m(n): (β_n − α_n)·block_n + 4·cut_n (+ the head and 2 cut tensors
      instead of 4 without a cloud tier); 0 without ``tier_memory``;
    * ``cloud`` — its stream on the cloud: (Υ − β_n)·(activations [+ LoRA copy]) + 2·cut_n; the frozen
      weights the cloud holds once are not in it (see :func:`peak_memory_GB`); 0 without a cloud.
    """
    mem = inst.block("memory")
    a = np.asarray(sol["alpha"], float)
    out = {"device": mem["base_GB"] + a * mem["block_GB"], "edge": np.zeros(inst.N), "cloud": np.zeros(inst.N)}
    if inst.has_block("tier_memory"):
        b = np.asarray(sol["beta"], float)
        e_l, e_0, _, _ = tier_coef(inst)
        out["edge"] = e_l * (b - a) + e_0
        if inst.has_block("cloud"):
            stream, _, stream_0, _ = _cloud_parts(inst)
            out["cloud"] = (float(inst.block("llm")["layers"]) - b) * stream + stream_0
    return out


def peak_memory_GB(inst, sol) -> dict[str, float]:
    """Peak memory of every tier of a solution, GB — the metric SplitLLM reports (variant-models §3.2-3.3):

    * ``device`` — the fullest device: max_n user_memory_GB.device;
    * ``edge`` — the fullest edge server: the largest stream of its users (one active stream per edge),
      or the sum of them with ``tier_memory.edge_streams = "per_user"``; 0 without ``tier_memory``;
    * ``cloud`` — frozen weights of the deepest cloud span (and a shared LoRA) + for every edge the largest
      stream of its users (E concurrent streams, one per edge) + head; 0 without a cloud tier;
    * ``overall`` — the fullest machine of the system: max of the three.
    """
    use, s = user_memory_GB(inst, sol), inst.servers_of(sol)
    out = {"device": float(np.max(use["device"])), "edge": 0.0, "cloud": 0.0}
    if inst.has_block("tier_memory"):
        edge = np.zeros(inst.M)
        if edge_streams(inst) == "one":
            np.maximum.at(edge, s, use["edge"])
        else:
            np.add.at(edge, s, use["edge"])
        out["edge"] = float(edge.max())
    if inst.has_block("tier_memory") and inst.has_block("cloud"):
        _, once, _, fixed = _cloud_parts(inst)
        worst = np.zeros(inst.M)
        np.maximum.at(worst, s, use["cloud"])
        span = float(np.max(float(inst.block("llm")["layers"]) - np.asarray(sol["beta"], float)))
        out["cloud"] = float(span * once + worst.sum() + fixed)
    out["overall"] = max(out["device"], out["edge"], out["cloud"])
    return out


def peak_memory_epigraph(m, inst):
    """Pyomo form of ``peak_memory_GB(...)["overall"]``: a variable π (GB) with π ≥ every tier's peak.

    device π ≥ device_n ∀n; edge π ≥ edge_n ∀n (one stream) or π ≥ Σ_n χ_{n,m}·edge_n ∀m (per user);
    cloud π ≥ once·z + Σ_m w_m + head with z ≥ Υ − β_n and w_m ≥ cloud_n − U_n·(1 − χ_{n,m}), w_m ≥ 0
    (U_n = cloud_n at the smallest β_n, a valid big-M). Minimising π (alone or with a positive weight)
    drives z and w_m to the max terms, so at the optimum π is the evaluator's overall peak."""
    Y = float(inst.block("llm")["layers"])
    m.peak_memory_GB = pyo.Var(domain=pyo.NonNegativeReals, initialize=0.0)
    m.peak_device = pyo.Constraint(m.U, rule=lambda m, n: m.device_memory_GB[n] <= m.peak_memory_GB)
    if not inst.has_block("tier_memory"):
        return m.peak_memory_GB
    if edge_streams(inst) == "one":
        m.peak_edge = pyo.Constraint(m.U, rule=lambda m, n: m.edge_memory_GB[n] <= m.peak_memory_GB)
    else:
        m.peak_edge = pyo.Constraint(m.S, rule=lambda m, j: sum(m.chi[n, j] * m.edge_memory_GB[n] for n in m.U) <= m.peak_memory_GB)
    if inst.has_block("cloud"):
        stream, once, stream_0, fixed = _cloud_parts(inst)
        big = (Y - m.beta[0].lb) * stream + stream_0
        m.cloud_span = pyo.Var(domain=pyo.NonNegativeReals, initialize=0.0)
        m.cloud_worst_GB = pyo.Var(m.S, domain=pyo.NonNegativeReals, initialize=0.0)
        m.cloud_span_def = pyo.Constraint(m.U, rule=lambda m, n: Y - m.beta[n] <= m.cloud_span)
        m.cloud_worst_def = pyo.Constraint(m.U, m.S, rule=lambda m, n, j: (Y - m.beta[n]) * float(stream[n]) + float(stream_0[n])
                                           - float(big[n]) * (1 - m.chi[n, j]) <= m.cloud_worst_GB[j])
        m.peak_cloud = pyo.Constraint(expr=once * m.cloud_span + sum(m.cloud_worst_GB[j] for j in m.S) + fixed <= m.peak_memory_GB)
    return m.peak_memory_GB


def set_peak_memory_epigraph(m, inst, sol) -> None:
    """After loading a point into the model: give π and its auxiliaries their tightest values."""
    if not hasattr(m, "peak_memory_GB"):
        return
    m.peak_memory_GB.set_value(peak_memory_GB(inst, sol)["overall"])
    if hasattr(m, "cloud_span"):
        use, s = user_memory_GB(inst, sol), inst.servers_of(sol)
        m.cloud_span.set_value(float(np.max(float(inst.block("llm")["layers"]) - np.asarray(sol["beta"], float))))
        worst = np.zeros(inst.M)
        np.maximum.at(worst, s, use["cloud"])
        for j in m.S:
            m.cloud_worst_GB[j].set_value(float(worst[j]))


BLOCKS = (Memory, TierMemory, MemoryScheme)
