"""Step A of Liu & Zhao: the FP resource step for a fixed association (spec §1.8–1.9).

Surrogate P4 with auxiliary z, ν, q (closed-form updates, eq. 13 and below)::

    K = Σ α² z + A(f)²/(4z) + (Υ−α)² q + B(fe)²/(4q) + ω_e[(p s)² ν + 1/(4 ν r²)] + δ ω_t s/r + ω_s cΥ/(Υ−α)
    z = A/(2α),  q = B/(2(Υ−α)),  ν = 1/(2 p s r)          (at these, K = H and ∇K = ∇H)

(the uplink delay δ ω_t s/r of the default variant is already convex — r is jointly concave — and is
kept as is). For fixed (z, ν, q), P4 separates into blocks that are solved **exactly by KKT, in
numpy** (no Ipopt; measured in docs/liuzhao.md):

* α: ψ(α) = α² z + (Υ−α)² q + ω_s cΥ/(Υ−α), 1-D convex -> safeguarded Newton;
* f: argmin A(f)² = argmin A(f): closed form f* = (ω_t a_T/(2 ω_e a_E))^{1/3}, clipped;
* fe: Σ B(fe)²/(4q) with the per-server GPU budget -> one multiplier per server (Newton on the
  multiplier, per-user Newton inside; :func:`mecsplit_liuzhao.oned.budget_solve`);
* (p, b): jointly convex; exact block-coordinate passes p | b (p per user, b with the bandwidth
  budget multiplier). Each pass minimises K exactly in its block, so K never increases.

The outer iteration stops when H (= K at the updated auxiliaries) changes by less than ``tol``
(relative); Proposition 1: the limit is a KKT point of P3. α is relaxed to [α_min, α_max], then
rounded to the nearest integer and the resources re-optimised with α fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .model import VARS, Coefs, Pairs, equal_shares, f_star, pairs, to_solution
from .oned import budget_solve, root_increasing

EPS = 1e-300


@dataclass
class FPResult:
    server: np.ndarray
    x: dict                       # final values (α integer when the variant's split is integer)
    objective: float              # H at x (= the evaluator's objective)
    relaxed: dict                 # the FP limit with α relaxed
    relaxed_objective: float
    surrogate: list = field(default_factory=list)  # K after each block update, in order (non-increasing)
    iterations: int = 0           # FP iterations (relaxed run + re-optimisation run)
    converged: bool = False
    kkt: dict | None = None       # KKT residual of P3 at the relaxed limit (see mecsplit_liuzhao.kkt)

    @property
    def solution(self) -> dict:
        return to_solution(self.server, self.x)


def surrogate_K(C: Coefs, x, aux) -> float:
    """P4 objective (13) at x for fixed auxiliaries aux = (z, ν, q)."""
    P = C.P
    z, nu, q = aux
    a, f, fe, p, b = (x[k] for k in VARS)
    r = C.rate(p, b)
    up = P.om["energy"] * ((p * P.s) ** 2 * nu + 1 / (4 * r**2 * nu))
    if P.delay:
        up = up + P.om["delay"] * P.s / r
    return float(np.sum(a**2 * z + C.A(f) ** 2 / (4 * z) + (P.Y - a) ** 2 * q + C.B(fe) ** 2 / (4 * q) + up + C.stab(a)))


def aux_update(C: Coefs, x):
    """Closed-form z, ν, q (spec §1.8) — K = H at these."""
    a, f, fe, p, b = (x[k] for k in VARS)
    z = C.A(f) / (2 * a)
    q = C.B(fe) / (2 * (C.P.Y - a))
    nu = 1 / (2 * p * C.P.s * C.rate(p, b))
    return z, nu, q


def _alpha_block(C: Coefs, x, z, q):
    P = C.P
    c, Y = P.c_stab, P.Y
    d1 = lambda a: 2 * a * z - 2 * (Y - a) * q + c * Y / (Y - a) ** 2
    d2 = lambda a: 2 * z + 2 * q + 2 * c * Y / (Y - a) ** 3
    return root_increasing(d1, d2, np.full(P.N, P.alpha_lo), np.full(P.N, P.alpha_hi), 0.0, x["alpha"])


def _fe_block(C: Coefs, x, q):
    P = C.P
    wt, we = P.om["delay"], P.om["energy"]
    eT, eE = C.e_T, C.e_E

    def d1(fe):
        B = wt * eT / fe + we * eE * fe**2
        return B * (-wt * eT / fe**2 + 2 * we * eE * fe) / (2 * q)

    def d2(fe):
        B = wt * eT / fe + we * eE * fe**2
        Bp = -wt * eT / fe**2 + 2 * we * eE * fe
        return (Bp**2 + B * (2 * wt * eT / fe**3 + 2 * we * eE)) / (2 * q)

    fe, _ = budget_solve(d1, d2, P.fe_lo, C.fe_hi, C.server, P.F, P.fe_eq, x["fe_GHz"])
    return fe


def _W(C: Coefs, nu):
    """W(r) = ω_e/(4ν r²) + δ ω_t s/r and its first two derivatives in r."""
    P = C.P
    we, wt = P.om["energy"], (P.om["delay"] if P.delay else 0.0)
    s = P.s
    W1 = lambda r: -we / (2 * nu * r**3) - wt * s / r**2
    W2 = lambda r: 3 * we / (2 * nu * r**4) + 2 * wt * s / r**3
    return W1, W2


def _p_block(C: Coefs, x, nu):
    P = C.P
    W1, W2 = _W(C, nu)
    a, b = C.snr, x["b_MHz"]
    k = 2 * P.om["energy"] * P.s**2 * nu
    L = np.log(2.0)

    def parts(p):
        xx = a * p / b
        r = b * np.log1p(xx) / L
        rp = a / (L * (1 + xx))
        rpp = -a**2 / (L * b * (1 + xx) ** 2)
        return r, rp, rpp

    def d1(p):
        r, rp, _ = parts(p)
        return k * p + W1(r) * rp

    def d2(p):
        r, rp, rpp = parts(p)
        return k + W2(r) * rp**2 + W1(r) * rpp

    return root_increasing(d1, d2, np.full(P.N, P.p_lo), P.p_hi, 0.0, x["p_W"])


def _b_block(C: Coefs, x, nu):
    P = C.P
    W1, W2 = _W(C, nu)
    a, p = C.snr, x["p_W"]
    L = np.log(2.0)

    def parts(b):
        xx = a * p / b
        r = b * np.log1p(xx) / L
        rb = (np.log1p(xx) - xx / (1 + xx)) / L
        rbb = -xx**2 / (L * b * (1 + xx) ** 2)
        return r, rb, rbb

    def d1(b):
        r, rb, _ = parts(b)
        return W1(r) * rb

    def d2(b):
        r, rb, rbb = parts(b)
        return W2(r) * rb**2 + W1(r) * rbb

    b, _ = budget_solve(d1, d2, P.b_lo, C.b_hi, C.server, P.Bw, P.b_eq, x["b_MHz"])
    return b


def fp_iterate(C: Coefs, x, fix_alpha=False, tol=1e-9, max_iter=300, pb_passes=1, trace=None):
    """AO on P4 from x (feasible); returns (x, iterations, converged). ``trace`` (a list) receives
    K after every block update: H(x^t) = K(x^t; aux^t) ≥ ... ≥ K(x^{t+1}; aux^t) ≥ H(x^{t+1})."""
    x = {k: np.asarray(v, float).copy() for k, v in x.items()}
    x["f_GHz"] = x.get("f_GHz", f_star(C.P))
    H = C.H(x)
    if trace is not None:
        trace.append(H)
    it, converged = 0, False
    for it in range(1, max_iter + 1):
        z, nu, q = aux = aux_update(C, x)
        if not fix_alpha:
            x["alpha"] = _alpha_block(C, x, z, q)
            if trace is not None:
                trace.append(surrogate_K(C, x, aux))
        x["f_GHz"] = f_star(C.P)
        x["fe_GHz"] = _fe_block(C, x, q)
        if trace is not None:
            trace.append(surrogate_K(C, x, aux))
        for _ in range(pb_passes):
            x["p_W"] = _p_block(C, x, nu)
            x["b_MHz"] = _b_block(C, x, nu)
            if trace is not None:
                trace.append(surrogate_K(C, x, aux))
        Hn = C.H(x)
        if trace is not None:
            trace.append(Hn)
        if abs(H - Hn) <= tol * max(abs(Hn), EPS):
            H, converged = Hn, True
            break
        H = Hn
    return x, it, converged


def fp_resources(variant, inst, server, alpha=None, *, start=None, fix_alpha=False, rounding="nearest",
                 tol=1e-9, max_iter=300, pb_passes=1, kkt=False, trace=None, alpha_starts=("given",),
                 P: Pairs | None = None) -> FPResult:
    """The FP resource step (see :func:`fp_single`); with several ``alpha_starts`` ("given" = ``alpha``
    or the start's α, "min" = α_min, "max" = α_max, "mid") it runs one FP per start and keeps the
    best. P3 is bilinear in (α, f_e): FP reaches a KKT point, and which one depends on the start
    (e.g. hardware-2024 has an all-edge and an all-local basin)."""
    best = None
    for i, how in enumerate(alpha_starts if not fix_alpha else ("given",)):
        P = P or pairs(variant, inst)
        a = alpha
        if how == "min":
            a = np.full(P.N, P.alpha_lo)
        elif how == "max":
            a = np.full(P.N, P.alpha_hi)
        elif how == "mid":
            a = np.full(P.N, 0.5 * (P.alpha_lo + P.alpha_hi))
        elif how != "given":
            raise ValueError(f"alpha start {how!r}: expected given | min | max | mid")
        r = fp_single(variant, inst, server, a, start=start, fix_alpha=fix_alpha, rounding=rounding, tol=tol,
                      max_iter=max_iter, pb_passes=pb_passes, kkt=kkt, trace=trace if i == 0 else None, P=P)
        if best is None or r.objective < best.objective:
            if best is not None:
                r.iterations += best.iterations
            best = r
        else:
            best.iterations += r.iterations
    return best


def fp_single(variant, inst, server, alpha=None, *, start=None, fix_alpha=False, rounding="nearest",
              tol=1e-9, max_iter=300, pb_passes=1, kkt=False, trace=None, P: Pairs | None = None) -> FPResult:
    """The FP resource step for the association ``server`` (one server index per user).

    * ``alpha``: split per user (start value; the fixed value when ``fix_alpha``);
    * ``start``: resources to start from (dict with any of f_GHz, fe_GHz, p_W, b_MHz, alpha on the
      same association; must be feasible); default: equal shares, full power, f*, relaxed best α;
    * ``rounding``: "nearest" (the paper) or "exact" (best integer α for the FP resources), then the
      resources are re-optimised with α fixed; ignored when the split is continuous or α is fixed;
    * ``kkt``: also compute the KKT residual of P3 at the relaxed limit (evaluator finite differences);
    * ``trace``: a list that receives the surrogate values (see :func:`fp_iterate`).
    Returns an :class:`FPResult`; ``.solution`` is in the framework's Solution format.
    """
    P = P or pairs(variant, inst)
    server = np.asarray(server, dtype=int)
    C = Coefs.of(P, server)
    x = equal_shares(P, server)
    if start:
        x.update({k: np.asarray(v, float) for k, v in start.items() if k in VARS})
    if alpha is not None:
        x["alpha"] = np.clip(np.asarray(alpha, float), P.alpha_lo, P.alpha_hi)
    x, it1, conv = fp_iterate(C, x, fix_alpha, tol, max_iter, pb_passes, trace)
    relaxed = {k: v.copy() for k, v in x.items()}
    res = FPResult(server, x, C.H(x), relaxed, C.H(relaxed), trace if trace is not None else [], it1, conv)
    if kkt:
        from .kkt import kkt_residual

        res.kkt = kkt_residual(variant, inst, server, relaxed, P=P)
    if P.integer and not fix_alpha:
        if rounding == "exact":
            from .model import best_alpha

            x["alpha"] = best_alpha(C, x, integer=True)
        else:
            x["alpha"] = np.clip(np.rint(x["alpha"]), np.ceil(P.alpha_lo - 1e-9), np.floor(P.alpha_hi + 1e-9))
        x, it2, conv2 = fp_iterate(C, x, True, tol, max_iter, pb_passes, None)
        res.x, res.objective, res.iterations, res.converged = x, C.H(x), it1 + it2, conv and conv2
    elif P.integer:
        x["alpha"] = np.rint(x["alpha"])
        res.x, res.objective = x, C.H(x)
    return res
