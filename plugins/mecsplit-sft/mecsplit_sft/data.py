"""The SFT problem as the decomposition sees it, read from the compiled instance (mecsplit.compile).

Per device n and slot t (docs/sft.md §1; variant-models §2.3-2.4), with its server m(n) fixed:

    delay_{t,n} = α_n·t_n  +  (Υ − α_n)·e_n / fe_{t,n}  +  S_n(ρ_n) / r_{t,n}(b_{t,n})          (s)
    r_{t,n}(b) = b·log2(1 + a_{t,n}·p^max_n / b)                                                  (Mbit/s)
    S_n(ρ) = (D_n·(ρ·q + H₂(ρ)) + c₀)/1e6                                                         (Mbit)

t_n = device seconds per block at f^max_n, e_n = edge s·GHz per block, a = g/(σ²·1e6) per W and MHz.
The device clock and the transmit power sit at their maxima: the objective (the slot average of the
slowest device's delay) decreases in both and has no energy term. Budgets per slot and server:
Σ fe ≤ F_m, Σ b ≤ W_m. Large timescale: α (whole blocks, memory cap) and ρ (distortion budget).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mecsplit.result import Outcome, Status


@dataclass
class SftData:
    N: int
    M: int
    T: int
    L: int                       # Υ, transformer blocks
    server: np.ndarray           # (N,) fixed association: the strongest large-scale gain
    alpha_lo: np.ndarray         # (N,) whole blocks, every bound of the variant
    alpha_hi: np.ndarray         # (N,) same, with the memory cap
    alpha_box_hi: np.ndarray     # (N,) without the memory cap (the ALM dualises it)
    t_dev: np.ndarray            # (N,) s per block on the device at f_max
    e_edge: np.ndarray           # (N,) s·GHz per block on the user's server
    F: np.ndarray                # (M,) GHz
    W: np.ndarray                # (M,) MHz
    fe_min: float
    b_min: float
    D: np.ndarray                # (N,) cut elements
    q_bits: float
    c0_bits: float
    rho_min: float
    rho_max: float
    eps: float                   # ε_q/ρ: δ(ρ) = 1 − (1 − eps)·ρ
    delta_max: float | None      # None: no accuracy constraint
    ap: np.ndarray               # (T, N) a·p_max per MHz at the user's server
    f_max: np.ndarray
    p_max: np.ndarray
    budget_eq: tuple[bool, bool]  # (edge, uplink) budgets are equalities

    @classmethod
    def of(cls, variant, inst) -> "SftData":
        c = inst.compiled
        up = variant.block("uplink")
        gain = inst.topology["gain"]
        server = np.argmax(gain, axis=1)
        rows = np.arange(inst.N)
        uc, ec, ud = inst.block("user_compute"), inst.block("edge_compute"), inst.block("uplink")
        comp, llm = variant.block("compression"), inst.block("llm")
        hi_box = np.full(inst.N, np.inf)
        for b in variant.blocks:      # every split bound but the memory cap (dualised by the ALM)
            bounds = b.alpha_bounds(inst) if b.name != "memory" else None
            if bounds is not None:
                hi_box = np.minimum(hi_box, bounds[1])
        hi_box = np.floor(hi_box + 1e-9)
        snr = ud["snr_per_W_MHz"][None] if inst.T == 1 else ud["snr_slots_per_W_MHz"]
        return cls(
            N=inst.N, M=inst.M, T=inst.T, L=int(llm["layers"]), server=server,
            alpha_lo=np.asarray(c.alpha_lo, float), alpha_hi=np.asarray(c.alpha_hi, float),
            alpha_box_hi=np.maximum(hi_box, np.asarray(c.alpha_lo, float)),
            t_dev=uc["t_layer"] / uc["f_max_GHz"], e_edge=ec["t_layer"][rows, server],
            F=np.asarray(ec["F_max_GHz"], float), W=np.asarray(ud["b_max_MHz"], float),
            fe_min=float(ec["fe_min_GHz"]), b_min=float(ud["b_min_MHz"]),
            D=np.asarray(inst.block("compression")["elements"], float), q_bits=float(comp.p["quant_bits"]),
            c0_bits=float(comp.p["overhead_bits"]), rho_min=float(comp.p["rho_min"]), rho_max=float(comp.p["rho_max"]),
            eps=comp.eps_coef(), delta_max=float(comp.p["distortion_max"]) if comp.p["accuracy"] == "distortion_budget" else None,
            ap=snr[:, rows, server] * ud["p_max_W"][None, :], f_max=np.asarray(uc["f_max_GHz"], float),
            p_max=np.asarray(ud["p_max_W"], float),
            budget_eq=(variant.block("edge_compute").p["budget"] == "eq", up.p["budget"] == "eq"))

    # --- the model in numpy --------------------------------------------------------------------
    def size_Mbit(self, rho):
        rho = np.asarray(rho, float)
        h2 = -(rho * np.log2(rho) + (1 - rho) * np.log2(1 - rho))
        return (self.D * (rho * self.q_bits + h2) + self.c0_bits) / 1e6

    def dsize_Mbit(self, rho):
        """dS/dρ (Mbit): D·(q + log2((1 − ρ)/ρ))/1e6."""
        rho = np.asarray(rho, float)
        return self.D * (self.q_bits + np.log2((1 - rho) / rho)) / 1e6

    def rate(self, b, ap=None):
        """Mbit/s at bandwidth b (MHz), shape of b (T, N) or (N,) with the matching ap."""
        ap = self.ap if ap is None else ap
        return b * np.log2(1 + ap / b)

    def delays(self, alpha, rho, fe, b) -> np.ndarray:
        """(T, N) delay of every device in every slot (s)."""
        return (alpha * self.t_dev + (self.L - alpha) * self.e_edge / fe + self.size_Mbit(rho) / self.rate(b))

    def objective(self, alpha, rho, fe, b) -> float:
        """The slot average of the slowest device's delay (s) — the variant's objective."""
        return float(np.mean(np.max(self.delays(alpha, rho, fe, b), axis=1)))

    def distortion_excess(self, rho) -> float:
        """mean δ(ρ) − δ_max (≤ 0 when the accuracy constraint holds; −inf without one)."""
        if self.delta_max is None:
            return -math.inf
        return float(np.mean(1 - (1 - self.eps) * np.asarray(rho)) - self.delta_max)

    def rho_uniform(self) -> float:
        """The uniform ρ that meets the distortion budget with equality, within [ρ_min, ρ_max]."""
        if self.delta_max is None:
            return self.rho_max
        return float(np.clip((1 - self.delta_max) / (1 - self.eps), self.rho_min, self.rho_max))

    def per_server(self, x: np.ndarray) -> np.ndarray:
        """(T, M) Σ of x (T, N) over each server's users."""
        return np.stack([np.bincount(self.server, weights=row, minlength=self.M) for row in np.atleast_2d(x)])

    def equal_shares(self) -> tuple[np.ndarray, np.ndarray]:
        """(fe, b), each (T, N): every server's budgets split equally among its users."""
        cnt = np.bincount(self.server, minlength=self.M)[self.server]
        return (np.broadcast_to(self.F[self.server] / cnt, (self.T, self.N)).copy(),
                np.broadcast_to(self.W[self.server] / cnt, (self.T, self.N)).copy())

    def repair(self, alpha, rho, fe, b):
        """Exactly feasible copies: α whole within the bounds, ρ within its box and meeting the budget
        (a uniform raise of the shortfall), shares within the bounds and each budget met (scaled
        down when over, up to equality for an 'eq' budget)."""
        alpha = np.clip(np.rint(alpha), self.alpha_lo, self.alpha_hi)
        rho = np.clip(rho, self.rho_min, self.rho_max)
        for _ in range(3):
            ex = self.distortion_excess(rho)
            if ex <= 0:
                break
            free = rho < self.rho_max
            rho = np.where(free, np.minimum(rho + ex * self.N / max(1, free.sum()) / (1 - self.eps) * (1 + 1e-9), self.rho_max), rho)
        out = []
        for x, cap, lo, eq in ((fe, self.F, self.fe_min, self.budget_eq[0]), (b, self.W, self.b_min, self.budget_eq[1])):
            x = np.clip(np.asarray(x, float), lo, cap[self.server])
            used = self.per_server(x)[:, self.server]
            scale = np.where(used > cap[self.server], cap[self.server] / used, 1.0)
            if eq:
                scale = cap[self.server] / used
            out.append(np.clip(x * scale * (1 - 1e-12), lo, cap[self.server]))
        return alpha, rho, out[0], out[1]

    def solution(self, alpha, rho, fe, b) -> dict:
        """The mecsplit solution (per-slot lists for the small timescale when T > 1)."""
        slot = (lambda x: np.asarray(x).tolist()) if self.T > 1 else (lambda x: np.asarray(x)[0].tolist())
        return {"server": self.server.tolist(), "alpha": np.asarray(alpha, float).tolist(), "f_GHz": self.f_max.tolist(),
                "fe_GHz": slot(fe), "p_W": slot(np.broadcast_to(self.p_max, (self.T, self.N))), "b_MHz": slot(b),
                "rho": np.asarray(rho, float).tolist()}

    def infeasible(self) -> Outcome | None:
        """An Outcome when no point exists (a device cannot hold its smallest split), else None."""
        bad = np.flatnonzero(self.alpha_lo > self.alpha_hi)
        if bad.size:
            return Outcome(Status.INFEASIBLE, message=f"no feasible split: device(s) {bad[:5].tolist()} cannot hold "
                           f"alpha_min blocks within the memory cap")
        return None


def check_variant(variant) -> str | None:
    """What the SFT decomposition needs beyond its block list (Capabilities.check)."""
    up = variant.block("uplink")
    if up.p["upload"] != "external" or not up.p["delay"]:
        return "needs the compression block to own the upload (uplink.upload = 'external') and the upload delay (uplink.delay = true)"
    if variant.block("llm").p["split"] != "integer":
        return "needs whole-block splits (llm.split = 'integer')"
    return None
