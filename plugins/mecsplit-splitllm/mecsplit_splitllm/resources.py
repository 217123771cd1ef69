"""Exact resource step of the min-max delay for fixed association and cuts (docs/splitllm.md §2).

With the association and the cuts fixed, the servers decouple, and on edge m

    τ_m = min τ  s.t.  D_n(b_n, f^e_n, f^c_n) ≤ τ (n ∈ m),  Σ b ≤ B_m,  Σ f^e ≤ F_m,  Σ f^c ≤ C

is convex (S/r(b) is convex: r = b·log2(1 + q/b) is concave; W/f is convex) with Slater points, so by
strong duality τ_m = max over user weights λ ≥ 0, Σλ = 1 of the weighted-sum problem

    g_m(λ) = Σ λ_n c_n + min_b Σ λ_n S_n/r_n(b_n) + (Σ √(λ_n W^e_n))²/F_m + (Σ √(λ_n W^c_n))²/C

(the compute parts by the square-root rule f_n ∝ √(λ_n W_n); the bandwidth part by one budget multiplier,
``mecsplit_liuzhao.oned.budget_solve`` from the Liu–Zhao plugin). Every weighted-sum minimiser x(λ) is a
feasible point, so max_n D_n(x(λ)) ≥ τ_m ≥ g_m(λ): the step iterates λ until the two meet (relative gap
``tol``) and returns the point with its certificate. The update λ_n ← λ_n·((D_n − c_n)/(ḡ − c_n))²
equalises the delays: with one resource, D_n − c_n ∝ λ_n^{-1/2} and one update is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mecsplit_liuzhao.oned import budget_solve

LN2 = math.log(2.0)


@dataclass
class Resources:
    b: np.ndarray          # (N,) MHz
    fe: np.ndarray         # (N,) GHz
    fc: np.ndarray         # (N,) GHz
    lam: np.ndarray        # (N,) dual weights, Σ = 1 per server
    delay: np.ndarray      # (N,) s
    tau: np.ndarray        # (M,) s, max delay per server (0 for an empty server)
    lower: np.ndarray      # (M,) s, g_m(λ) ≤ the optimal τ_m for these cuts
    iterations: int


def rate(q, b):
    """Mbit/s, b·log2(1 + q/b)."""
    return b * np.log1p(q / b) / LN2


def _sqrt_shares(w, group, cap, lo, M):
    """argmin Σ w_n/x_n s.t. Σ_{n∈m} x_n = cap_m, x ≥ lo: x ∝ √w, users at the floor fixed there."""
    x = np.full(w.shape, lo, float)
    free = w > 0
    for _ in range(len(w) + 1):
        sw = np.sqrt(np.where(free, w, 0.0))
        tot = np.bincount(group, weights=sw, minlength=M)
        room = cap - np.bincount(group, weights=np.where(free, 0.0, lo), minlength=M)
        with np.errstate(divide="ignore", invalid="ignore"):
            xf = np.where(free, room[group] * sw / np.where(tot[group] > 0, tot[group], 1.0), lo)
        low = free & (xf < lo)
        x = np.where(free, xf, lo)
        if not low.any():
            return x
        free &= ~low
    return x


def _sqrt_bound(w, group, cap, M):
    """min Σ w_n/x_n s.t. Σ x ≤ cap without the floors: (Σ √w)²/cap — a relaxation (for the lower bound)."""
    sw = np.bincount(group, weights=np.sqrt(w), minlength=M)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sw > 0, sw**2 / np.where(cap > 0, cap, 1.0), 0.0)


def solve_resources(sc, server, alpha, beta, lam=None, b0=None, tol=1e-9, max_iter=200, target=None) -> Resources:
    """The step for all edges at once. With ``target`` (s) it stops as soon as every edge is decided against
    it: its feasible delay is below it, or its certified bound is not (enough to accept or reject a move)."""
    N, M, g = sc.N, sc.M, np.asarray(server, int)
    rows = np.arange(N)
    c0 = alpha * sc.t + sc.h[rows, g]
    We = (beta - alpha) * sc.e[rows, g]
    Wc = (sc.Y - beta) * sc.c if sc.cloud else np.zeros(N)
    S, q = sc.S, sc.q[rows, g]
    present = np.bincount(g, minlength=M) > 0
    lam = np.ones(N) if lam is None else np.maximum(np.asarray(lam, float), 1e-300)
    lam = lam / np.bincount(g, weights=lam, minlength=M)[g]
    b = np.minimum(sc.B[g], np.maximum(sc.b_min, sc.B[g] / np.bincount(g, minlength=M)[g])) if b0 is None else np.asarray(b0, float)
    up = S > 0
    it = 0
    for it in range(1, max_iter + 1):
        fe = _sqrt_shares(lam * We, g, sc.F, sc.fe_min, M) if sc.F.any() else np.zeros(N)
        fc = _sqrt_shares(lam * Wc, g, np.full(M, sc.C), sc.fc_min, M) if sc.cloud else np.zeros(N)
        if up.any():
            K = lam * S

            def d1(x):   # d/db of K/r(b)
                L = np.log1p(q / x)
                r1 = (L - q / (x + q)) / LN2
                return -K * r1 / rate(q, x) ** 2

            def d2(x):
                r = rate(q, x)
                L = np.log1p(q / x)
                r1 = (L - q / (x + q)) / LN2
                r2 = -q**2 / (x * (x + q) ** 2) / LN2
                return K * (2 * r1**2 - r * r2) / r**3

            b, _ = budget_solve(d1, d2, np.full(N, sc.b_min), sc.B[g], g, sc.B, eq=False, x0=b)
            bw = np.where(up, S / rate(q, b), 0.0)
        else:
            bw = np.zeros(N)
        with np.errstate(divide="ignore", invalid="ignore"):
            D = c0 + bw + np.where(We > 0, We / np.where(fe > 0, fe, 1.0), 0.0) + np.where(Wc > 0, Wc / np.where(fc > 0, fc, 1.0), 0.0)
        tau = np.zeros(M)
        np.maximum.at(tau, g, D)
        lower = (np.bincount(g, weights=lam * (c0 + bw), minlength=M) + _sqrt_bound(lam * We, g, sc.F, M)
                 + (_sqrt_bound(lam * Wc, g, np.full(M, sc.C), M) if sc.cloud else 0.0))
        gap = np.where(present, (tau - lower) / np.maximum(tau, 1e-300), 0.0)
        if gap.max() <= tol or it == max_iter or (target is not None and np.all(~present | (tau < target) | (lower >= target))):
            break
        goal = np.maximum(lower[g] - c0, 1e-12 * np.maximum(D, 1e-300))
        lam = lam * np.clip((D - c0) / goal, 1e-3, 1e3) ** 2
        lam = lam / np.bincount(g, weights=lam, minlength=M)[g]
    return Resources(b=b, fe=fe, fc=fc, lam=lam, delay=D, tau=tau, lower=np.minimum(lower, tau), iterations=it)
