"""Instance data in model units and the vectorised per-option convex subproblems.

For one user n, one option (server m, split α) and budget multipliers (λ_m ≥ 0 on bandwidth, μ_m on
the GPU-frequency budget) the Lagrangian subproblem separates into three independent pieces
(docs/exact.md §2, design-notes §3.2):

* user compute   α·min_f (ω_t a_T/f + ω_e a_E f²)             closed form (cube root, clipped);
* edge compute   min_x w(t/x + e x²) + μ x, w = Υ − α           1-D convex, root of an increasing g';
* uplink         min_{p,b} (c0 + c1 p)/r(p,b) + λ b            convex in (log p, log b): inner p*(b)
                                                                 from a scalar monotone equation, outer
                                                                 root of dΦ/dlog b (increasing).

Every 1-D solve is a bracketed root of a monotone function run to a relative width of ~1e-14, so the
returned value exceeds the true minimum by O(1e-28) relative (flat at the minimum); the callers
subtract a relative safety margin (``SAFETY``) from every bound to cover floating-point rounding.
"""

from __future__ import annotations

import copy
import math

import numpy as np
from scipy.special import lambertw

from mecsplit.errors import InputError

LN2 = math.log(2.0)
SAFETY = 1e-11          # relative margin subtracted from every Lagrangian bound (rounding)
CORE_BLOCKS = ("llm", "association", "user_compute", "edge_compute", "uplink", "stability")


