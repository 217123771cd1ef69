"""A certified lower bound on the optimal cost/quality ratio λ* (α-kinds of service_quality).

Dinkelbach's characterisation: λ* ≥ λ  ⇔  min_x ΣC(x) − λΣQ(x) ≥ 0. Weak Lagrangian duality on the
two budgets (Σ_{n∈m} fe_n ≤ F_m, Σ_{n∈m} b_n ≤ B_m; multipliers μ, ν ≥ 0) gives, for every λ,

    min_x ΣC − λΣQ  ≥  D(λ, μ, ν) = Σ_n min_m [P1_nm(λ, μ) + P2_nm(ν)] − Σ_m μ_m F_m − Σ_m ν_m B_m

with the per-user, per-server problems (association enumerated, budgets gone)

    P1_nm = min_{α, fe} α A*_n − λ w_n (q0 + g(α)) + (Υ−α) B_nm(fe) + μ_m fe     A*_n = min_f A_n(f) (closed form)
    P2_nm = min_{p, b} s_n (ω_e p + ω_t δ) / r_nm(p, b) + ν_m b

Each is bounded from below *rigorously* on a grid, using only monotonicity/concavity:
* P1: c(α) = min_fe (Υ−α)B(fe) + μ fe is concave in α (a minimum of affine functions), so on
  [α_i, α_{i+1}] it is ≥ min(c(α_i), c(α_{i+1})); α A* ≥ α_i A*; −λ w g(α) ≥ −λ w g(right end) for
  increasing g (left end for decreasing g). c(α_i) itself is bounded below by the convex
  linearisation at the left end of a 1e-13-wide bisection bracket.
* P2: p/r(p, b) increases in p and decreases in b; 1/r decreases in both; so on a grid cell
  [p_i, p_{i+1}] × [b_j, b_{j+1}] the objective is ≥ s ω_e p_i / r(p_i, b_{j+1}) + s ω_t δ / r(p_{i+1}, b_{j+1}) + ν b_j
  (p/r → ln2/snr as p → 0).
So D̲(λ, μ, ν) ≤ D(λ, μ, ν) ≤ min(ΣC − λΣQ), and if D̲(λ, μ, ν) ≥ 0 then λ* ≥ λ. The bound is the
largest such λ found by bisection, for multipliers taken from a good solution (the DASHF prices)
and a few scalings of them. Valid for any association; loose by the grid resolution and the
duality gap.
"""

from __future__ import annotations

import numpy as np

from .model import Dashf


def _f_star_cost(d: Dashf) -> np.ndarray:
    from mecsplit_liuzhao.model import f_star

    P = d.P
    f = f_star(P)
    A = P.om["delay"] * P.a_T / f + P.om["energy"] * P.a_E * f**2
    # f* minimises the convex A over [f_lo, f_hi]; guard against a clipped/approximate value
    ff = np.linspace(P.f_lo, P.f_hi, 2001).T if np.ndim(P.f_hi) else None
    if ff is not None:
        Ag = P.om["delay"] * P.a_T[:, None] / ff + P.om["energy"] * P.a_E[:, None] * ff**2
        A = np.minimum(A, Ag.min(axis=1))
    return A * (1 - 1e-12)


