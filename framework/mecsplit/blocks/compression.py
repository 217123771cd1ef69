"""Activation compression of SFT (Zhang et al., arXiv 2501.09237; variant-models §2.3): Top-K
sparsification with keep ratio ρ_n (a decision variable), stochastic quantisation to b bits and
lossless (entropy) coding of the position mask.

Compressed upload of user n, in bit (D_n = B·s_n·h cut elements; §2.3 [I], ideal entropy coder):
    S_n(ρ_n) = ρ_n·D_n·b + D_n·H₂(ρ_n) + c₀,      H₂(ρ) = −ρ log₂ρ − (1−ρ) log₂(1−ρ)
It replaces the uplink's upload size: the uplink must be declared with ``upload = "external"`` and
this block adds the delay S_n/r_n (when the uplink's ``delay = true``) and the energy p_n·S_n/r_n,
using the uplink's rate expression ``m.rate``.

Accuracy (A1, aggregate distortion budget, §2.3 [I]):  (1/N) Σ_n δ_n(ρ_n) ≤ δ_max with
    δ_n(ρ) = (1 − ρ) + ε_q(ρ),   ε_q(ρ) = c_q·ρ/s_q²,  s_q = 2^b − 1.
(1 − ρ) is the Top-K contraction bound (Stich et al. 2018); ε_q is the range-based stochastic
quantisation bound K·(y_max − y_min)²/(4 s_q²) divided by ‖x‖², written with c_q = (range/2)²/mean-square
of the kept values and with the kept energy ‖y‖² = ρ‖x‖² (the equal-magnitude worst case that makes
the Top-K bound tight) [I]. δ_n is linear in ρ_n, so (A1) is one linear constraint coupling all users.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ..lazy import lazy_module
from ..slots import ix, per_slot
from .base import Block, Param, VarSpec, quantity
from .core import _pair_sum

pyo = lazy_module("pyomo.environ")  # imported on first use: listing variants needs no Pyomo

LN2 = math.log(2.0)


class Compression(Block):
    name = "compression"
    requires = ("llm", "association", "uplink")
    doc = ("SFT Top-K + stochastic quantisation + entropy coding of the cut activation: keep ratio "
           "ρ_n ∈ [ρ_min, ρ_max] (decision), upload S_n = ρ·D·b + D·H₂(ρ) + c₀ bit replaces the uplink's "
           "upload (uplink.upload = 'external'); accuracy (A1) (1/N)Σ_n[(1−ρ_n) + c_q ρ_n/(2^b−1)²] ≤ δ_max.")
    params = (
        Param("rho_min", "1", 0.05, "ρ_min, smallest keep ratio (variant-models §2.5 [I]: ρ ∈ [0.05, 1])", min=1e-6, max=0.9999),
        Param("rho_max", "1", 0.999, "ρ_max; < 1 because H₂'s derivative is infinite at ρ = 1 (ρ = 0.999 keeps "
              "99.9 % and costs 0.011 bit/element of position entropy)", min=1e-6, max=0.9999),
        Param("quant_bits", "bit", 4, "b, bits per kept element (§2.3: 4 bits at ρ ≈ 0.3 matches the 93.6 % reduction)", min=1, max=32, integer=True),
        Param("overhead_bits", "bit", 64, "c₀, per-upload scale/min side information (§2.3)", min=0, max=1e9),
        Param("quant_range_factor", "1", 4.0, "c_q = ((y_max − y_min)/2)² / mean square of the kept values [I]", min=0, max=1e6),
        Param("accuracy", "1", "distortion_budget", "'distortion_budget' (A1) or 'none'", choices=("distortion_budget", "none")),
        Param("distortion_max", "1", 0.7, "δ_max, bound on the mean relative distortion (A1) [I]: 0.7 ⇔ mean ρ ≥ 0.305 at b = 4",
              min=0, max=1),
    )

    # --- data -----------------------------------------------------------------------------------
    def eps_coef(self) -> float:
        """ε_q(ρ)/ρ = c_q / (2^b − 1)²."""
        return self.p["quant_range_factor"] / (2.0 ** self.p["quant_bits"] - 1.0) ** 2

    def rho_budget(self) -> float:
        """The uniform ρ that meets (A1) with equality (may be below ρ_min)."""
        return (1.0 - self.p["distortion_max"]) / (1.0 - self.eps_coef()) if self.eps_coef() < 1 else math.inf

    def derive(self, inst):
        where = str(inst.variant.path)
        if inst.variant.block("uplink").p["upload"] != "external":
            raise InputError(where, "blocks.uplink.upload", "the compression block owns the upload term",
                             "'external' when [blocks.compression] is present")
        if self.p["rho_min"] > self.p["rho_max"]:
            raise InputError(where, "blocks.compression.rho_min", f"{self.p['rho_min']} > rho_max {self.p['rho_max']}",
                             "rho_min <= rho_max")
        if self.p["accuracy"] == "distortion_budget":
            worst = 1.0 - self.p["rho_max"] * (1.0 - self.eps_coef())
            if worst > self.p["distortion_max"]:
                raise InputError(where, "blocks.compression.distortion_max",
                                 f"infeasible: even ρ = rho_max gives mean distortion {worst:.4g}", f"a value >= {worst:.4g}")
        llm = inst.block("llm")
        return {"elements": float(llm["batch"]) * llm["tokens"].astype(float) * float(llm["hidden"])}

    def variables(self, inst):
        return [VarSpec("rho", "1", "ρ_n, Top-K keep ratio of the cut activation")]

    def quantities(self):
        return (quantity("distortion", "1", "δ_n(ρ_n) = (1 − ρ) + c_q ρ/(2^b − 1)², the user's relative distortion (A1)"),)

    def reference(self, inst, sol):
        sol["rho"] = np.full(inst.N, float(np.clip(self.rho_budget(), self.p["rho_min"], self.p["rho_max"])))

    # --- model ----------------------------------------------------------------------------------
    def build(self, m, inst, ledger):
        D = inst.block(self.name)["elements"]
        b, c0 = float(self.p["quant_bits"]), float(self.p["overhead_bits"])
        r0 = float(np.clip(self.rho_budget(), self.p["rho_min"], self.p["rho_max"]))
        m.rho = pyo.Var(m.U, bounds=(self.p["rho_min"], self.p["rho_max"]), initialize=r0)

        def size_Mbit(n):  # S_n(ρ_n) / 1e6
            r = m.rho[n]
            h2 = -(r * pyo.log(r) + (1 - r) * pyo.log(1 - r)) / LN2
            return (float(D[n]) * (r * b + h2) + c0) / 1e6

        m.upload_Mbit = pyo.Expression(m.U, rule=lambda m, n: size_Mbit(n))
        up_e = [per_slot(inst, lambda t: _pair_sum(m, n, lambda j: m.upload_Mbit[n] * m.p[ix(inst, n, t=t)] / m.rate[ix(inst, n, j, t=t)]))
                for n in m.U]
        up_s = [per_slot(inst, lambda t: _pair_sum(m, n, lambda j: m.upload_Mbit[n] / m.rate[ix(inst, n, j, t=t)])) for n in m.U]
        ledger.energy["uplink"] = up_e
        if inst.block("uplink")["delay"]:
            ledger.delay["uplink"] = up_s
        eps = self.eps_coef()
        ledger.quantities.update(upload_Mbit=[m.upload_Mbit[n] for n in m.U], uplink_delay_s=up_s, uplink_energy_J=up_e,
                                 distortion=[(1 - m.rho[n]) + eps * m.rho[n] for n in m.U])
        if self.p["accuracy"] == "distortion_budget":
            eps, N = self.eps_coef(), float(inst.N)
            m.distortion_budget = pyo.Constraint(
                expr=sum((1 - m.rho[n]) + eps * m.rho[n] for n in m.U) / N <= float(self.p["distortion_max"]))

    # --- numpy ----------------------------------------------------------------------------------
    @staticmethod
    def _h2(r: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return -(r * np.log2(r) + (1 - r) * np.log2(1 - r))

    def size_Mbit(self, inst, rho: np.ndarray) -> np.ndarray:
        D = inst.block(self.name)["elements"]
        return (D * (rho * self.p["quant_bits"] + self._h2(rho)) + self.p["overhead_bits"]) / 1e6

    def evaluate(self, sol, inst, ledger, viol):
        up = inst.block("uplink")
        s_idx, p, b, rho = inst.servers_of(sol), sol["p_W"], sol["b_MHz"], sol["rho"]
        a = inst.variant.block("uplink").snr(inst, s_idx)     # (N,), or (T, N) per slot
        with np.errstate(divide="ignore", invalid="ignore"):
            t = self.size_Mbit(inst, rho) / (b * np.log2(1 + a * p / b))
        ledger.energy["uplink"] = p * t
        if up["delay"]:
            ledger.delay["uplink"] = t
        ledger.quantities.update(upload_Mbit=self.size_Mbit(inst, rho), uplink_delay_s=t, uplink_energy_J=p * t,
                                 distortion=(1 - rho) + self.eps_coef() * rho)
        # communication overhead per round (one iteration: every device's compressed cut activation) against
        # the raw activation (llm.bits_per_element per element) — SFT's reported metric (§2.2, 93.6 %)
        sent = float(np.sum(self.size_Mbit(inst, rho))) * 1e6
        raw = float(np.sum(inst.block(self.name)["elements"])) * float(inst.block("llm")["bits_per_element"])
        ledger.metrics.update(comm_bit_per_round=sent, comm_raw_bit_per_round=raw, comm_reduction_vs_raw=1.0 - sent / raw)
        viol.add("rho_min", self.p["rho_min"] - rho)
        viol.add("rho_max", rho - self.p["rho_max"])
        if self.p["accuracy"] == "distortion_budget":
            delta = (1 - rho) + self.eps_coef() * rho
            viol.leq("distortion_budget", np.mean(delta), self.p["distortion_max"])


BLOCKS = (Compression,)
