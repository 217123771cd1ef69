"""Pluggable user-perceived service quality U_n of DASHF (Qian & Zhao, arXiv 2310.17872; spec
``seed-models.md`` §2.2). The paper's quality function is not recoverable ([I], spec §2.2 "unknown"),
so the block offers a few documented forms, chosen by ``kind``; every form is

    U_n = w_n · (q0 + g(x_n)),      g increasing, g(0) = 0,

with w_n a per-user weight (priority), q0 > 0 the base quality of the pretrained model (so that
Σ U > 0 and the cost-per-quality ratio stays finite even at "no offloading"), and x_n one of:

* ``offload_log`` (the block's default): g = ln(1 + c·ρ_n), ρ_n = 1 − α_n/Υ the offloading
  ratio. [I] Reason: in the same group's MobiHoc'24 model (Theorem 1, spec §1.5) the fine-tuning
  stability bound 2L²/(k(1 − α/Υ)) improves with the fraction trained at the server; a log gives
  the diminishing returns usual for utility functions (concave, so −λU is convex in α).
* ``local_log`` (used by ``dashf-2024``): g = ln(1 + c·α_n/Υ), the log of local training progress. [I] Reason: users value
  personalisation on private data (more layers adapted on-device); concave for the same reason.
* ``rate_log``: g = ln(1 + r_n/r_ref), r_n the achieved uplink rate in Mbit/s. [I] Reason: the
  standard logarithmic QoE-vs-throughput law (interactive service responsiveness).
* ``rate_sigmoid``: g = σ(k(r_n − r_mid)) − σ(−k·r_mid) with σ the logistic function; a fitted
  S-curve of the rate, like the JSAC human-centric utility fitted to rate (spec §2.2). [I] Reason:
  MOS-style saturation at both ends; shifted so that g(0) = 0. Not concave (the Dinkelbach
  subproblem is then non-convex in the rate).

Only the ``quality`` ledger is written; the objective ``cost_per_quality`` divides the weighted
cost by Σ_n U_n (:mod:`mecsplit.objective`).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ..lazy import lazy_module
from .base import Block, Param
from .core import _pair_sum

pyo = lazy_module("pyomo.environ")  # imported on first use: listing variants needs no Pyomo

KINDS = ("offload_log", "local_log", "rate_log", "rate_sigmoid")


class ServiceQuality(Block):
    name = "service_quality"
    requires = ("llm",)
    doc = ("DASHF user-perceived service quality U_n = w_n (q0 + g(x_n)) into the 'quality' ledger; kind: "
           "offload_log g = ln(1 + c ρ), ρ = 1 − α/Υ | local_log g = ln(1 + c α/Υ) | rate_log g = ln(1 + r/r_ref) | "
           "rate_sigmoid g = σ(k(r − r_mid)) − σ(−k r_mid). All [I] (the paper's form is not recoverable).")
    params = (
        Param("kind", "1", "offload_log", "which quality form (see the module docstring)", choices=KINDS),
        Param("weight", "1", 1.0, "w_n, per-user quality weight (priority)", per="user", min=0.0, max=1e6),
        Param("base", "1", 1.0, "q0, quality of the pretrained model without fine-tuning gains (> 0 keeps Σ U > 0)",
              min=1e-9, max=1e6),
        Param("gain", "1", 4.0, "c, slope at 0 of the log forms offload_log / local_log", min=1e-9, max=1e6),
        Param("rate_ref_Mbps", "Mbit/s", 10.0, "r_ref of rate_log", min=1e-9, max=1e9),
        Param("sigmoid_mid_Mbps", "Mbit/s", 20.0, "r_mid of rate_sigmoid (rate at half saturation)", min=0.0, max=1e9),
        Param("sigmoid_slope_per_Mbps", "1/(Mbit/s)", 0.2, "k of rate_sigmoid", min=1e-9, max=1e6),
    )

    def __init__(self, settings, where="<variant>"):
        super().__init__(settings, where)
        if self.p["kind"].startswith("rate"):
            self.requires = ("llm", "association", "uplink")

    def derive(self, inst):
        if inst.T > 1 and self.depends_on() == "rate":
            raise InputError(str(inst.variant.path), "generator.slots", f"service_quality kind {self.p['kind']!r} reads the "
                             "static uplink rate; per-slot rates are not modelled", "slots = 1, or an α-kind (offload_log, local_log)")
        return {}

    # --- numpy, shared with solvers -------------------------------------------------------------
    def depends_on(self) -> str:
        """'alpha' (offload_log, local_log) or 'rate' (rate_log, rate_sigmoid)."""
        return "rate" if self.p["kind"].startswith("rate") else "alpha"

    def g_alpha(self, alpha, Y: float, deriv: int = 0):
        """g(α) and its derivatives in α (α-kinds only), numpy."""
        c = self.p["gain"]
        a = np.asarray(alpha, float)
        if self.p["kind"] == "offload_log":
            x, dx = 1 - a / Y, -1.0 / Y
        else:
            x, dx = a / Y, 1.0 / Y
        u = 1 + c * x
        if deriv == 0:
            return np.log(u)
        if deriv == 1:
            return c * dx / u
        return -(c * dx) ** 2 / u**2

    def g_rate(self, r, deriv: int = 0):
        """g(r) and its first derivative in r (Mbit/s), numpy (rate kinds only)."""
        r = np.asarray(r, float)
        if self.p["kind"] == "rate_log":
            r0 = self.p["rate_ref_Mbps"]
            return np.log1p(r / r0) if deriv == 0 else 1.0 / (r0 + r)
        k, mid = self.p["sigmoid_slope_per_Mbps"], self.p["sigmoid_mid_Mbps"]
        s = 1.0 / (1.0 + np.exp(-k * (r - mid)))
        if deriv == 0:
            return s - 1.0 / (1.0 + math.exp(k * mid))
        return k * s * (1 - s)

    def quality(self, inst, alpha=None, rate=None) -> np.ndarray:
        """U_n per user given α (α-kinds) or the achieved rate in Mbit/s (rate kinds)."""
        w, q0 = np.asarray(inst.block(self.name)["weight"], float), self.p["base"]
        if self.depends_on() == "alpha":
            g = self.g_alpha(alpha, float(inst.block("llm")["layers"]))
        else:
            g = self.g_rate(rate)
        return w * (q0 + g)

    # --- model ----------------------------------------------------------------------------------
    def build(self, m, inst, ledger):
        w, q0, kind = inst.block(self.name)["weight"], self.p["base"], self.p["kind"]
        Y = float(inst.block("llm")["layers"])
        c = self.p["gain"]
        if kind == "offload_log":
            g = lambda n: pyo.log(1 + c * (1 - m.alpha[n] / Y))
        elif kind == "local_log":
            g = lambda n: pyo.log(1 + c * m.alpha[n] / Y)
        elif kind == "rate_log":
            r0 = self.p["rate_ref_Mbps"]
            g = lambda n: _pair_sum(m, n, lambda j: pyo.log(1 + m.rate[n, j] / r0))
        else:
            k, mid = self.p["sigmoid_slope_per_Mbps"], self.p["sigmoid_mid_Mbps"]
            s0 = 1.0 / (1.0 + math.exp(k * mid))
            g = lambda n: _pair_sum(m, n, lambda j: 1 / (1 + pyo.exp(-k * (m.rate[n, j] - mid))) - s0)
        ledger.quality["service_quality"] = [float(w[n]) * (q0 + g(n)) for n in m.U]

    def evaluate(self, sol, inst, ledger, viol):
        if self.depends_on() == "alpha":
            ledger.quality["service_quality"] = self.quality(inst, alpha=sol["alpha"])
            return
        up = inst.block("uplink")
        s, p, b = inst.servers_of(sol), sol["p_W"], sol["b_MHz"]
        a = up["snr_per_W_MHz"][np.arange(inst.N), s]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = b * np.log2(1 + a * p / b)
        ledger.quality["service_quality"] = self.quality(inst, rate=r)


BLOCKS = (ServiceQuality,)
