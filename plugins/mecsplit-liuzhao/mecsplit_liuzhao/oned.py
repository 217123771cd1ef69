"""Vectorised KKT solvers for separable convex pieces (numpy only).

* :func:`root_increasing` — for each element, minimise φ_n(x) − t_n·x over [lo_n, hi_n] with φ_n
  convex, given φ' (increasing) and φ'': safeguarded Newton inside a shrinking bracket.
* :func:`budget_solve` — minimise Σ_n φ_n(x_n) s.t. Σ_{n∈m} x_n (≤ or =) cap_m per group m, box
  bounds: one multiplier μ_m per group, found by safeguarded Newton on Σ x_n(μ) = cap_m
  (dx_n/dμ = −1/φ_n''), with the per-element minimiser x_n(μ) from :func:`root_increasing`.
"""

from __future__ import annotations

import numpy as np


def _mid(a, b):
    """Bracket midpoint: geometric when both ends are positive and far apart, else arithmetic."""
    geo = (a > 0) & (b > 4 * a)
    with np.errstate(invalid="ignore"):
        return np.where(geo, np.sqrt(np.abs(a * b)), 0.5 * (a + b))


def root_increasing(d1, d2, lo, hi, t, x0=None, iters=100, rtol=1e-13):
    """argmin_{lo ≤ x ≤ hi} φ(x) − t x, elementwise (d1 = φ' increasing, d2 = φ'' > 0)."""
    lo, hi = np.broadcast_arrays(np.asarray(lo, float), np.asarray(hi, float))
    t = np.broadcast_to(np.asarray(t, float), lo.shape)
    g_lo, g_hi = d1(lo) - t, d1(hi) - t
    at_lo, at_hi = g_lo >= 0, g_hi <= 0
    a, b = lo.copy(), hi.copy()
    x = _mid(a, b) if x0 is None else np.clip(np.asarray(x0, float), lo, hi)
    active = ~(at_lo | at_hi)
    for _ in range(iters):
        if not active.any():
            break
        g = d1(x) - t
        a = np.where(g < 0, x, a)
        b = np.where(g > 0, x, b)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # Newton in log x (the pieces behave like powers of x): x <- x·exp(−g/(x φ''))
            xn = x * np.exp(np.clip(-g / (x * d2(x)), -30, 30))
        bad = ~((xn >= a) & (xn <= b))
        if bad.any():
            xn = np.where(bad, _mid(a, b), xn)
        conv = (np.abs(xn - x) <= rtol * np.abs(x)) | (g == 0)
        x = np.where(active, xn, x)
        active &= ~conv
    return np.where(at_lo, lo, np.where(at_hi, hi, x))


def budget_solve(d1, d2, lo, hi, group, cap, eq: bool, x0=None, iters=200, rtol=1e-12):
    """Minimise Σ φ_n(x_n) s.t. Σ_{group n = m} x_n (= if eq else ≤) cap_m, lo ≤ x ≤ hi.

    Returns (x, μ) with μ_m the budget multiplier (≥ 0 for ≤ budgets). Groups without elements
    are ignored. Infeasible groups (Σ lo > cap, or eq with Σ hi < cap) end at the nearest bound.
    """
    group = np.asarray(group, int)
    M = len(cap)
    cap = np.asarray(cap, float)
    lo, hi = np.broadcast_arrays(np.asarray(lo, float), np.asarray(hi, float))
    present = np.bincount(group, minlength=M) > 0
    sum_lo = np.bincount(group, weights=lo, minlength=M)
    sum_hi = np.bincount(group, weights=hi, minlength=M)
    # μ bracket: x(μ) = hi for μ ≤ min(−φ'(hi)); x(μ) = lo for μ ≥ max(−φ'(lo))
    mu_a = np.full(M, np.inf)
    np.minimum.at(mu_a, group, -d1(hi))
    mu_b = np.full(M, -np.inf)
    np.maximum.at(mu_b, group, -d1(lo))
    mu_a = np.clip(np.where(present, mu_a, 0.0), -1e200, 1e200)
    mu_b = np.clip(np.where(present, mu_b, 0.0), -1e200, 1e200)
    x = np.clip(_mid(lo, hi) if x0 is None else np.asarray(x0, float), lo, hi)
    if not eq:  # try μ = 0 (budget slack)
        x0u = root_increasing(d1, d2, lo, hi, 0.0, x)
        slack = np.bincount(group, weights=x0u, minlength=M) <= cap * (1 + 1e-12)
        mu_a = np.where(slack, 0.0, np.maximum(mu_a, 0.0))
    else:
        slack = np.zeros(M, bool)
    infeasible = (sum_lo >= cap) | (eq & (sum_hi <= cap))
    a, b = mu_a.copy(), np.maximum(mu_b, mu_a)
    # warm start: the multiplier that makes the current (feasible, near-optimal) x stationary
    cnt = np.maximum(np.bincount(group, minlength=M), 1)
    guess = np.bincount(group, weights=-d1(x), minlength=M) / cnt
    mu = np.where(slack, 0.0, np.where((guess > a) & (guess < b), guess, _signed_mid(a, b)))
    fixed = slack | infeasible | ~present
    for _ in range(iters):
        x = root_increasing(d1, d2, lo, hi, -mu[group], x)
        S = np.bincount(group, weights=x, minlength=M)
        err = S - cap
        conv = fixed | (np.abs(err) <= rtol * cap)
        if conv.all():
            break
        a = np.where(err > 0, mu, a)   # too much used -> μ must grow
        b = np.where(err < 0, mu, b)
        interior = (x > lo) & (x < hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.bincount(group, weights=np.where(interior, 1.0 / d2(x), 0.0), minlength=M)
            mn = mu + err / slope
        ok = (slope > 0) & (mn > a) & (mn < b)
        mu = np.where(conv, mu, np.where(ok, mn, _signed_mid(a, b)))
    x = root_increasing(d1, d2, lo, hi, -mu[group], x)
    bad = infeasible[group]
    x = np.where(bad, np.where((sum_lo >= cap)[group], lo, hi), x)
    x = _polish(x, lo, hi, group, cap, eq, M)
    return x, np.where(slack, 0.0, mu)


def _signed_mid(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    both_pos = (a > 0) & (b > 4 * a)
    both_neg = (b < 0) & (a < 4 * b)
    with np.errstate(invalid="ignore"):
        return np.where(both_pos, np.sqrt(np.abs(a * b)), np.where(both_neg, -np.sqrt(np.abs(a * b)), 0.5 * (a + b)))


def _polish(x, lo, hi, group, cap, eq, M):
    """Remove the last rounding error of the budget sum by scaling the interior elements."""
    for _ in range(3):
        S = np.bincount(group, weights=x, minlength=M)
        need = (S > cap) | (eq & (S < cap))
        if not need.any():
            break
        interior = (x > lo) & (x < hi)
        s_in = np.bincount(group, weights=np.where(interior, x, 0.0), minlength=M)
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.where(need & (s_in > 0), (cap - (S - s_in)) / s_in, 1.0)
        x = np.where(interior, np.clip(x * k[group], lo, hi), x)
    return x
