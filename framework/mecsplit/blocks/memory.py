"""Memory caps of split fine-tuning (variant-models §1.1 [STD], §2.3 SFT device memory, §3.3 SplitLLM
per-tier memory). All memory in GB = 1e9 bytes.

Per transformer block, for user n (tokens s_n, batch B, hidden h, heads a, FFN width h_ff):

* frozen weights  P_blk = 4h² + k_ff·h·h_ff parameters (k_ff = 2 for a GELU MLP, 3 for SwiGLU), q_w bytes each;
* LoRA parameters R = 4rh (targets q, v) or 8rh + 2r(h + h_ff) (all attention + MLP matrices), trained
  with weights, gradients and two fp32 Adam moments: (2q_w + 8)·R bytes;
* activations M_act,n = (q_a/2)·B·s_n·h·(34 + 5·a·s_n/h) bytes (Korthikanti et al. 2022, fp16 without
  recomputation; scaled by q_a/2 for other activation widths [I]);
* cut tensor D_n = B·s_n·h elements, q_a bytes each (the activation sent uplink; its gradient comes back).

``memory`` (device tier, SFT §2.3):  q_w·P_emb + 2·q_a·D_n + l_n·M_blk,n ≤ M^max_n   — linear in l_n = α_n.
``tier_memory`` (SplitLLM §3.3): the edge holds layers α_n..β_n of one active user stream, the cloud
layers β_n..Υ for E concurrent edge streams.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from .base import Block, Param, quantity

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
        return {"frozen_block_GB": frozen, "lora_block_GB": lora, "act_block_GB": act,
                "block_GB": frozen + lora + act, "cut_GB": cut,
                "base_GB": qw * self.p["embedding_Mparam"] * 1e6 / GB + 2 * cut,
                "head_GB": qw * self.p["head_Mparam"] * 1e6 / GB}

    def quantities(self):
        return (quantity("memory_GB", "GB", "device memory used: base + α·block (§2.3)"),)

    def alpha_bounds(self, inst):
        d = inst.block(self.name)   # base + α·block ≤ M^max is a bound on α (block > 0)
        return -np.inf, (d["M_max_GB"] - d["base_GB"]) / d["block_GB"]

    def build(self, m, inst, ledger):
        d = inst.block(self.name)
        base, blk, cap = d["base_GB"], d["block_GB"], d["M_max_GB"]
        ledger.quantities["memory_GB"] = [float(base[n]) + float(blk[n]) * m.alpha[n] for n in m.U]
        m.device_memory = pyo.Constraint(m.U, rule=lambda m, n: ledger.quantities["memory_GB"][n] <= float(cap[n]))

    def evaluate(self, sol, inst, ledger, viol):
        d = inst.block(self.name)
        ledger.quantities["memory_GB"] = d["base_GB"] + d["block_GB"] * sol["alpha"]
        viol.leq("device_memory", ledger.quantities["memory_GB"], d["M_max_GB"])
        use = ledger.quantities["memory_GB"] / d["M_max_GB"]   # device memory used against its cap
        ledger.metrics.update(device_memory_GB_max=float(np.max(ledger.quantities["memory_GB"])),
                              device_memory_GB_mean=float(np.mean(ledger.quantities["memory_GB"])),
                              device_memory_of_cap_max=float(np.max(use)), device_memory_of_cap_mean=float(np.mean(use)))

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
           "copy per stream) or 1 (shared cloud LoRA).")
    params = (
        Param("edge_M_max_GB", "GB", {"dist": "uniform", "low": 16.0, "high": 24.0},
              "M^max_e, edge GPU memory for the active stream (T4 16 GB .. A10 24 GB [I])", per="server", min=1e-6, max=1e6),
        Param("cloud_M_max_GB", "GB", 80.0, "M^max_c, cloud GPU memory (A100-80GB [I])", min=1e-6, max=1e7),
        Param("cloud_lora", "1", "per_stream", "cloud LoRA copies: 'per_stream' (σ_c = 1, one per edge stream, "
              "aggregated at round end) or 'shared' (one copy; only activations scale with E)", choices=("per_stream", "shared")),
    )

    def _coef(self, inst):
        """(edge per-layer GB (N,), edge fixed GB (N,), cloud per-layer GB (N,), cloud fixed GB (N,))."""
        mem, E = inst.block("memory"), float(inst.M)
        copies = E if self.p["cloud_lora"] == "per_stream" else 1.0
        cloud_layer = mem["frozen_block_GB"] + copies * mem["lora_block_GB"] + E * mem["act_block_GB"]
        return mem["block_GB"], 4 * mem["cut_GB"], cloud_layer, E * 2 * mem["cut_GB"] + mem["head_GB"]

    def quantities(self):
        return (quantity("edge_memory_GB", "GB", "edge memory of the user's stream (β−α)·block + 4·cut"),
                quantity("cloud_memory_GB", "GB", "cloud memory if every stream were as deep as the user's (§3.3)"))

    def build(self, m, inst, ledger):
        Y = float(inst.block("llm")["layers"])
        cap_e = inst.block(self.name)["edge_M_max_GB"]
        e_l, e_0, c_l, c_0 = self._coef(inst)
        q = ledger.quantities
        q["edge_memory_GB"] = [float(e_l[n]) * (m.beta[n] - m.alpha[n]) + float(e_0[n]) for n in m.U]
        q["cloud_memory_GB"] = [float(c_l[n]) * (Y - m.beta[n]) + float(c_0[n]) for n in m.U]
        m.edge_memory = pyo.Constraint(m.U, rule=lambda m, n: q["edge_memory_GB"][n] <= sum(m.chi[n, j] * float(cap_e[j]) for j in m.S))
        m.cloud_memory = pyo.Constraint(m.U, rule=lambda m, n: q["cloud_memory_GB"][n] <= float(self.p["cloud_M_max_GB"]))

    def evaluate(self, sol, inst, ledger, viol):
        Y = float(inst.block("llm")["layers"])
        s = inst.servers_of(sol)
        e_l, e_0, c_l, c_0 = self._coef(inst)
        q = ledger.quantities
        q["edge_memory_GB"] = e_l * (sol["beta"] - sol["alpha"]) + e_0
        q["cloud_memory_GB"] = c_l * (Y - sol["beta"]) + c_0
        viol.leq("edge_memory", q["edge_memory_GB"], inst.block(self.name)["edge_M_max_GB"][s])
        viol.leq("cloud_memory", q["cloud_memory_GB"], self.p["cloud_M_max_GB"])


def peak_memory_GB(inst, sol) -> dict[str, float]:
    """Peak memory per tier of a solution, in GB: the metric SplitLLM reports (variant-models §3.2-3.3).

    * ``device`` — max_n base_n + α_n·block_n;
    * ``edge`` — max_n of the edge stream (β_n − α_n)·block_n + 4·cut_n (0 without ``edge_tier``);
    * ``cloud`` — frozen weights of the deepest cloud span + for every edge the largest stream of its users
      (LoRA copies per ``tier_memory.cloud_lora``, activations, 2 cut tensors) + head — one concurrent
      stream per edge, each edge's worst user;
    * ``sfl_server`` — the two-tier baseline of §3.3: one server, N concurrent users cut at α_n, a separate
      server-side model per user: Σ_n (Υ − α_n)·block_n + head.
    Only for reporting; the constraints are in :class:`Memory` / :class:`TierMemory`."""
    mem, Y = inst.block("memory"), float(inst.block("llm")["layers"])
    a = np.asarray(sol["alpha"], float)
    out = {"device": float(np.max(mem["base_GB"] + a * mem["block_GB"])),
           "sfl_server": float(np.sum((Y - a) * mem["block_GB"]) + mem["head_GB"])}
    if "beta" not in sol:
        return out
    b, s = np.asarray(sol["beta"], float), inst.servers_of(sol)
    out["edge"] = float(np.max((b - a) * mem["block_GB"] + 4 * mem["cut_GB"]))
    per_stream = inst.has_block("tier_memory") and inst.variant.block("tier_memory").p["cloud_lora"] == "per_stream"
    stream = (Y - b) * ((mem["lora_block_GB"] if per_stream else 0.0) + mem["act_block_GB"]) + 2 * mem["cut_GB"]
    worst = np.zeros(inst.M)
    np.maximum.at(worst, s, stream)
    shared_lora = 0.0 if per_stream else float(np.max(Y - b)) * mem["lora_block_GB"]
    out["cloud"] = float(np.max(Y - b) * mem["frozen_block_GB"] + shared_lora + worst.sum() + mem["head_GB"])
    return out


BLOCKS = (Memory, TierMemory)
