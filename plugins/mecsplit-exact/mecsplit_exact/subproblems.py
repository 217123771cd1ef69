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
SPLIT_CAP_BLOCKS = ("memory", "split_bounds")   # blocks that only bound the split from above (Data.alpha_hi)
TIER_BLOCKS = ("edge_tier", "cloud", "tier_memory")   # SplitLLM's three tiers (max_delay only; Data.betas)


def K_last(user_part):
    """Per user the index of its last finite option (−1 when none)."""
    fin = np.isfinite(user_part)
    return np.where(fin.any(axis=1), user_part.shape[1] - 1 - np.argmax(fin[:, ::-1], axis=1), -1)


class Data:
    """Everything the exact solver needs, in model units (TFLOP, GHz, MHz, Mbit, W, s, J), read from
    the instance's compiled form (``inst.compiled``, :mod:`mecsplit.compile`) and weighted by ω."""

    def __init__(self, variant, inst):
        names = [b.name for b in variant.blocks]
        ratio = variant.objective.kind == "cost_per_quality"
        self.three = "edge_tier" in names
        # compression (SFT's keep ratio ρ) with the min–max delay: compression.py adds the ρ pieces
        self.compression = "compression" in names and variant.objective.kind == "max_delay" and not self.three
        extra = sorted(set(names) - set(CORE_BLOCKS) - set(SPLIT_CAP_BLOCKS) - ({"service_quality"} if ratio else set())
                       - (set(TIER_BLOCKS) if self.three else set()) - ({"compression"} if self.compression else set()))
        if extra:
            raise InputError("<exact>", f"variant.blocks.{extra[0]}", "block not supported by the exact solver",
                             ", ".join(CORE_BLOCKS + SPLIT_CAP_BLOCKS + TIER_BLOCKS)
                             + " (and service_quality with objective cost_per_quality)")
        if self.three and ("cloud" not in names or variant.objective.kind != "max_delay"):
            raise InputError("<exact>", "blocks.edge_tier", "three tiers are certified with the cloud block and the "
                             "max_delay objective only", "edge_tier + cloud with objective.kind = 'max_delay'")
        for req in CORE_BLOCKS[:-1]:
            if req not in names and not (req == "edge_compute" and self.three):
                raise InputError("<exact>", f"variant.blocks.{req}", "missing", "the core blocks " + ", ".join(CORE_BLOCKS[:-1]))
        if variant.objective.kind not in ("weighted_sum", "cost_per_quality", "max_delay"):
            raise InputError("<exact>", "objective.kind", f"got {variant.objective.kind!r}",
                             "weighted_sum | cost_per_quality | max_delay")
        self.kind = variant.objective.kind
        llm, uc, ec, up = (inst.block(k) for k in ("llm", "user_compute", "edge_tier" if self.three else "edge_compute", "uplink"))
        if llm["split"] != "integer":
            # with a real α the server's problem min Σ α A − λU(α) + (Υ−α)(e_T/f_e + e_E f_e²) s.t. Σ f_e ≤ F
            # is not convex in (α, f_e), so the outer approximation's cuts would not be exact (docs/exact.md §6)
            raise InputError("<exact>", "blocks.llm.split", f"got {llm['split']!r}: the exact solver needs integer "
                             "splits (docs/exact.md §6)", "split = \"integer\" (e.g. the variant dashf-layers-2024)")
        if up["upload"] == "external" and not self.compression:
            raise InputError("<exact>", "blocks.uplink.upload", "got 'external'", "tokens | activations")
        C = inst.compiled
        om = C.omega
        wt, we = om["delay"], om["energy"]
        ws = 0.0 if ratio else om["stability"]      # cost_per_quality's cost is delay + energy only (objective.py)
        self.N, self.M = inst.N, inst.M
        self.Y = float(llm["layers"])
        self.has_stab = inst.has_block("stability")
        # one grid of splits for all users; a split outside a user's own bounds (C.alpha_lo/hi, every
        # block's bounds and the variant's added α / memory bounds) is an impossible option (constrain)
        if np.any(C.alpha_lo > C.alpha_hi):
            raise InputError("<exact>", "blocks.llm.alpha_min", "no integer split in range for some user",
                             "alpha_min <= the largest split every block allows")
        self.alphas = np.arange(C.alpha_lo.min(), C.alpha_hi.max() + 1, dtype=float)
        self.betas = np.full(self.alphas.size, self.Y)       # layer, last layer on the edge (two tiers: Υ)
        if self.three:   # options are cut pairs (α, β): α + k_e ≤ β, β in the edge tier's range (tier.py)
            lo_b, hi_b = variant.block("edge_tier")._beta_bounds(inst)
            k_e = float(variant.block("edge_tier").p["edge_layers_min"])
            pairs = [(a, b) for a in self.alphas for b in np.arange(lo_b, hi_b + 1) if b - a >= k_e]
            self.alphas = np.array([p[0] for p in pairs], float)
            self.betas = np.array([p[1] for p in pairs], float)
        if self.alphas.size == 0:
            raise InputError("<exact>", "blocks.llm.alpha_min", "no integer split in range for some user",
                             "alpha_min <= the largest split every block allows")
        self.K = self.alphas.size
        aT, aE = wt * uc["t_layer"], we * uc["e_layer"]
        fmin, fmax = float(uc["f_min_GHz"]), np.asarray(uc["f_max_GHz"], float)
        with np.errstate(divide="ignore", invalid="ignore"):
            fs = np.where(aE > 0, np.cbrt(aT / (2 * np.where(aE > 0, aE, 1.0))), np.where(aT > 0, np.inf, fmin))
        self.f = np.clip(fs, fmin, fmax)
        self.A = aT / self.f + aE * self.f**2                     # per-layer user cost at its optimal f
        self.aT, self.aE, self.f_min = aT, aE, fmin               # (N,), (N,) weighted; GHz
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
        self.eq_b = up["budget"] == "eq"
        # unweighted delay coefficients (s·GHz per layer; Mbit) for per-user deadlines and max_delay: the
        # user's delay ledger is α·tU/f + (Υ−α)·tE/fe + s_delay/r (evaluate.py: the per-user delay_s)
        self.tU = np.asarray(uc["t_layer"], float)
        self.f_max = fmax * np.ones(self.N)
        self.tE = np.asarray(ec["t_layer"], float)
        self.s_delay = s * (1.0 if up["delay"] else 0.0)
        if np.any((self.c0 <= 0) & (self.c1 > 0) & (self.p_lo <= 0)):
            raise InputError("<exact>", "blocks.uplink.p_min_W", "0 with no uplink delay: the optimum is not attained "
                             "(design-notes §3.1)", "p_min_W > 0 or delay = true")
        # per-option constant part α·A + ω_s·AS(α): (N, K)
        w = self.betas - self.alphas                  # layers on the edge (Υ − α with two tiers)
        self.wc = self.Y - self.betas                 # layers in the cloud (0 with two tiers)
        self.tC, self.slot, self.fc_lo = np.zeros(self.N), np.inf, 0.0
        self.backhaul = np.zeros((self.N, self.M))     # s, fixed per (user, server)
        if self.three:   # cloud GPU: E = M streams of F_c/M, the users of edge m share theirs (tier.py)
            cl = variant.block("cloud")
            self.tC = cl.per_layer(inst)[0]                                   # s·GHz per layer
            self.slot, self.fc_lo = cl.slot_GHz(inst), float(cl.p["fc_min_GHz"])
            self.backhaul = 2 * np.asarray(llm["activations_Mbit"], float)[:, None] / np.asarray(
                inst.block("cloud")["backhaul_Mbps"], float)[None, :]
        ws_ = self.Y - self.alphas                    # the stability term's Υ − α
        with np.errstate(divide="ignore"):
            stab = np.where(ws_ > 0, self.stab_c[:, None] * self.Y / np.where(ws_ > 0, ws_, 1.0)[None, :],
                            np.where(self.stab_c[:, None] > 0, np.inf, 0.0))
        self.user_part_free = self.alphas[None, :] * self.A[:, None] + stab    # before the split caps
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
        # SplitLLM's per-tier memory (tier_memory): edge (N, M, K) and cloud (N, K) caps on the cut pairs
        self.tier_memory_ok = np.ones((self.N, self.M, self.K), bool)
        if inst.has_block("tier_memory"):
            from mecsplit.blocks.memory import caps_enforced, tier_coef
            if caps_enforced(inst, "servers"):   # one stream per edge (no memory_scheme block: Data refuses it)
                e_l, e_0, c_l, c_0 = tier_coef(inst)
                cap_e = np.asarray(inst.block("tier_memory")["edge_M_max_GB"], float)
                edge = e_l[:, None, None] * w[None, None, :] + e_0[:, None, None] <= cap_e[None, :, None] * (1 + 1e-12)
                cloud = (c_l[:, None] * self.wc[None, :] + c_0[:, None]
                         <= float(variant.block("tier_memory").p["cloud_M_max_GB"]) * (1 + 1e-12))
                self.tier_memory_ok = edge & cloud[:, None, :]
        # the split bounds every block and the variant's added α / memory bounds put on each user
        self.constrain(alpha_lo=C.alpha_lo, alpha_hi=C.alpha_hi)

    def constrain(self, deadline_s=None, rate_min_Mbps=None, max_users=None, alpha_hi=None, alpha_lo=None):
        """Set the per-user / per-server constraints (issue 15 §5) and what derives from them. Fields:

        * ``deadline_s`` (N,) s — delay_n ≤ deadline_s[n], delay_n the user's delay-ledger total (inf: none);
        * ``rate_min_Mbps`` (N,) Mbit/s — r_n(p_n, b_n) ≥ rate_min_Mbps[n] (0: none);
        * ``max_users`` (M,) — n_users(m) ≤ max_users[m] (inf: none);
        * ``alpha_hi`` (N,) layer — α_n ≤ alpha_hi[n] (memory caps, split_bounds; inf: none);
        * ``alpha_lo`` (N,) layer — α_n ≥ alpha_lo[n] (−inf: none).

        A field left ``None`` keeps its value (first call: no constraint)."""
        N, M = self.N, self.M
        get = lambda v, name, dflt, n: (np.broadcast_to(np.asarray(v, float), (n,)).copy() if v is not None
                                        else getattr(self, name, np.full(n, dflt)))
        self.deadline_s = get(deadline_s, "deadline_s", np.inf, N)
        self.rate_min_Mbps = get(rate_min_Mbps, "rate_min_Mbps", 0.0, N)
        self.max_users = get(max_users, "max_users", np.inf, M)
        self.alpha_hi = get(alpha_hi, "alpha_hi", np.inf, N)
        self.alpha_lo = get(alpha_lo, "alpha_lo", -np.inf, N)
        for name in ("deadline_s", "rate_min_Mbps", "max_users", "alpha_hi", "alpha_lo"):
            if np.any(np.isnan(getattr(self, name))):
                raise InputError("<exact>", name, "contains NaN", "numbers (inf: no constraint)")
        if np.any(self.rate_min_Mbps < 0) or np.any(self.max_users < 0) or np.any(self.deadline_s <= 0):
            raise InputError("<exact>", "constraints", "negative rate floor / user cap or non-positive deadline",
                             "deadline_s > 0, rate_min_Mbps >= 0, max_users >= 0")
        # splits above the cap are not options
        inside = ((self.alphas[None, :] <= self.alpha_hi[:, None] + 1e-9)
                  & (self.alphas[None, :] >= self.alpha_lo[:, None] - 1e-9))
        self.user_part = np.where(inside, self.user_part_free, np.inf)
        self.k_hi = np.maximum(K_last(self.user_part), 0)
        self.k_lo = np.argmax(np.isfinite(self.user_part), axis=1)
        # most users a server can take: every user needs fe ≥ fe_lo and b ≥ b_lo of its budgets, and the cap
        self.user_cap = np.minimum(np.minimum(np.floor(self.F / self.fe_lo + 1e-9), np.floor(self.B / self.b_lo + 1e-9)),
                                   self.max_users)
        # rate floor: smallest bandwidth reaching rate_min at p_max on each server (inf: unreachable)
        self.rmin = self.rate_min_Mbps
        self.b_floor = b_for_rate(self.a, self.p_hi[:, None], self.rmin[:, None], self.b_lo, self.B[None, :])
        self.has_deadline = bool(np.any(np.isfinite(self.deadline_s)))
        # an option (n, m, k) is possible when its rate floor is reachable and, with every resource at its
        # largest (f_max, fe = F_m, p_max, b = B_m), its delay meets the deadline
        rmax = rate(self.p_hi[:, None], self.B[None, :], self.a)
        with np.errstate(divide="ignore", invalid="ignore"):
            dmin = (self.alphas[None, None, :] * (self.tU / self.f_max)[:, None, None]
                    + self.w[None, None, :] * self.tE[:, :, None] / self.F[None, :, None]
                    + np.where(self.s_delay[:, None] > 0, self.s_delay[:, None] / rmax, 0.0)[:, :, None]
                    + self.backhaul[:, :, None] + (self.wc[None, :] * self.tC[:, None] / self.slot)[:, None, :])
        self.min_delay = dmin                                             # (N, M, K) s
        self.possible = (np.isfinite(self.b_floor)[:, :, None] & np.isfinite(self.user_part)[:, None, :]
                         & (dmin <= self.deadline_s[:, None, None]) & self.tier_memory_ok)
        return self

    def uplink(self, n, m, lam, nu=0.0, near=None):
        """The uplink subproblem (uplink_solve) of users ``n`` on servers ``m`` (index arrays that
        broadcast) at bandwidth prices ``lam``, with this data's bounds and rate floors; ``nu`` (s⁻¹ in
        objective units) raises the delay weight by a deadline multiplier (joint.py); ``near``: guesses
        of the bandwidths (uplink_solve)."""
        return uplink_solve(self.a[n, m], self.c0[n] + nu * self.s_delay[n], self.c1[n], lam, self.p_lo[n], self.p_hi[n],
                            self.b_floor[n, m], self.B[m], self.rmin[n], near)

    def shifted(self, delta):
        """A copy whose per-option constants are ``user_part + delta`` ((N, K)); everything else shared."""
        out = copy.copy(self)
        out.user_part = self.user_part + delta
        out.user_part_free = self.user_part_free + delta
        return out