class Data:
    """Everything the exact solver needs, in model units (TFLOP, GHz, MHz, Mbit, W, s, J), read from
    the instance's compiled form (``inst.compiled``, :mod:`mecsplit.compile`) and weighted by ω."""

    def __init__(self, variant, inst):
        names = [b.name for b in variant.blocks]
        ratio = variant.objective.kind == "cost_per_quality"
        # memory / split_bounds only bound the splits: they are in the compiled α bounds (inst.compiled)
        extra = sorted(set(names) - set(CORE_BLOCKS) - {"memory", "split_bounds"} - ({"service_quality"} if ratio else set()))
        if extra:
            raise InputError("<exact>", f"variant.blocks.{extra[0]}", "block not supported by the exact solver",
                             ", ".join(CORE_BLOCKS) + " (and service_quality with objective cost_per_quality)")
        for req in CORE_BLOCKS[:-1]:
            if req not in names:
                raise InputError("<exact>", f"variant.blocks.{req}", "missing", "the core blocks " + ", ".join(CORE_BLOCKS[:-1]))
        if variant.objective.kind not in ("weighted_sum", "cost_per_quality"):
            raise InputError("<exact>", "objective.kind", f"got {variant.objective.kind!r}", "weighted_sum | cost_per_quality")
        llm, uc, ec, up = (inst.block(k) for k in ("llm", "user_compute", "edge_compute", "uplink"))
        if llm["split"] != "integer":
            # with a real α the server's problem min Σ α A − λU(α) + (Υ−α)(e_T/f_e + e_E f_e²) s.t. Σ f_e ≤ F
            # is not convex in (α, f_e), so the outer approximation's cuts would not be exact (docs/exact.md §6)
            raise InputError("<exact>", "blocks.llm.split", f"got {llm['split']!r}: the exact solver needs integer "
                             "splits (docs/exact.md §6)", "split = \"integer\" (e.g. the variant dashf-layers-2024)")
        if up["upload"] == "external":
            raise InputError("<exact>", "blocks.uplink.upload", "got 'external'", "tokens | activations")
        C = inst.compiled
        om = C.omega
        wt, we = om["delay"], om["energy"]
        ws = 0.0 if ratio else om["stability"]      # cost_per_quality's cost is delay + energy only (objective.py)
        self.N, self.M = inst.N, inst.M
        self.Y = float(llm["layers"])
        self.has_stab = inst.has_block("stability")
        # one grid of splits for all users; a split outside a user's own bounds (C.alpha_lo/hi) is an
        # infeasible option (+inf constant below)
        self.alphas = np.arange(C.alpha_lo.min(), C.alpha_hi.max() + 1, dtype=float)
        if self.alphas.size == 0 or np.any(C.alpha_lo > C.alpha_hi):
            raise InputError("<exact>", "blocks.llm.alpha_min", "no integer split in range for some user",
                             "alpha_min <= the largest split every block allows")
        self.K = self.alphas.size
        aT, aE = wt * uc["t_layer"], we * uc["e_layer"]
        fmin, fmax = float(uc["f_min_GHz"]), np.asarray(uc["f_max_GHz"], float)
        with np.errstate(divide="ignore", invalid="ignore"):
            fs = np.where(aE > 0, np.cbrt(aT / (2 * np.where(aE > 0, aE, 1.0))), np.where(aT > 0, np.inf, fmin))
        self.f = np.clip(fs, fmin, fmax)
        self.A = aT / self.f + aE * self.f**2                     # per-layer user cost at its optimal f
        self.t = wt * ec["t_layer"]                                 # (N, M) ω_t·e_T
        self.e = we * ec["e_layer"]                                 # (N, M) ω_e·e_E
        self.fe_lo = float(ec["fe_min_GHz"])
        self.F = np.asarray(ec["F_max_GHz"], float)
        self.eq_f = ec["budget"] == "eq"
        if self.has_stab:
            self.stab_c = ws * np.asarray(inst.block("stability")["c"], float)
        else:
            self.stab_c = np.zeros(self.N)
        s = np.asarray(up["upload_Mbit"], float)
        self.a = np.asarray(up["snr_per_W_MHz"], float)
        self.c0 = wt * s * (1.0 if up["delay"] else 0.0)
        self.c1 = we * s
        self.p_lo = np.full(self.N, float(up["p_min_W"]))
        self.p_hi = np.asarray(up["p_max_W"], float)
        self.b_lo = float(up["b_min_MHz"])
        self.B = np.asarray(up["b_max_MHz"], float)
        # most users a server can take: every user needs fe ≥ fe_lo and b ≥ b_lo of its budgets
        self.user_cap = np.minimum(np.floor(self.F / self.fe_lo + 1e-9), np.floor(self.B / self.b_lo + 1e-9))
        self.eq_b = up["budget"] == "eq"
        if np.any((self.c0 <= 0) & (self.c1 > 0) & (self.p_lo <= 0)):
            raise InputError("<exact>", "blocks.uplink.p_min_W", "0 with no uplink delay: the optimum is not attained "
                             "(design-notes §3.1)", "p_min_W > 0 or delay = true")
        # per-option constant part α·A + ω_s·AS(α): (N, K)
        w = self.Y - self.alphas
        with np.errstate(divide="ignore"):
            stab = np.where(w > 0, self.stab_c[:, None] * self.Y / np.where(w > 0, w, 1.0)[None, :],
                            np.where(self.stab_c[:, None] > 0, np.inf, 0.0))
        self.user_part = self.alphas[None, :] * self.A[:, None] + stab
        outside = (self.alphas[None, :] < C.alpha_lo[:, None]) | (self.alphas[None, :] > C.alpha_hi[:, None])
        self.user_part[outside] = np.inf
        self.w = w
        # cost_per_quality (DASHF, spec §2.2): quality per option U_nk = w_n (q0 + g(α_k)), (N, K); the
        # ratio is solved by Dinkelbach (dinkelbach.py), each step a weighted-sum problem of this core
        self.Q = None
        if ratio:
            if "service_quality" not in names:
                raise InputError("<exact>", "variant.blocks.service_quality", "missing", "a service_quality block")
            block = variant.block("service_quality")
            if block.depends_on() != "alpha":
                raise InputError("<exact>", "blocks.service_quality.kind", f"got {block.p['kind']!r}: a rate-dependent "
                                 "quality is not a constant per option", "offload_log | local_log")
            sq = inst.block("service_quality")
            self.Q = np.asarray(sq["weight"], float)[:, None] * (float(sq["base"]) + block.g_alpha(self.alphas, self.Y)[None, :])
            if not self.Q.min(axis=1).sum() > 0:
                raise InputError("<exact>", "blocks.service_quality.weight", "the total quality can be 0",
                                 "weight > 0 for some user")

    def shifted(self, delta):
        """A copy whose per-option constants are ``user_part + delta`` ((N, K)); everything else shared."""
        out = copy.copy(self)
        out.user_part = self.user_part + delta
        return out


