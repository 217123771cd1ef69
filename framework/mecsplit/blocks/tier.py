"""Tiers of split fine-tuning beyond the user–edge pair (variant-models §2.3, §3.3, §5.2 items 2, 7, 8).

* ``split_bounds`` — the server side keeps at least k_s blocks: α_n ≤ Υ − k_s (SFT: l_n ∈ {1..L−1}).
* ``edge_tier`` — SplitLLM's second cut point β_n: the user trains layers 1..α_n, the edge α_n..β_n,
  the cloud β_n..Υ. Replaces the core ``edge_compute`` block (same parameters and GPU-frequency
  shares f_{n,m}, but the edge trains β_n − α_n layers instead of Υ − α_n).
* ``cloud`` — the cloud GPU shared by the E edge streams (one concurrent stream per edge server, each
  with F_c/E; the users of edge m time-share their stream's slot through shares f^c_n), plus the
  edge–cloud backhaul carrying the cut activation up and its gradient down.

Reading of the schedule [I]: SplitLLM serves the users of an edge one at a time; with a min-max
objective this is modelled in the fluid (time-share) form the core blocks already use — a share
f_{n,m} of the edge GPU (or f^c_n of the stream's cloud slot) is the fraction of the round during
which user n holds it. For a single stage the makespan max_n w_n/f_n under Σ f_n ≤ F is Σ_n w_n/F,
the sequential schedule's busy time, so the fluid form reproduces the sub-round total
⌈N/E⌉·(Υ−l_e)F/(f_c/E) of §3.3 in aggregate.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..lazy import lazy_module
from .base import Block, Param, VarSpec, quantity
from .core import EdgeCompute, _pair_sum

pyo = lazy_module("pyomo.environ")  # imported on first use: listing variants needs no Pyomo


class SplitBounds(Block):
    name = "split_bounds"
    requires = ("llm",)
    doc = "α_n ≤ Υ − k_s: the server side keeps at least k_s blocks (SFT §2.3: l_n ∈ {1..L−1})."
    params = (Param("server_layers_min", "layer", 1, "k_s, blocks always trained on the server side", min=0, max=1000, integer=True),)

    def alpha_max(self, inst) -> float:
        return float(inst.block("llm")["layers"]) - float(self.p["server_layers_min"])

    def derive(self, inst):
        if self.alpha_max(inst) < float(inst.block("llm")["alpha_min"]):
            raise InputError(str(inst.variant.path), "blocks.split_bounds.server_layers_min",
                             "leaves no feasible split", "a value <= layers - alpha_min")
        return {}

    def reference(self, inst, sol):
        if "alpha" in sol:
            sol["alpha"] = np.minimum(sol["alpha"], self.alpha_max(inst))

    def alpha_bounds(self, inst):
        return -np.inf, self.alpha_max(inst)

    def evaluate(self, sol, inst, ledger, viol):
        viol.add("server_layers_min", sol["alpha"] - self.alpha_max(inst))


class EdgeTier(EdgeCompute):
    name = "edge_tier"
    requires = ("llm", "association")
    doc = ("SplitLLM edge tier (variant-models §3.3 [I]): second cut β_n (integer), α_n + k_e ≤ β_n ≤ Υ − k_c; "
           "the edge trains β_n − α_n layers with a GPU share f_{n,m}: T = (β−α)ψ/(f_{n,m} C^E D^E), "
           "E = (β−α)κ₂ f_{n,m}² ψ/(C^E D^E); budget Σ_n χ f_{n,m} (= or ≤) f^max_m. Use instead of 'edge_compute'. "
           "Without the 'cloud' block β_n = Υ (two-tier split learning with the same edge hardware).")
    params = EdgeCompute.params + (
        Param("edge_layers_min", "layer", 1, "k_e, layers every edge stage trains (l_u < l_e, §3.3)", min=0, max=1000, integer=True),
        Param("cloud_layers_min", "layer", 1, "k_c, layers the cloud always trains (l_e < L, §3.3)", min=0, max=1000, integer=True),
    )

    def _beta_bounds(self, inst) -> tuple[float, float]:
        llm = inst.block("llm")
        if not inst.has_block("cloud"):  # two tiers: the edge trains through the last layer, β_n = Υ
            return float(llm["layers"]), float(llm["layers"])
        return (float(llm["alpha_min"]) + self.p["edge_layers_min"], float(llm["layers"]) - self.p["cloud_layers_min"])

    def derive(self, inst):
        if inst.has_block("edge_compute"):
            raise InputError(str(inst.variant.path), "blocks.edge_compute", "edge_tier replaces edge_compute",
                             "enabled = false in [blocks.edge_compute]")
        lo, hi = self._beta_bounds(inst)
        if lo > hi:
            raise InputError(str(inst.variant.path), "blocks.edge_tier.edge_layers_min",
                             f"no room for the edge tier (β ∈ [{lo:g}, {hi:g}])", "layers >= alpha_min + k_e + k_c")
        return super().derive(inst)

    def alpha_bounds(self, inst):
        return -np.inf, self._beta_bounds(inst)[1] - self.p["edge_layers_min"]   # α + k_e ≤ β ≤ Υ − k_c

    def variables(self, inst):
        return [VarSpec("beta", "layer", "β_n, last layer trained on the edge (the second cut)", integer=True)] + super().variables(inst)

    def reference(self, inst, sol):
        lo, hi = self._beta_bounds(inst)
        Y = float(inst.block("llm")["layers"])
        a = np.minimum(sol["alpha"], hi - self.p["edge_layers_min"])
        sol["alpha"] = a
        sol["beta"] = np.clip(np.maximum(a + self.p["edge_layers_min"], np.floor((a + Y) / 2)), lo, hi)
        super().reference(inst, sol)

    def edge_layers(self, m, inst, n):
        return m.beta[n] - m.alpha[n]

    def edge_layers_value(self, sol, inst):
        return sol["beta"] - sol["alpha"]

    def build(self, m, inst, ledger):
        lo, hi = self._beta_bounds(inst)
        kind = inst.block("llm")["split"]
        m.beta = pyo.Var(m.U, domain=pyo.Integers if kind == "integer" else pyo.Reals, bounds=(lo, hi), initialize=lo)
        if lo == hi:   # two tiers: β_n = Υ is a constant (fixed, so MINLP codes see no integer of zero range)
            m.beta.fix(lo)
        m.edge_layers = pyo.Constraint(m.U, rule=lambda m, n: m.beta[n] - m.alpha[n] >= float(self.p["edge_layers_min"]))
        super().build(m, inst, ledger)

    def evaluate(self, sol, inst, ledger, viol):
        lo, hi = self._beta_bounds(inst)
        bt = sol["beta"]
        viol.add("beta_bounds", np.maximum(lo - bt, bt - hi))
        if inst.block("llm")["split"] == "integer":
            viol.add("beta_integer", np.abs(bt - np.rint(bt)))
        viol.add("edge_layers_min", self.p["edge_layers_min"] - (bt - sol["alpha"]))
        super().evaluate(sol, inst, ledger, viol)

class Cloud(Block):
    name = "cloud"
    requires = ("llm", "association", "edge_tier")
    doc = ("SplitLLM cloud tier (variant-models §3.3 [I]): trains layers β_n..Υ; its GPU (f^c_max) runs E "
           "concurrent edge streams with f^c_max/E each, the users of edge m sharing that slot: "
           "Σ_n χ_{n,m} f^c_n ≤ f^c_max/E; T = (Υ−β_n)ψ/(f^c_n C^c D^c), E = (Υ−β_n)κ₃ (f^c_n)² ψ/(C^c D^c). "
           "Backhaul of edge m at R_m Mbit/s: 2·S_n/R_m (activation up, gradient down; S_n = the user's upload).")
    params = (
        Param("cores", "core", 6912, "C^c, cloud GPU cores (A100: 6912 CUDA cores)", min=1, max=1e9, integer=True),
        Param("flops_per_cycle", "FLOP/cycle/core", 10.0, "D^c (10 → 97.5 TFLOP/s at 1.41 GHz, spec §2.5 f_s ≈ 100 TFLOPS [I])", min=1e-6, max=1e6),
        Param("F_max_GHz", "GHz", 1.41, "f^c_max, cloud GPU clock (A100 boost 1.41 GHz), shared by the E streams", min=1e-6, max=1e4),
        Param("fc_min_GHz", "GHz", 1e-3, "smallest cloud share (positivity)", min=1e-9, max=1e3),
        Param("kappa", "W/(cycle/s)^3", 1.4e-25, "κ₃ from P = κ f³: 400 W at 1.41 GHz (A100 SXM) [I]", min=0, max=1e-18),
        Param("backhaul_Mbps", "Mbit/s", {"dist": "uniform", "low": 500.0, "high": 1000.0},
              "R_m, edge–cloud backhaul rate (wired, §3.3 [I]); not shared: one active stream per edge", per="server", min=1e-6, max=1e9),
    )

    def per_layer(self, inst):
        """(t_layer [s·GHz], e_layer [J/GHz²]), shape (N,), from the compiled instance."""
        d = inst.block(self.name)
        return d["t_layer"], d["e_layer"]

    def quantities(self):
        return (quantity("cloud_compute_delay_s", "s", "training time of the cloud layers"),
                quantity("cloud_compute_energy_J", "J", "training energy of the cloud layers"),
                quantity("backhaul_delay_s", "s", "edge–cloud transfer time 2·S/R"))

    def slot_GHz(self, inst) -> float:
        return float(self.p["F_max_GHz"]) / inst.M

    @staticmethod
    def backhaul_Mbit(inst) -> np.ndarray:
        """S_n, what the edge forwards to the cloud (and gets back): the user's upload (the cut activation
        in SplitLLM; the raw tokens in the cloud-centric baseline), or the cut activation without an uplink."""
        up = inst.block("uplink") if inst.has_block("uplink") else {}
        return up["upload_Mbit"] if up and up["upload"] != "external" else inst.block("llm")["activations_Mbit"]

    def variables(self, inst):
        return [VarSpec("fc_GHz", "GHz", "f^c_n, cloud GPU share of user n (inside its edge's stream slot)", component="fc")]

    def reference(self, inst, sol):
        s = sol["server"]
        sol["fc_GHz"] = self.slot_GHz(inst) / np.bincount(s, minlength=inst.M)[s]

    def derive(self, inst):
        slot = self.slot_GHz(inst)
        if self.p["fc_min_GHz"] > slot:
            raise InputError(str(inst.variant.path), "blocks.cloud.fc_min_GHz", f"above the stream slot F_max/E = {slot:g} GHz",
                             f"a value <= {slot:g}")
        psi = inst.block("llm")["psi_TFLOP"]
        cd = float(self.p["cores"]) * float(self.p["flops_per_cycle"])
        return {"t_layer": psi * 1e3 / cd, "e_layer": self.p["kappa"] * 1e30 * psi / cd}

    def build(self, m, inst, ledger):
        Y = float(inst.block("llm")["layers"])
        slot = self.slot_GHz(inst)
        m.fc = pyo.Var(m.U, bounds=(self.p["fc_min_GHz"], slot), initialize=max(self.p["fc_min_GHz"], slot * inst.M / inst.N))
        t, e = self.per_layer(inst)
        S, R = self.backhaul_Mbit(inst), inst.block(self.name)["backhaul_Mbps"]
        ledger.delay["cloud_compute"] = [(Y - m.beta[n]) * float(t[n]) / m.fc[n] for n in m.U]
        ledger.energy["cloud_compute"] = [(Y - m.beta[n]) * float(e[n]) * m.fc[n] ** 2 for n in m.U]
        ledger.delay["backhaul"] = [sum(m.chi[n, j] * (2 * float(S[n]) / float(R[j])) for j in m.S) for n in m.U]
        ledger.quantities.update(cloud_compute_delay_s=ledger.delay["cloud_compute"], backhaul_delay_s=ledger.delay["backhaul"],
                                 cloud_compute_energy_J=ledger.energy["cloud_compute"])
        m.cloud_freq_budget = pyo.Constraint(m.S, rule=lambda m, j: sum(m.chi[n, j] * m.fc[n] for n in m.U) <= slot)

    def evaluate(self, sol, inst, ledger, viol):
        Y = float(inst.block("llm")["layers"])
        s, fc, bt = inst.servers_of(sol), sol["fc_GHz"], sol["beta"]
        t, e = self.per_layer(inst)
        S, R = self.backhaul_Mbit(inst), inst.block(self.name)["backhaul_Mbps"]
        ledger.delay["cloud_compute"] = (Y - bt) * t / fc
        ledger.energy["cloud_compute"] = (Y - bt) * e * fc**2
        ledger.delay["backhaul"] = 2 * S / R[s]
        ledger.quantities.update(cloud_compute_delay_s=ledger.delay["cloud_compute"], backhaul_delay_s=ledger.delay["backhaul"],
                                 cloud_compute_energy_J=ledger.energy["cloud_compute"])
        slot = self.slot_GHz(inst)
        viol.leq("cloud_freq_budget", np.bincount(s, weights=fc, minlength=inst.M), np.full(inst.M, slot))
        viol.leq("fc_max", fc, slot)
        viol.add("fc_min", (self.p["fc_min_GHz"] - fc) / self.p["fc_min_GHz"])


class PinnedSplit(Block):
    name = "pinned_split"
    requires = ("llm",)
    doc = ("Baseline schemes without a split (SplitLLM's comparators, docs/splitllm.md): at = 'device' — the "
           "device trains every layer, α_n = Υ (device-only LoRA fine-tuning; the variant has no server tier); "
           "at = 'cloud' — the cloud trains every layer, α_n = β_n = 0 (cloud-centric: users upload their tokens; "
           "needs edge_tier + cloud, alpha_min = 0, edge_layers_min = 0).")
    params = (Param("at", "1", "device", "where every layer is trained: 'device' or 'cloud'", choices=("device", "cloud")),)

    def _target(self, inst) -> float:
        return float(inst.block("llm")["layers"]) if self.p["at"] == "device" else 0.0

    def derive(self, inst):
        where, v = str(inst.variant.path), inst.variant
        if self.p["at"] == "device" and (v.has_block("edge_tier") or v.has_block("edge_compute")):
            raise InputError(where, "blocks.pinned_split.at", "'device' with a server tier", "disable edge_tier / edge_compute")
        if self.p["at"] == "cloud":
            if not (v.has_block("edge_tier") and v.has_block("cloud")):
                raise InputError(where, "blocks.pinned_split.at", "'cloud' needs the edge_tier and cloud blocks", "add them")
            if inst.block("llm")["alpha_min"] > 0 or v.block("edge_tier").p["edge_layers_min"] > 0:
                raise InputError(where, "blocks.pinned_split.at", "'cloud' needs α = β = 0 allowed",
                                 "blocks.llm.alpha_min = 0 and blocks.edge_tier.edge_layers_min = 0")
        return {}

    def alpha_bounds(self, inst):
        return self._target(inst), self._target(inst)

    def reference(self, inst, sol):
        sol["alpha"] = np.full(inst.N, self._target(inst))
        if "beta" in sol:
            sol["beta"] = np.zeros(inst.N)

    def build(self, m, inst, ledger):
        for n in m.U:   # fixed (not only bounded): MINLP codes then see no integer of zero range
            m.alpha[n].setlb(self._target(inst))
            m.alpha[n].setub(self._target(inst))
            m.alpha[n].fix(self._target(inst))
            if hasattr(m, "beta"):
                m.beta[n].setlb(0.0)
                m.beta[n].setub(0.0)
                m.beta[n].fix(0.0)

    def evaluate(self, sol, inst, ledger, viol):
        viol.add("pinned_split", np.abs(sol["alpha"] - self._target(inst)) + (np.abs(sol["beta"]) if "beta" in sol else 0.0))


def pinned_at(inst) -> str | None:
    """'device' / 'cloud' for the no-split baselines (:class:`PinnedSplit`), else None."""
    return inst.variant.block("pinned_split").p["at"] if inst.has_block("pinned_split") else None


BLOCKS = (SplitBounds, EdgeTier, Cloud, PinnedSplit)