# ------------------------------------------------------------------------------------------------
def root_inc(g, lo, hi, rtol=1e-14, maxit=200, atol=0.0, bisect=0):
    """Vectorised root of increasing functions on brackets [lo, hi] (flat arrays), Illinois method.

    ``g(x, sel)`` evaluates the functions with indices ``sel`` at ``x``. Where g(lo) ≥ 0 the answer is
    lo; where g(hi) ≤ 0 it is hi (the constrained minimiser of the convex primitive). ``bisect`` plain
    bisection steps come first: they localise roots of functions that are flat near the bracket's ends
    (sums of clipped terms), where secant steps crawl."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    idx = np.arange(lo.size)
    glo, ghi = g(lo, idx), g(hi, idx)
    x = np.where(glo >= 0, lo, hi)
    act = np.nonzero((glo < 0) & (ghi > 0))[0]
    a, b, fa, fb = lo[act], hi[act], glo[act], ghi[act]
    side = np.zeros(act.size, dtype=np.int8)
    for it in range(maxit):
        if act.size == 0:
            break
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            c = (a * fb - b * fa) / (fb - fa)
        bad = ~((c > a) & (c < b)) | (it < bisect)
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


def root_near(g, lo, hi, centre, half, **kw):
    """root_inc first on [centre − half, centre + half] ∩ [lo, hi] where ``centre`` is finite (a guess).
    A root that ended on a narrowed end lies beyond it (g is increasing: g ≥ 0 at the lower end, ≤ 0 at
    the upper one), so those functions are solved again on the rest of [lo, hi] on that side."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    known = np.isfinite(centre)
    nlo = np.where(known, np.maximum(centre - half, lo), lo)
    nhi = np.where(known, np.minimum(centre + half, hi), hi)
    x = root_inc(g, nlo, nhi, **kw)
    below, above = (x <= nlo) & (nlo > lo), (x >= nhi) & (nhi < hi)
    out = np.nonzero(below | above)[0]
    if out.size:
        b = below[out]
        x[out] = root_inc(lambda v, sel: g(v, out[sel]), np.where(b, lo[out], nhi[out]), np.where(b, nlo[out], hi[out]),
                          **kw)
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