# ------------------------------------------------------------------------------------------------
def root_inc(g, lo, hi, rtol=1e-14, maxit=200, atol=0.0):
    """Vectorised root of increasing functions on brackets [lo, hi] (flat arrays), Illinois method.

    ``g(x, sel)`` evaluates the functions with indices ``sel`` at ``x``. Where g(lo) ≥ 0 the answer is
    lo; where g(hi) ≤ 0 it is hi (the constrained minimiser of the convex primitive)."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    idx = np.arange(lo.size)
    glo, ghi = g(lo, idx), g(hi, idx)
    x = np.where(glo >= 0, lo, hi)
    act = np.nonzero((glo < 0) & (ghi > 0))[0]
    a, b, fa, fb = lo[act], hi[act], glo[act], ghi[act]
    side = np.zeros(act.size, dtype=np.int8)
    for _ in range(maxit):
        if act.size == 0:
            break
        c = (a * fb - b * fa) / (fb - fa)
        bad = ~((c > a) & (c < b))
        c[bad] = 0.5 * (a[bad] + b[bad])
        fc = g(c, act)
        left = fc < 0
        right = ~left
        a = np.where(left, c, a)
        fa = np.where(left, fc, fa)
        fb = np.where(left & (side == -1), 0.5 * fb, fb)
        b = np.where(right, c, b)
        fb = np.where(right, fc, fb)
        fa = np.where(right & (side == 1), 0.5 * fa, fa)
        side = np.where(left, -1, 1).astype(np.int8)
        done = (fc == 0) | (b - a <= rtol * np.maximum(np.abs(a), np.abs(b)) + atol)
        x[act] = c
        if done.any():
            keep = ~done
            act, a, b, fa, fb, side = act[keep], a[keep], b[keep], fa[keep], fb[keep], side[keep]
    return x


def edge_solve(w, t, e, mu, lo, hi):
    """min_{x∈[lo,hi]} w(t/x + e x²) + μ x, elementwise (arrays broadcast). Returns (value, x).

    g(x) = −wt/x² + 2we x + μ is increasing and concave in x. For μ ≥ 0 and wt > 0 its root is in
    closed form (_edge_root), clipped to [lo, hi] (g increasing: a root outside the box puts the
    minimiser on the nearer bound). Elsewhere (μ < 0 with "eq" budgets, wt = 0, a root at infinity)
    Newton started left of the root (x_L = min((t/4e)^{1/3}, (wt/2μ)^{1/2}) has g(x_L) ≤ 0) increases
    monotonically to it."""
    W, T, E, Mu, Lo, Hi = (np.ascontiguousarray(v, dtype=float).ravel() for v in
                           np.broadcast_arrays(w, t, e, mu, lo, hi))
    shape = np.broadcast_shapes(*(np.shape(v) for v in (w, t, e, mu, lo, hi)))
    WT, WE = W * T, W * E
    x = _edge_root(WT, WE, Mu)
    rest = np.nonzero(~np.isfinite(x))[0]
    x = np.clip(x, Lo, Hi)
    if rest.size:
        x[rest] = _edge_newton(WT[rest], WE[rest], Mu[rest], Lo[rest], Hi[rest])
    val = WT / x + WE * x * x + Mu * x
    return val.reshape(shape), x.reshape(shape)


def _edge_root(wt, we, mu):
    """Root x > 0 of −wt/x² + 2we·x + μ (we ≥ 0) where μ ≥ 0 and wt > 0; NaN elsewhere. y = 1/x solves the
    depressed cubic y³ + P y + Q = 0, P = −μ/wt ≤ 0, Q = −2we/wt ≤ 0, whose one positive root is
    Cardano's u − P/(3u) (both terms ≥ 0: no cancellation) when the discriminant is ≥ 0, else the
    largest trigonometric root (near a zero discriminant the error in u cancels to first order).
    Agrees with the iterated Newton solve to ≤ 1e-15 relative (tests/test_exact_kernels.py)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        P = -mu / wt
        Q = -2.0 * we / wt
        disc = 0.25 * Q * Q + P * P * P / 27.0
        trig = disc < 0
        if trig.any():
            y = np.empty_like(P)
            c = ~trig
            Pt = P[trig]
            y[trig] = 2.0 * np.sqrt(-Pt / 3.0) * np.cos(np.arccos(np.clip(1.5 * Q[trig] / Pt * np.sqrt(-3.0 / Pt), -1.0, 1.0)) / 3.0)
            u = np.cbrt(-0.5 * Q[c] + np.sqrt(disc[c]))
            y[c] = u - P[c] / (3.0 * u)
        else:
            u = np.cbrt(-0.5 * Q + np.sqrt(disc))
            y = u - P / (3.0 * u)
        x = 1.0 / y
        return np.where((mu >= 0) & (wt > 0) & (x > 0), x, np.nan)


def _edge_newton(wt, we, mu, lo, hi):
    """The minimiser of edge_solve's problem by the bracket checks and monotone Newton (any μ)."""
    glo = -wt / (lo * lo) + 2 * we * lo + mu
    ghi = -wt / (hi * hi) + 2 * we * hi + mu
    x = np.where(glo >= 0, lo, hi)
    act = np.nonzero((glo < 0) & (ghi > 0))[0]
    if act.size:
        wt, we, mu_, lo_ = wt[act], we[act], mu[act], lo[act]
        with np.errstate(divide="ignore", invalid="ignore"):
            x1 = np.where(we > 0, np.cbrt(wt / (4 * np.where(we > 0, we, 1.0))), np.inf)
            x2 = np.where(mu_ > 0, np.sqrt(wt / (2 * np.where(mu_ > 0, mu_, 1.0))), np.inf)
        z = np.maximum(np.minimum(x1, x2), lo_)
        idx = np.arange(act.size)
        for _ in range(100):
            zi = z[idx]
            g = -wt[idx] / (zi * zi) + 2 * we[idx] * zi + mu_[idx]
            dg = 2 * wt[idx] / (zi * zi * zi) + 2 * we[idx]
            zn = zi - g / dg
            zn = np.maximum(zn, zi)         # monotone from the left (guards rounding)
            z[idx] = zn
            done = (zn - zi <= 1e-15 * zn) | (g >= 0)
            idx = idx[~done]
            if idx.size == 0:
                break
        x[act] = np.minimum(z, hi[act])
    return x


