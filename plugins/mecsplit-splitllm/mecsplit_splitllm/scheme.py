"""A splitllm-family instance in the solver's terms (numbers read from the blocks, never re-derived).

Per user n on edge m, with the cuts α_n ≤ β_n and the shares b_n (MHz), f^e_n, f^c_n (GHz), the delay of
every block of the variant is (blocks/core.py, blocks/tier.py)

    D_n = α_n·t_n + S_n/r_{n,m}(b_n) + h_{n,m} + (β_n − α_n)·e_{n,m}/f^e_n + (Υ − β_n)·c_n/f^c_n     (s)

with t_n = device time per layer at f^max_n (the delay objective sets f_n = f^max_n and p_n = p^max_n: both
appear only in user n's own, decreasing terms), r = b·log2(1 + q_{n,m}/b) with q = SNR per W·MHz × p^max,
h_{n,m} = 2·S'_n/R_m the backhaul (0 without a cloud). Schemes of the family (models/splitllm-*.toml):
no cloud block ⇒ β_n = Υ; pinned_split 'device' ⇒ α_n = Υ, no server; 'cloud' ⇒ α_n = β_n = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mecsplit.blocks.memory import Memory, caps_enforced, tier_coef
from mecsplit.blocks.tier import Cloud, pinned_at


PER_USER = ("t", "f_max", "p_max", "e", "c", "S", "q", "h", "alpha_hi", "d_l", "d_0", "e_l", "e_0", "c_l", "c_0")


@dataclass
class Scheme:
    N: int
    M: int
    Y: float                      # Υ, layers
    pinned: str | None            # None | "device" | "cloud"
    cloud: bool                   # a cloud tier trains layers β..Υ
    t: np.ndarray                 # (N,) s per device layer at f_max
    f_max: np.ndarray             # (N,) GHz
    p_max: np.ndarray             # (N,) W
    e: np.ndarray                 # (N, M) s·GHz per edge layer
    c: np.ndarray                 # (N,) s·GHz per cloud layer
    S: np.ndarray                 # (N,) Mbit uplink payload
    q: np.ndarray                 # (N, M) MHz: rate = b·log2(1 + q/b)
    h: np.ndarray                 # (N, M) s backhaul
    B: np.ndarray                 # (M,) MHz bandwidth budget
    F: np.ndarray                 # (M,) GHz edge GPU budget
    C: float                      # GHz cloud slot per edge
    b_min: float
    fe_min: float
    fc_min: float
    alpha_lo: float
    alpha_hi: np.ndarray          # (N,) incl. the device memory cap when enforced
    beta_lo: float
    beta_hi: float
    k_e: float                    # edge_layers_min
    d_l: np.ndarray               # (N,) GB per device layer
    d_0: np.ndarray               # (N,) GB fixed on the device
    edge_cap: np.ndarray | None   # (M,) GB per-stream edge cap when enforced, else None
    e_l: np.ndarray               # (N,) GB per edge layer
    e_0: np.ndarray               # (N,) GB fixed per edge stream
    cloud_cap: float | None       # GB when enforced
    c_l: np.ndarray               # (N,) GB per cloud layer (conservative per-user form)
    c_0: np.ndarray               # (N,) GB

    @classmethod
    def of(cls, variant, inst) -> "Scheme":
        N, M = inst.N, inst.M
        llm = inst.block("llm")
        Y = float(llm["layers"])
        uc = inst.block("user_compute")
        t_ghz, _ = variant.block("user_compute").per_layer(inst)
        f_max = np.asarray(uc["f_max_GHz"], float)
        zNM, zN = np.zeros((N, M)), np.zeros(N)
        pinned = pinned_at(inst)
        up = inst.has_block("uplink")
        p_max = np.asarray(inst.block("uplink")["p_max_W"], float) if up else zN
        q = inst.block("uplink")["snr_per_W_MHz"] * p_max[:, None] if up else zNM
        S = np.asarray(inst.block("uplink")["upload_Mbit"], float) if up else zN
        edge = inst.has_block("edge_tier")
        e = variant.block("edge_tier").per_layer(inst)[0] if edge else zNM
        cloud = inst.has_block("cloud")
        c = variant.block("cloud").per_layer(inst)[0] if cloud else zN
        h = (2 * Cloud.backhaul_Mbit(inst)[:, None] / inst.block("cloud")["backhaul_Mbps"][None, :]) if cloud else zNM
        alpha_hi = np.full(N, float(variant.block("llm").alpha_max(inst)))
        if caps_enforced(inst, "device"):
            alpha_hi = np.minimum(alpha_hi, Memory.alpha_cap(inst))
        beta_lo = beta_hi = Y
        k_e = 0.0
        if edge:
            et = variant.block("edge_tier")
            beta_lo, beta_hi = et._beta_bounds(inst)
            k_e = float(et.p["edge_layers_min"])
        edge_cap, cloud_cap = None, None
        e_l = e_0 = c_l = c_0 = zN
        if inst.has_block("tier_memory"):
            tm = variant.block("tier_memory")
            e_l, e_0, c_l, c_0 = (np.broadcast_to(x, (N,)).astype(float) for x in tier_coef(inst))
            if caps_enforced(inst, "servers"):   # (per-user edge streams with enforced caps: refused by the capabilities)
                edge_cap = np.asarray(inst.block("tier_memory")["edge_M_max_GB"], float)
                cloud_cap = float(tm.p["cloud_M_max_GB"]) if cloud else None
        return cls(N=N, M=M, Y=Y, pinned=pinned, cloud=cloud, t=t_ghz / f_max, f_max=f_max, p_max=p_max, e=e, c=c,
                   S=S, q=q, h=h,
                   B=np.asarray(inst.block("uplink")["b_max_MHz"], float) if up else np.zeros(M),
                   F=np.asarray(inst.block("edge_tier")["F_max_GHz"], float) if edge else np.zeros(M),
                   C=variant.block("cloud").slot_GHz(inst) if cloud else 0.0,
                   b_min=float(inst.block("uplink")["b_min_MHz"]) if up else 0.0,
                   fe_min=float(inst.block("edge_tier")["fe_min_GHz"]) if edge else 0.0,
                   fc_min=float(inst.block("cloud")["fc_min_GHz"]) if cloud else 0.0,
                   alpha_lo=float(llm["alpha_min"]), alpha_hi=alpha_hi, beta_lo=beta_lo, beta_hi=beta_hi, k_e=k_e,
                   d_l=np.broadcast_to(inst.block("memory")["block_GB"], (N,)).astype(float),
                   d_0=np.broadcast_to(inst.block("memory")["base_GB"], (N,)).astype(float),
                   edge_cap=edge_cap, e_l=e_l, e_0=e_0, cloud_cap=cloud_cap, c_l=c_l, c_0=c_0)

    def subset(self, idx) -> "Scheme":
        """The same scheme restricted to the users ``idx`` (servers unchanged)."""
        idx = np.asarray(idx, int)
        kw = {k: (v[idx] if k in PER_USER else v) for k, v in self.__dict__.items()}
        kw["N"] = len(idx)
        return Scheme(**kw)

    def cuts(self, n: int, m: int) -> np.ndarray:
        """Every integer (α, β) user n may take on edge m (bounds and enforced memory caps), shape (K, 2)."""
        if self.pinned == "device":
            return np.array([[self.Y, self.Y]])
        if self.pinned == "cloud":
            return np.array([[0.0, 0.0]])
        out = []
        for a in range(int(np.ceil(self.alpha_lo)), int(np.floor(self.alpha_hi[n])) + 1):
            for b in range(int(max(np.ceil(self.beta_lo), a + self.k_e)), int(np.floor(self.beta_hi)) + 1):
                if self.edge_cap is not None and (b - a) * self.e_l[n] + self.e_0[n] > self.edge_cap[m] * (1 + 1e-9):
                    continue
                if self.cloud_cap is not None and (self.Y - b) * self.c_l[n] + self.c_0[n] > self.cloud_cap * (1 + 1e-9):
                    continue
                out.append((a, b))
        return np.array(out, float).reshape(-1, 2)