def _conc(d: Dashf, alpha: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Lower bound of c_nm(α) = min_fe (Υ−α) B_nm(fe) + μ_m fe, shape (N, M, G)."""
    P = d.P
    om_t, om_e = P.om["delay"], P.om["energy"]
    eT, eE = P.e_T[:, :, None], P.e_E[:, :, None]
    rem = (d.Y - alpha)[None, None, :]
    mu3 = mu[None, :, None]
    shape = (d.N, d.M, len(alpha))
    lo = np.full(shape, P.fe_lo)
    hi = np.broadcast_to(P.F[None, :, None], shape).copy()

    def val(fe):
        return rem * (om_t * eT / fe + om_e * eE * fe**2) + mu3 * fe

    def der(fe):
        return rem * (-om_t * eT / fe**2 + 2 * om_e * eE * fe) + mu3

    at_lo, at_hi = der(lo) >= 0, der(hi) <= 0
    a, b = lo.copy(), hi.copy()
    for _ in range(200):
        mid = 0.5 * (a + b)
        pos = der(mid) > 0
        b = np.where(pos, mid, b)
        a = np.where(pos, a, mid)
        if np.all((b - a) <= 1e-13 * b):
            break
    # convex: value(x*) ≥ value(a) + der(a)(x* − a) ≥ value(a) + min(der(a), 0)(b − a)
    inner = val(a) + np.minimum(der(a), 0.0) * (b - a)
    return np.where(at_lo, val(lo), np.where(at_hi, val(hi), inner))


def part2(d: Dashf, nu: np.ndarray, n_p: int = 300, n_b: int = 600) -> np.ndarray:
    """Rigorous lower bound of P2_nm(ν), shape (N, M)."""
    P = d.P
    om_t, om_e = P.om["delay"], P.om["energy"]
    wt = om_t if P.delay else 0.0
    L2 = np.log(2.0)
    out = np.empty((d.N, d.M))
    for n in range(d.N):
        p_lo, p_hi = P.p_min, float(P.p_hi[n])
        if p_lo > 0:
            pg = np.geomspace(p_lo, p_hi, n_p)
        else:
            pg = np.concatenate([[0.0], np.geomspace(p_hi * 1e-6, p_hi, n_p - 1)])
        for m in range(d.M):
            bg = np.geomspace(P.b_lo, P.Bw[m], n_b)
            a = P.snr[n, m]
            pl, pr = pg[:-1, None], pg[1:, None]
            bl, br = bg[None, :-1], bg[None, 1:]
            with np.errstate(divide="ignore", invalid="ignore"):
                r_l = br * np.log1p(a * pl / br) / L2
                e_over_r = np.where(pl > 0, pl / r_l, L2 / a)       # p/r at (p_i, b_{j+1}); limit at p = 0
                r_r = br * np.log1p(a * pr / br) / L2
            val = P.s[n] * om_e * e_over_r + P.s[n] * wt / r_r + nu[m] * bl
            out[n, m] = float(np.min(val))
    return out


def part1(d: Dashf, lam: float, mu: np.ndarray, Astar: np.ndarray, grid: int = 801) -> np.ndarray:
    """Rigorous lower bound of P1_nm(λ, μ), shape (N, M)."""
    ag = np.linspace(d.lo, d.hi, grid)
    c = _conc(d, ag, mu)
    cmin = np.minimum(c[:, :, :-1], c[:, :, 1:])
    g = d.sq.g_alpha(ag, d.Y)
    increasing = g[-1] >= g[0]
    g_end = g[1:] if increasing else g[:-1]
    q = d.w[:, None] * (d.q0 + g_end[None, :])                  # (N, G-1)
    lin = ag[None, :-1] * Astar[:, None] - lam * q
    return np.min(cmin + lin[:, None, :], axis=2)


def _part1_pieces(d: Dashf, mu, Astar, grid: int = 801):
    """λ-independent pieces of :func:`part1`: (cmin (N, M, G−1), αA* (N, G−1), w(q0 + g(end)) (N, G−1))."""
    ag = np.linspace(d.lo, d.hi, grid)
    c = _conc(d, ag, np.asarray(mu, float))
    cmin = np.minimum(c[:, :, :-1], c[:, :, 1:])
    g = d.sq.g_alpha(ag, d.Y)
    g_end = g[1:] if g[-1] >= g[0] else g[:-1]
    return cmin, ag[None, :-1] * Astar[:, None], d.w[:, None] * (d.q0 + g_end[None, :])


def _lam_bisect(d: Dashf, pieces, P2, mu, nu, lo, hi, iters=40) -> float:
    """Largest λ in [lo, hi] with a non-negative dual bound (lo if none)."""
    cmin, aA, q = pieces
    const = float(np.asarray(mu) @ d.P.F + np.asarray(nu) @ d.P.Bw)

    def D(lam):
        P1 = np.min(cmin + (aA - lam * q)[:, None, :], axis=2)
        return float(np.sum(np.min(P1 + P2, axis=1)) - const)

    if D(lo) < 0:
        return -np.inf
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if D(mid) >= 0:
            lo = mid
        else:
            hi = mid
    return lo


def refine_multipliers(variant, inst, lb: dict, lam_hi: float, factors=(0.5, 0.8, 1.25, 2.0), rounds: int = 2) -> dict:
    """Coordinate ascent on the multipliers, one server's μ_m or ν_m at a time (multiplicative
    steps), starting from ``lb`` (a :func:`lower_bound` result); every accepted point is still a
    valid dual point, so the result is still a certified bound, only tighter."""
    d = Dashf(variant, inst)
    Astar = _f_star_cost(d)
    mu = np.asarray(lb.get("mu_best", lb["mu"]), float).copy()
    nu = np.asarray(lb.get("nu_best", lb["nu"]), float).copy()
    P2 = part2(d, nu)
    best = max(_lam_bisect(d, _part1_pieces(d, mu, Astar), P2, mu, nu, 0.0, lam_hi), float(lb["lambda_lb"]))
    for _ in range(rounds):
        for m in range(d.M):
            for which in ("mu", "nu"):
                base = (mu if which == "mu" else nu)[m]
                for f in factors:
                    mu2, nu2 = mu.copy(), nu.copy()
                    (mu2 if which == "mu" else nu2)[m] = base * f if base > 0 else (1e-3 * f)
                    P2b = P2 if which == "mu" else part2(d, nu2)
                    v = _lam_bisect(d, _part1_pieces(d, mu2, Astar), P2b, mu2, nu2, best, lam_hi)
                    if v > best:
                        best, mu, nu, P2 = v, mu2, nu2, P2b
                        base = (mu if which == "mu" else nu)[m]
    return {"lambda_lb": best, "mu_best": mu.tolist(), "nu_best": nu.tolist()}


def dual_value(d: Dashf, lam, mu, nu, Astar, P2=None) -> float:
    P2 = part2(d, nu) if P2 is None else P2
    P1 = part1(d, lam, mu, Astar)
    return float(np.sum(np.min(P1 + P2, axis=1)) - mu @ d.P.F - nu @ d.P.Bw)


def pair_bounds(d: Dashf, lam: float, mu, nu) -> tuple[np.ndarray, float]:
    """(Bnm, const): for every association s, min over α and resources of ΣC − λΣQ with that
    association is ≥ Σ_n Bnm[n, s_n] − const. If that is ≥ 0, no point with association s has a
    ratio below λ (used to prune an enumeration of associations)."""
    mu, nu = np.asarray(mu, float), np.asarray(nu, float)
    Bnm = part1(d, lam, mu, _f_star_cost(d)) + part2(d, nu)
    return Bnm, float(mu @ d.P.F + nu @ d.P.Bw)


def lower_bound(variant, inst, server=None, x=None, scales=(0.0, 0.5, 1.0, 2.0), lam_hi: float | None = None,
                iters: int = 40) -> dict:
    """Certified λ_LB ≤ λ* (α-kinds). ``server``, ``x``: a good solution whose budget multipliers
    seed the dual; ``lam_hi``: an upper end for the bisection (e.g. the best known ratio)."""
    d = Dashf(variant, inst)
    if d.kind_dep != "alpha":
        raise ValueError("the certified bound covers the α-kinds of service_quality only")
    if server is not None:
        mu0, nu0 = d.prices(np.asarray(server, int), {k: np.asarray(v, float) for k, v in x.items()})
    else:
        mu0, nu0 = np.zeros(d.M), np.zeros(d.M)
    Astar = _f_star_cost(d)
    if lam_hi is None:
        lam_hi = d.ratio(np.asarray(server, int), x) if server is not None else 1e3
    best = (0.0, None)
    cache = {}
    for sm in scales:
        for sn in scales:
            mu, nu = sm * mu0, sn * nu0
            key = sn
            if key not in cache:
                cache[key] = part2(d, nu)
            P2 = cache[key]
            lo, hi = best[0], lam_hi
            if dual_value(d, lo, mu, nu, Astar, P2) < 0:
                continue
            for _ in range(iters):
                mid = 0.5 * (lo + hi)
                if dual_value(d, mid, mu, nu, Astar, P2) >= 0:
                    lo = mid
                else:
                    hi = mid
            if lo > best[0]:
                best = (lo, {"mu_scale": sm, "nu_scale": sn})
    out = {"lambda_lb": best[0], "multipliers": best[1], "mu": mu0.tolist(), "nu": nu0.tolist()}
    if best[1] is not None:
        out["mu_best"] = (best[1]["mu_scale"] * mu0).tolist()
        out["nu_best"] = (best[1]["nu_scale"] * nu0).tolist()
    return out