# ψ(z) = s²/2 reverted around 0: z = Σ_k c_k s^k (coefficients exact rationals in floating point; the
# first term left out here is c_15 ≈ −2.2e-6, so for s ≤ 0.15 the truncation is ≤ 1e-17 relative)
_PSI_INV_SERIES = (1.0, 1 / 6, -1 / 72, 1 / 270, -23 / 17280, 19 / 34020, -11237 / 43545600, 13 / 102060,
                   -2482411 / 37623398400, 53741 / 1515591000, -272785979 / 13905608048640,
                   1.1110503184882091e-05, -6.415829591770127e-06, 3.7656594239141905e-06)
_S_SERIES = 0.15


def _psi_inv(v):
    """z ≥ 0 with ψ(z) = (1+z)ln(1+z) − z = v (v ≥ 0), in closed form (docs/exact.md §1).

    With s = √(2v): for s ≤ 0.15 the series reversion above (no iteration); beyond, the Lambert W form
    z = expm1(1 + W₀((v − 1)/e)) (u = 1 + z solves u(ln u − 1) = v − 1) and one Newton step on ψ (ψ is
    convex increasing, so the step lands O(err²) right of the root). Both agree with the iterated
    Newton solve this replaced to ≤ 2e-14 relative and are closer to the root (tests/test_exact_kernels.py)."""
    v = np.asarray(v, float)
    s = np.sqrt(2 * v)
    far = s > _S_SERIES
    if not far.any():
        return _psi_inv_series(s)
    if far.all():
        return _psi_inv_lambert(v)
    z = _psi_inv_series(np.where(far, 0.0, s))
    z[far] = _psi_inv_lambert(v[far])
    return z


def _psi_inv_series(s):
    z = _PSI_INV_SERIES[-1] * s
    for c in _PSI_INV_SERIES[-2::-1]:
        z += c
        z *= s
    return z


def _psi_inv_lambert(v):
    with np.errstate(invalid="ignore", over="ignore"):
        z = np.expm1(1.0 + lambertw((v - 1.0) / math.e).real)
        lz = np.log1p(z)
        z -= ((1 + z) * lz - z - v) / lz
    return np.where(v < np.inf, z, np.inf)


def p_star(b, a, c0, c1, plo, phi):
    """argmin_{p∈[plo,phi]} (c0 + c1 p)/r(p, b) for fixed b (quasi-convex in p)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(c1 > 0, a * c0 / np.where(c1 > 0, c1, 1.0) / b, 0.0)
        z = _psi_inv(v)
        p = np.where(c1 > 0, b * z / a, phi)
    return np.clip(p, plo, phi)


def rate(p, b, a):
    return b * np.log1p(a * p / b) / LN2


def uplink_solve(a, c0, c1, lam, plo, phi, blo, bhi):
    """min_{p,b} (c0 + c1 p)/r(p, b) + λ b over the box (λ ≥ 0), elementwise. Returns (value, p, b)."""
    arrs = np.broadcast_arrays(a, c0, c1, lam, plo, phi, blo, bhi)
    shape = arrs[0].shape
    A, C0, C1, Lm, Plo, Phi, Blo, Bhi = (np.ascontiguousarray(v, dtype=float).ravel() for v in arrs)

    def g(y, s):  # dΦ/dlog b (envelope theorem), increasing in y = log b
        b = np.exp(y)
        p = p_star(b, A[s], C0[s], C1[s], Plo[s], Phi[s])
        z = A[s] * p / b
        r = b * np.log1p(z) / LN2
        rb = (np.log1p(z) - z / (1 + z)) / LN2
        return b * (-(C0[s] + C1[s] * p) * rb / (r * r) + Lm[s])

    y = root_inc(g, np.log(Blo), np.log(Bhi), rtol=0.0, atol=1e-9)  # value error O(1e-18)
    b = np.exp(y)
    b = np.clip(b, Blo, Bhi)
    p = p_star(b, A, C0, C1, Plo, Phi)
    val = (C0 + C1 * p) / rate(p, b, A) + Lm * b
    return val.reshape(shape), p.reshape(shape), b.reshape(shape)
