"""Per-user coefficients of the core problem for a fixed association, in model units
(TFLOP, GHz, MHz, Mbit, W, s, J), and the relaxed objective H of P3 (spec §1.8, eq. 12).

With user n on server m = server[n]::

    A(f)  = ω_t a_T/f  + ω_e a_E f²          cost of one local layer    (14)
    B(fe) = ω_t e_T/fe + ω_e e_E fe²         cost of one edge layer     (15)
    U(p,b)= ω_e p s/r + δ ω_t s/r,  r = b log2(1 + snr p/b)             uplink (δ = uplink.delay)
    H     = Σ_n α A(f) + (Υ−α) B(fe) + U(p,b) + ω_s c Υ/(Υ−α),  c = 2L²/k_n
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mecsplit.errors import InputError

LN2 = math.log(2.0)
CORE = ("llm", "association", "user_compute", "edge_compute", "uplink")
VARS = ("alpha", "f_GHz", "fe_GHz", "p_W", "b_MHz")


def check_supported(variant, where: str = "<variant>", any_objective: bool = False) -> None:
    if not any_objective and variant.objective.kind != "weighted_sum":
        raise InputError(where, "objective.kind", f"got {variant.objective.kind!r}", "'weighted_sum' (the Liu–Zhao objective)")
    for b in CORE:
        if not variant.has_block(b):
            raise InputError(where, f"blocks.{b}", "missing", "the core blocks " + ", ".join(CORE))
    if variant.block("uplink").p["upload"] == "external":
        raise InputError(where, "blocks.uplink.upload", "got 'external'", "'tokens' | 'activations'")


@dataclass
class Pairs:
    """Instance data for every (user, server) pair, independent of the association."""

    N: int
    M: int
    om: dict
    Y: float
    a_T: np.ndarray      # (N,)
    a_E: np.ndarray
    e_T: np.ndarray      # (N, M)
    e_E: np.ndarray
    snr: np.ndarray      # (N, M) per W per MHz
    s: np.ndarray        # (N,) upload, Mbit
    delay: bool
    c_stab: np.ndarray   # (N,) ω_s·2L²/k_n (0 without the stability block)
    alpha_lo: float
    alpha_hi: float
    integer: bool
    f_lo: float
    f_hi: np.ndarray
    fe_lo: float
    F: np.ndarray        # (M,) GPU budget, GHz
    p_lo: float          # effective floor (> 0)
    p_min: float         # the variant's floor (may be 0)
    p_hi: np.ndarray
    b_lo: float
    Bw: np.ndarray       # (M,) bandwidth budget, MHz
    fe_eq: bool
    b_eq: bool


def pairs(variant, inst, omega: dict | None = None) -> Pairs:
    """Pair data of (variant, inst). ``omega`` ({"delay": ω_t, "energy": ω_e, "stability": ω_s})
    overrides the variant's weights — e.g. for a Dinkelbach/FP outer loop on a ratio objective that
    calls the FP step on a weighted sum; then any objective kind is accepted."""
    check_supported(variant, any_objective=omega is not None)
    C = inst.compiled   # the shared numeric form (mecsplit.compile): coefficients derived once by the blocks
    om = dict(omega) if omega is not None else C.omega
    llm, uc, ec, up = (inst.block(k) for k in ("llm", "user_compute", "edge_compute", "uplink"))
    Y = float(llm["layers"])
    stab = variant.has_block("stability")
    c = om["stability"] * np.asarray(inst.block("stability")["c"], float) if stab else np.zeros(inst.N)
    p_hi = np.asarray(up["p_max_W"], float)
    return Pairs(
        N=inst.N, M=inst.M, om=om, Y=Y,
        a_T=uc["t_layer"], a_E=uc["e_layer"], e_T=ec["t_layer"], e_E=ec["e_layer"],
        snr=np.asarray(up["snr_per_W_MHz"], float), s=np.asarray(up["upload_Mbit"], float),
        delay=bool(up["delay"]), c_stab=c,
        alpha_lo=float(C.alpha_lo.max()), alpha_hi=float(C.alpha_hi.min()), integer=llm["split"] == "integer",
        f_lo=float(uc["f_min_GHz"]), f_hi=np.asarray(uc["f_max_GHz"], float),
        fe_lo=float(ec["fe_min_GHz"]), F=np.asarray(ec["F_max_GHz"], float),
        p_lo=max(float(up["p_min_W"]), 1e-9 * float(np.min(p_hi))), p_min=float(up["p_min_W"]), p_hi=p_hi,
        b_lo=float(up["b_min_MHz"]), Bw=np.asarray(up["b_max_MHz"], float),
        fe_eq=ec["budget"] == "eq", b_eq=up["budget"] == "eq")


@dataclass
class Coefs:
    """Pairs restricted to each user's own server (vectors of length N)."""

    P: Pairs
    server: np.ndarray
    e_T: np.ndarray
    e_E: np.ndarray
    snr: np.ndarray
    fe_hi: np.ndarray
    b_hi: np.ndarray

    @classmethod
    def of(cls, P: Pairs, server) -> "Coefs":
        s = np.asarray(server, dtype=int)
        rows = np.arange(P.N)
        return cls(P, s, P.e_T[rows, s], P.e_E[rows, s], P.snr[rows, s], P.F[s], P.Bw[s])

    # cost pieces ---------------------------------------------------------------------------
    def A(self, f):
        P = self.P
        return P.om["delay"] * P.a_T / f + P.om["energy"] * P.a_E * f**2

    def B(self, fe):
        P = self.P
        return P.om["delay"] * self.e_T / fe + P.om["energy"] * self.e_E * fe**2

    def rate(self, p, b):
        return b * np.log1p(self.snr * p / b) / LN2

    def U(self, p, b):
        P = self.P
        r = self.rate(p, b)
        return (P.om["energy"] * p + (P.om["delay"] if P.delay else 0.0)) * P.s / r

    def stab(self, alpha):
        return self.P.c_stab * self.P.Y / (self.P.Y - alpha)

    def H_user(self, x) -> np.ndarray:
        a = x["alpha"]
        return a * self.A(x["f_GHz"]) + (self.P.Y - a) * self.B(x["fe_GHz"]) + self.U(x["p_W"], x["b_MHz"]) + self.stab(a)

    def H(self, x) -> float:
        """The P3 objective (12) with α as given (relaxed or integer); equals the evaluator's objective."""
        return float(np.sum(self.H_user(x)))