NEAR = 0.05   # half-width (log b) of uplink_solve's first bracket around a guess


def p_star(b, a, c0, c1, plo, phi, rmin=0.0):
    """argmin_{p∈[plo,phi]} (c0 + c1 p)/r(p, b) for fixed b (quasi-convex in p), with the rate floor
    r(p, b) ≥ rmin as the lower bound p ≥ p_rate(b) (it is increasing in p)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(c1 > 0, a * c0 / np.where(c1 > 0, c1, 1.0) / b, 0.0)
        z = _psi_inv(v)
        p = np.where(c1 > 0, b * z / a, phi)
    return np.clip(np.maximum(p, p_rate(b, a, rmin)), plo, phi)


def p_rate(b, a, rmin):
    """Smallest power (W) with r(p, b) ≥ rmin (Mbit/s): p = b(2^{rmin/b} − 1)/a (0 without a floor)."""
    with np.errstate(over="ignore"):
        return b * np.expm1(LN2 * rmin / b) / a


def rate(p, b, a):
    return b * np.log1p(a * p / b) / LN2


def b_for_rate(a, p, y, blo, bhi):
    """Smallest b in [blo, bhi] with r(p, b) ≥ y (r increases in b): blo where r(p, blo) ≥ y already,
    +inf where even r(p, bhi) < y. Elementwise; a monotone root in log b."""
    A, P, Y, Lo, Hi = (np.ascontiguousarray(v, dtype=float).ravel() for v in np.broadcast_arrays(a, p, y, blo, bhi))
    shape = np.broadcast_shapes(*(np.shape(v) for v in (a, p, y, blo, bhi)))
    out = np.where(rate(P, Lo, A) >= Y, Lo, np.where(rate(P, Hi, A) >= Y, np.nan, np.inf))
    act = np.nonzero(np.isnan(out))[0]
    if act.size:
        g = lambda yb, s: rate(P[act[s]], np.exp(yb), A[act[s]]) - Y[act[s]]
        out[act] = np.exp(root_inc(g, np.log(Lo[act]), np.log(Hi[act]), rtol=0.0, atol=1e-13)) * (1 + 1e-13)
        out[act] = np.minimum(out[act], Hi[act])
    return out.reshape(shape)


def uplink_solve(a, c0, c1, lam, plo, phi, blo, bhi, rmin=0.0, near=None):
    """min_{p,b} (c0 + c1 p)/r(p, b) + λ b over the box (λ ≥ 0) with r(p, b) ≥ rmin, elementwise.
    Returns (value, p, b); value +inf where blo > bhi (the rate floor cannot be met: see Data.b_floor).
    ``near`` (optional, > 0 where known): guesses of the optimal b; the root is first looked for within
    ±NEAR (in log b) of them (root_near).

    The floor keeps the problem convex in (log p, log b) ({1/r ≤ 1/rmin} is a sublevel set of a
    convex function there), so Φ(log b) = min_p(...) is convex; where p sits on the floor p_rate(b)
    the derivative of Φ follows that curve (total derivative), elsewhere ∂/∂p = 0 or p is at a
    constant bound (envelope theorem)."""
    arrs = np.broadcast_arrays(a, c0, c1, lam, plo, phi, blo, bhi, rmin)
    shape = arrs[0].shape
    A, C0, C1, Lm, Plo, Phi, Blo, Bhi, Rm = (np.ascontiguousarray(v, dtype=float).ravel() for v in arrs)
    bad = ~(Blo <= Bhi)
    Blo = np.where(bad, Bhi, Blo)
    floor = Rm > 0

    def g(y, s):  # dΦ/dlog b, increasing in y = log b
        b = np.exp(y)
        p = p_star(b, A[s], C0[s], C1[s], Plo[s], Phi[s], Rm[s])
        z = A[s] * p / b
        r = b * np.log1p(z) / LN2
        rb = (np.log1p(z) - z / (1 + z)) / LN2
        out = b * (-(C0[s] + C1[s] * p) * rb / (r * r) + Lm[s])
        fl = floor[s]
        if fl.any():   # on the floor p = p_rate(b): add ∂obj/∂p · dp_rate/db
            R = Rm[s]
            pr = p_rate(b, A[s], R)
            on = fl & (pr >= p) & (pr < Phi[s])
            if on.any():
                rp = A[s] / ((1 + z) * LN2)
                dobj_dp = (C1[s] * r - (C0[s] + C1[s] * p) * rp) / (r * r)
                e = np.exp(LN2 * R / b)
                dpr = ((e - 1) - (LN2 * R / b) * e) / A[s]
                out = np.where(on, out + b * dobj_dp * dpr, out)
        return out

    with np.errstate(divide="ignore"):   # no guess (near ≤ 0 or None): −inf, the whole box
        centre = np.full(A.size, -np.inf) if near is None else np.log(np.broadcast_to(near, shape).ravel())
    y = root_near(g, np.log(Blo), np.log(Bhi), centre, NEAR, rtol=0.0, atol=1e-9)  # value error O(1e-18)
    b = np.exp(y)
    b = np.clip(b, Blo, Bhi)
    p = p_star(b, A, C0, C1, Plo, Phi, Rm)
    val = (C0 + C1 * p) / rate(p, b, A) + Lm * b
    val = np.where(bad, np.inf, val)
    return val.reshape(shape), p.reshape(shape), b.reshape(shape)
