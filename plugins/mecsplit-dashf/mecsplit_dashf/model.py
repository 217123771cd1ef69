"""Numpy view of the ``dashf-2024`` family for the DASHF solver (model units: TFLOP, GHz, MHz, Mbit,
W, s, J).

Cost of user n on server m (the Liu–Zhao shape with no stability term; coefficients from
:mod:`mecsplit_liuzhao.model`, weights ω of the variant)::

    C_n = α A_n(f) + (Υ−α) B_nm(fe) + U_nm(p, b)         = ω_t T_n + ω_e E_n
    Q_n = w_n (q0 + g(α_n))   or   w_n (q0 + g(r_nm))    (service_quality block)
    objective = Σ C / Σ Q;   Dinkelbach subproblem  G_λ = Σ C − λ Σ Q

Block 1 (association + offloading ratio) sees, for fixed p, f, the current (fe, b) on the user's own
server and tentative shares fe_nm = F_m/(load_m + 1), b_nm likewise on the others (the equal share
user n would get if it joined m)::

    φ_nm(α) = K_nm + D_nm α − λ Q_n(α),   K_nm = Υ B_nm + U_nm,  D_nm = A_n − B_nm
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from mecsplit.errors import InputError

CORE = ("llm", "association", "user_compute", "edge_compute", "uplink", "service_quality")


def _liuzhao():
    try:
        from mecsplit_liuzhao import fp, model
    except ImportError:  # pragma: no cover - dependency missing
        raise InputError("<plugin>", "mecsplit-dashf", "needs the Liu–Zhao FP resource step",
                         "pip install -e plugins/mecsplit-liuzhao") from None
    return fp, model


def check_supported(variant, where: str = "<variant>") -> None:
    if variant.objective.kind != "cost_per_quality":
        raise InputError(where, "objective.kind", f"got {variant.objective.kind!r}", "'cost_per_quality' (DASHF)")
    for b in CORE:
        if not variant.has_block(b):
            raise InputError(where, f"blocks.{b}", "missing", "the blocks " + ", ".join(CORE))
    if variant.has_block("stability"):
        raise InputError(where, "blocks.stability", "present", "enabled = false (DASHF has no stability term)")
    if variant.block("llm").p["split"] != "continuous":
        raise InputError(where, "blocks.llm.split", "got 'integer'", "'continuous' (the offloading ratio)")
    if variant.block("uplink").p["upload"] == "external":
        raise InputError(where, "blocks.uplink.upload", "got 'external'", "'tokens' | 'activations'")


@dataclass
class PairData:
    """Block-1 data for every (user, server) pair at fixed p, f and tentative shares."""

    K: np.ndarray        # (N, M) cost at α = 0
    D: np.ndarray        # (N, M) dC/dα = A_n − B_nm
    Qr: np.ndarray | None  # (N, M) quality per pair (rate kinds), None for α kinds
    fe: np.ndarray       # (N, M) tentative GPU shares, GHz
    b: np.ndarray        # (N, M) tentative bandwidth, MHz


class Dashf:
    """Costs, quality, ratio and the Dinkelbach subobjective of a dashf-family instance."""

    def __init__(self, variant, inst):
        check_supported(variant, str(variant.path))
        fp, lzm = _liuzhao()
        self.fp_resources, self.Coefs = fp.fp_resources, lzm.Coefs
        self.variant, self.inst = variant, inst
        om = variant.objective.omega(inst)
        omega = {"delay": om["delay"], "energy": om["energy"], "stability": 0.0}
        try:  # the FP step's own hook for ratio objectives: weights given, any objective kind accepted
            P = lzm.pairs(variant, inst, omega=omega)
        except TypeError:  # older mecsplit-liuzhao: a weighted-sum copy of the variant, same ω_t, ω_e
            w = dict(variant.objective.weights)
            v_ws = variant.with_overrides({"objective": {"kind": "weighted_sum",
                                                         "weights": {"delay": w["delay"], "energy": w["energy"], "stability": 0.0}}})
            P = lzm.pairs(v_ws, inst)
        self.P = dataclasses.replace(P, c_stab=np.zeros(inst.N), om={"delay": P.om["delay"], "energy": P.om["energy"], "stability": 0.0})
        self.Y = P.Y
        self.lo, self.hi = float(P.alpha_lo), float(P.alpha_hi)
        self.sq = variant.block("service_quality")
        self.kind_dep = self.sq.depends_on()
        self.w = np.asarray(inst.block("service_quality")["weight"], float)
        self.q0 = float(self.sq.p["base"])
        self.N, self.M = inst.N, inst.M
        self.fp_calls = 0

    # --- objective pieces -------------------------------------------------------------------------
    def cost_user(self, server, x) -> np.ndarray:
        """ω_t T_n + ω_e E_n (no stability term: Coefs.H_user would add 0·∞ at α = Υ)."""
        C, a = self.Coefs.of(self.P, server), x["alpha"]
        return a * C.A(x["f_GHz"]) + (self.Y - a) * C.B(x["fe_GHz"]) + C.U(x["p_W"], x["b_MHz"])

    def rate(self, server, x) -> np.ndarray:
        return self.Coefs.of(self.P, server).rate(x["p_W"], x["b_MHz"])

    def quality_user(self, server, x) -> np.ndarray:
        if self.kind_dep == "alpha":
            return self.sq.quality(self.inst, alpha=x["alpha"])
        return self.sq.quality(self.inst, rate=self.rate(server, x))

    def parts(self, server, x) -> tuple[float, float]:
        return float(np.sum(self.cost_user(server, x))), float(np.sum(self.quality_user(server, x)))

    def ratio(self, server, x) -> float:
        c, q = self.parts(server, x)
        return c / q

    def G(self, server, x, lam: float) -> float:
        c, q = self.parts(server, x)
        return c - lam * q

    # --- α steps ----------------------------------------------------------------------------------
    def best_alpha(self, D: np.ndarray, lam: float, Qr: np.ndarray | None = None) -> np.ndarray:
        """argmin_α D α − λ Q(α) over [lo, hi], elementwise (D of any shape whose last axis is users
        when 1-D, or (N, M)). α-kinds: convex 1-D (g concave), bisection on the derivative; rate
        kinds: Q does not depend on α, so α sits at a bound."""
        D = np.asarray(D, float)
        if self.kind_dep == "rate" or lam <= 0:
            return np.where(D > 0, self.lo, self.hi)
        w = self.w if D.ndim == 1 else self.w[:, None]
        d1 = lambda a: D - lam * w * self.sq.g_alpha(a, self.Y, 1)
        a, b = np.full(D.shape, self.lo), np.full(D.shape, self.hi)
        at_lo, at_hi = d1(a) >= 0, d1(b) <= 0
        for _ in range(80):
            mid = 0.5 * (a + b)
            pos = d1(mid) > 0
            b = np.where(pos, mid, b)
            a = np.where(pos, a, mid)
        return np.where(at_lo, self.lo, np.where(at_hi, self.hi, 0.5 * (a + b)))

    def alpha_step(self, server, x, lam: float) -> np.ndarray:
        """Exact α for fixed association and resources: minimises G_λ in α (separable)."""
        C = self.Coefs.of(self.P, server)
        D = C.A(x["f_GHz"]) - C.B(x["fe_GHz"])
        return self.best_alpha(D, lam)

    # --- resources (the shared FP step) -----------------------------------------------------------
    def resources(self, server, alpha, start=None, scale: float = 1.0, tol: float = 1e-9, max_iter: int = 300):
        """Resources for a fixed association and α by the Liu–Zhao FP step (fixed α). Inside Dinkelbach
        the subproblem min ΣC − λΣQ has, in the resource block, the Liu–Zhao weighted-sum shape (Q does
        not depend on resources for the α-kinds); ``scale`` multiplies ω (the SCR-form weights μω with
        μ = 1/λ), which leaves the argmin unchanged. α is clipped into the open interval the FP needs
        (α = 0 or Υ make its auxiliaries infinite) and restored afterwards."""
        eps = 1e-6 * self.Y
        P = dataclasses.replace(self.P, om={k: scale * v for k, v in self.P.om.items()},
                                alpha_lo=max(self.lo, eps), alpha_hi=min(self.hi, self.Y - eps))
        a = np.asarray(alpha, float)
        st = None
        if start is not None:
            st = {k: np.asarray(start[k], float) for k in ("f_GHz", "fe_GHz", "p_W", "b_MHz")}
        res = self.fp_resources(self.variant, self.inst, np.asarray(server, int), np.clip(a, P.alpha_lo, P.alpha_hi),
                                start=st, fix_alpha=True, tol=tol, max_iter=max_iter, P=P)
        self.fp_calls += 1
        x = {k: np.asarray(v, float).copy() for k, v in res.x.items()}
        x["alpha"] = a.copy()
        return x, res.iterations

    # --- block-1 data -----------------------------------------------------------------------------
    def pair_data(self, server, x, lam: float, pricing: str = "prices", grid: int = 65) -> PairData:
        """Block-1 pair data. ``pricing``:

        * "shares": fe_nm, b_nm = the current values on the user's own server, the equal share
          F_m/(load_m + 1), B_m/(load_m + 1) on the others;
        * "prices" (default): Lagrangian pricing of the two budgets. μ_m (GPU, per GHz) and ν_m
          (bandwidth, per MHz) are the budget multipliers at the current resources (0 when a budget is
          slack or the server is empty); a user on server m pays μ_m fe + ν_m b and picks
          b_nm = argmin U_nm(p_n, b) + ν_m b and, for the α it would choose (grid search over α of the
          priced, exact-quality pair cost, α̂_nm), fe_nm = argmin (Υ−α̂)B_nm(fe) + μ_m fe. The pair cost
          K + Dα with those (fe_nm, b_nm) fixed is the tangent at α̂ of the (concave in α) priced cost,
          so it majorises it and is tight at α̂ (envelope theorem).
        """
        P = self.P
        s = np.asarray(server, int)
        rows = np.arange(self.N)
        om_t, om_e = P.om["delay"], P.om["energy"]
        wt = om_t if P.delay else 0.0
        L2 = np.log(2.0)
        A = om_t * P.a_T / x["f_GHz"] + om_e * P.a_E * x["f_GHz"] ** 2
        p = x["p_W"][:, None]
        if pricing == "shares":
            load = np.bincount(s, minlength=self.M).astype(float)
            join = load[None, :] + (np.arange(self.M)[None, :] != s[:, None])
            fe = np.maximum(P.F[None, :] / join, P.fe_lo)
            b = np.maximum(P.Bw[None, :] / join, P.b_lo)
            fe[rows, s], b[rows, s] = x["fe_GHz"], x["b_MHz"]
            mu = nu = np.zeros(self.M)
        else:
            mu, nu = self.prices(s, x)
            Fhi = np.broadcast_to(P.F[None, :], (self.N, self.M))
            Bhi = np.broadcast_to(P.Bw[None, :], (self.N, self.M))
            # b_nm: U convex decreasing in b (1/r, r concave increasing): bisection on dU/db + ν = 0
            c = (om_e * p + wt) * P.s[:, None]

            def dU(bb):
                u = P.snr * p / bb
                r = bb * np.log1p(u) / L2
                rb = (np.log1p(u) - u / (1 + u)) / L2
                return -c * rb / r**2 + nu[None, :]

            b = _bisect_increasing(dU, np.full((self.N, self.M), P.b_lo), Bhi.copy())
            # α̂_nm on a grid; fe*(α) = argmin (Υ−α)B(fe) + μ fe (convex in fe)
            ag = np.linspace(self.lo, self.hi, grid)
            eT, eE = P.e_T[:, :, None], P.e_E[:, :, None]
            rem = (self.Y - ag)[None, None, :]

            def dB(fe):
                return rem * (-om_t * eT / fe**2 + 2 * om_e * eE * fe) + mu[None, :, None]

            shape = (self.N, self.M, grid)
            feg = _bisect_increasing(dB, np.full(shape, P.fe_lo), np.broadcast_to(P.F[None, :, None], shape).copy())
            Bg = om_t * eT / feg + om_e * eE * feg**2
            cost = ag[None, None, :] * A[:, None, None] + rem * Bg + mu[None, :, None] * feg
            if self.kind_dep == "alpha":
                cost = cost - lam * self.w[:, None, None] * (self.q0 + self.sq.g_alpha(ag, self.Y))[None, None, :]
            k = np.argmin(cost, axis=2)
            fe = np.take_along_axis(feg, k[:, :, None], axis=2)[:, :, 0]
        B = om_t * P.e_T / fe + om_e * P.e_E * fe**2
        r = b * np.log1p(P.snr * p / b) / L2
        U = (om_e * p + wt) * P.s[:, None] / r
        K = self.Y * B + U + mu[None, :] * fe + nu[None, :] * b
        Qr = None
        if self.kind_dep == "rate":
            Qr = self.w[:, None] * (self.q0 + self.sq.g_rate(r))
            K = K - lam * Qr
        return PairData(K=K, D=A[:, None] - B, Qr=Qr, fe=fe, b=b)

    def prices(self, server, x) -> tuple[np.ndarray, np.ndarray]:
        """Budget multipliers (μ_m per GHz, ν_m per MHz) read off the current resources: the median of
        the marginal savings −∂cost/∂fe, −∂cost/∂b over the server's users with interior values; 0 for
        a slack budget or an empty server."""
        P = self.P
        s = np.asarray(server, int)
        om_t, om_e = P.om["delay"], P.om["energy"]
        wt = om_t if P.delay else 0.0
        C = self.Coefs.of(P, s)
        a, fe, p, b = x["alpha"], x["fe_GHz"], x["p_W"], x["b_MHz"]
        g_fe = (self.Y - a) * (om_t * C.e_T / fe**2 - 2 * om_e * C.e_E * fe)
        u = C.snr * p / b
        r = b * np.log1p(u) / np.log(2.0)
        g_b = (om_e * p + wt) * P.s * (np.log1p(u) - u / (1 + u)) / np.log(2.0) / r**2
        mu, nu = np.zeros(self.M), np.zeros(self.M)
        for m in range(self.M):
            on = s == m
            if not on.any():
                continue
            if np.sum(fe[on]) >= P.F[m] * (1 - 1e-6):
                sel = on & (fe > P.fe_lo * (1 + 1e-9)) & (fe < P.F[m] * (1 - 1e-9)) & (a < self.Y * (1 - 1e-9))
                mu[m] = max(float(np.median(g_fe[sel])), 0.0) if sel.any() else 0.0
            if np.sum(b[on]) >= P.Bw[m] * (1 - 1e-6):
                sel = on & (b > P.b_lo * (1 + 1e-9)) & (b < P.Bw[m] * (1 - 1e-9))
                nu[m] = max(float(np.median(g_b[sel])), 0.0) if sel.any() else 0.0
        return mu, nu

    def phi(self, pdat: PairData, alpha: np.ndarray, lam: float) -> np.ndarray:
        """φ_nm(α) for α of shape (N, M) (exact quality, the block-1 objective per pair)."""
        val = pdat.K + pdat.D * alpha
        if self.kind_dep == "alpha":
            val = val - lam * self.w[:, None] * (self.q0 + self.sq.g_alpha(alpha, self.Y))
        return val

    def quad_majoriser(self, alpha0: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """−λ Q_n(α) ≤ qa α² + qb α + qc on [lo, hi] (tight at α0): Q concave with |Q''| ≤ L_n on the
        box, so Q(α) ≥ Q(α0) + Q'(α0)(α−α0) − L_n/2 (α−α0)². Makes block 1 a QCQP."""
        if self.kind_dep == "rate":
            z = np.zeros(self.N)
            return z, z, z
        g2 = np.maximum(np.abs(self.sq.g_alpha(self.lo, self.Y, 2)), np.abs(self.sq.g_alpha(self.hi, self.Y, 2)))
        L = self.w * g2
        Q0 = self.w * (self.q0 + self.sq.g_alpha(alpha0, self.Y))
        Q1 = self.w * self.sq.g_alpha(alpha0, self.Y, 1)
        qa = lam * L / 2
        qb = -lam * Q1 - lam * L * alpha0
        qc = -lam * (Q0 - Q1 * alpha0 - L / 2 * alpha0**2)
        return qa, qb, qc


def _bisect_increasing(d1, lo, hi, iters: int = 70):
    """Elementwise root of an increasing d1 on [lo, hi] (bound when d1 has one sign); geometric
    midpoints (the variables span decades)."""
    at_lo, at_hi = d1(lo) >= 0, d1(hi) <= 0
    a, b = lo.copy(), hi.copy()
    for _ in range(iters):
        mid = np.sqrt(a * b)
        pos = d1(mid) > 0
        b = np.where(pos, mid, b)
        a = np.where(pos, a, mid)
    return np.where(at_lo, lo, np.where(at_hi, hi, np.sqrt(a * b)))