def f_star(P: Pairs) -> np.ndarray:
    """argmin_f A(f) = (ω_t a_T / (2 ω_e a_E))^{1/3} clipped to [f_min, f_max] (spec §1.9)."""
    if P.om["energy"] <= 0:
        return P.f_hi.copy()
    with np.errstate(divide="ignore"):
        f = (P.om["delay"] * P.a_T / (2 * P.om["energy"] * P.a_E)) ** (1 / 3)
    return np.clip(np.nan_to_num(f, nan=P.f_hi.max(), posinf=P.f_hi.max()), P.f_lo, P.f_hi)


def equal_shares(P: Pairs, server) -> dict[str, np.ndarray]:
    """A feasible starting point: full budgets split equally, full power, f*, and the relaxed α."""
    s = np.asarray(server, dtype=int)
    cnt = np.bincount(s, minlength=P.M)[s]
    x = {"f_GHz": f_star(P), "fe_GHz": np.maximum(P.F[s] / cnt, P.fe_lo), "p_W": P.p_hi.copy(),
         "b_MHz": np.maximum(P.Bw[s] / cnt, P.b_lo)}
    x["alpha"] = best_alpha(Coefs.of(P, s), x, integer=False)
    return x


def best_alpha(C: Coefs, x, integer: bool) -> np.ndarray:
    """Exact α-step for fixed resources: minimise α A + (Υ−α) B + ω_s cΥ/(Υ−α) over the α box
    (closed form of spec §1.9 when relaxed, enumeration of the integers otherwise)."""
    P = C.P
    A, B = C.A(x["f_GHz"]), C.B(x["fe_GHz"])
    if integer:
        al = np.arange(math.ceil(P.alpha_lo - 1e-9), math.floor(P.alpha_hi + 1e-9) + 1, dtype=float)
        cost = al[None, :] * (A - B)[:, None] + P.c_stab[:, None] * P.Y / (P.Y - al[None, :])
        return al[np.argmin(cost, axis=1)]
    d = B - A
    with np.errstate(divide="ignore", invalid="ignore"):
        # stationarity: A − B + c Υ/(Υ−α)² = 0  ->  Υ−α = sqrt(cΥ/(B−A))
        a = np.where(d > 0, P.Y - np.sqrt(P.c_stab * P.Y / np.where(d > 0, d, 1.0)), P.alpha_lo)
    return np.clip(a, P.alpha_lo, P.alpha_hi)


def to_solution(server, x) -> dict[str, list]:
    out = {"server": [int(v) for v in server]}
    for k in VARS:
        out[k] = np.asarray(x[k], float).tolist()
    return out
