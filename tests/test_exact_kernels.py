"""The exact solver's fast numerical kernels against the implementations they replaced and against
references that share nothing with them (issue 22, docs/exact.md §5).

* ψ⁻¹ (subproblems._psi_inv, series reversion / Lambert W): equal to the iterated Newton solve it
  replaced, on random inputs over 600 decades and at the branch switch, and to a 40-digit root
  computed with ``decimal``;
* the edge share's minimiser (subproblems.edge_solve, a cubic in closed form for μ ≥ 0): equal to the
  monotone Newton solve it replaced (kept for μ < 0 as _edge_newton), bounds, zeros and negative
  prices included, and never above scipy's bounded scalar minimum;
* the assignment MILP's price cuts, all prices of a server in one solve: the same rows as one solve
  per price;
* the warm brackets (subproblems.root_near: uplink_solve's guesses of b, fixed.py's bracket around a
  server's last bandwidth price): the same roots as the cold solves, whether the guess is good, far off
  or at a bound;
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import numpy as np
import pytest

pytest.importorskip("mecsplit_exact")
import highspy  # noqa: E402

from mecsplit.instance import generate  # noqa: E402
from mecsplit.variant import load_variant  # noqa: E402
from mecsplit_exact.fixed import solve_fixed  # noqa: E402
from mecsplit_exact.oa import AssignmentMILP  # noqa: E402
from mecsplit_exact.subproblems import Data, _edge_newton, _psi_inv, edge_solve, uplink_solve  # noqa: E402


# ---- references ----------------------------------------------------------------------------------
def _psi_ref(z):
    small = z < 1e-2
    zs = np.where(small, z, 0.0)
    ser = zs**2 / 2 - zs**3 / 6 + zs**4 / 12 - zs**5 / 20 + zs**6 / 30 - zs**7 / 42 + zs**8 / 56
    return np.where(small, ser, (1 + z) * np.log1p(z) - z)


def _psi_inv_newton(v):
    """The implementation _psi_inv replaced (plugin 0.4.0): Newton from √(2v), to |Δz| ≤ 1e-11 z."""
    v = np.asarray(v, float)
    z = np.sqrt(2 * v)
    act = np.nonzero(v > 0)[0]
    zz, vv = z[act], v[act]
    for _ in range(80):
        if act.size == 0:
            break
        zn = np.maximum(zz - (_psi_ref(zz) - vv) / np.log1p(zz), 0.0)
        done = np.abs(zn - zz) <= 1e-11 * zn
        z[act] = zn
        keep = ~done
        act, zz, vv = act[keep], zn[keep], vv[keep]
    return z


def _psi_inv_decimal(v, digits=40):
    """Root of (1+z)ln(1+z) − z = v by bisection-safeguarded Newton in ``digits``-digit decimals."""
    with localcontext() as ctx:
        ctx.prec = digits
        v = Decimal(float(v))
        one = Decimal(1)
        psi = lambda z: (one + z) * (one + z).ln() - z
        lo, hi = Decimal(0), max(Decimal(2) * v.sqrt() + v, Decimal(1))
        z = (lo + hi) / 2
        for _ in range(400):
            f = psi(z) - v
            if f > 0:
                hi = z
            else:
                lo = z
            zn = z - f / (one + z).ln() if z > 0 else (lo + hi) / 2
            z = zn if lo < zn < hi else (lo + hi) / 2
            if hi - lo < Decimal(10) ** (-digits + 5) * hi:
                break
    return float(z)


# ---- ψ⁻¹ ----------------------------------------------------------------------------------------
def test_psi_inv_equals_the_newton_solve_it_replaced():
    rng = np.random.default_rng(22)
    s_switch = 0.15      # the series / Lambert W switch, s = √(2v)
    v = np.concatenate([10 ** rng.uniform(-300, 300, 20000), 10 ** rng.uniform(-9, 5, 20000),
                        0.5 * s_switch**2 * (1 + rng.uniform(-1e-6, 1e-6, 2000)),
                        [5e-324, 1e-320, 1e-200, 1e-30, 0.5 * s_switch**2, 0.125, 1.0, math.e, 1e200]])
    new, old = _psi_inv(v), _psi_inv_newton(v)
    assert np.all(np.isfinite(new)) and np.all(new > 0)
    assert np.max(np.abs(new - old) / old) < 5e-14
    # and the new one is at least as close to a root (residual relative to v)
    ok = v > 1e-250
    res_new = np.abs(_psi_ref(new[ok]) - v[ok]) / v[ok]
    res_old = np.abs(_psi_ref(old[ok]) - v[ok]) / v[ok]
    assert res_new.max() <= 1.01 * res_old.max() + 1e-15
    # zero, shapes and scalars
    assert _psi_inv(np.array([0.0]))[0] == 0.0
    assert _psi_inv(np.zeros((2, 3))).shape == (2, 3)
    assert float(_psi_inv(np.array(1.0))) == pytest.approx(float(_psi_inv_newton(np.array([1.0]))[0]), rel=1e-14)
    mixed = np.array([[1e-6, 1.0], [1e4, 1e-3]])
    assert np.allclose(_psi_inv(mixed), _psi_inv_newton(mixed.ravel()).reshape(2, 2), rtol=1e-14, atol=0)


def test_psi_inv_against_a_40_digit_root():
    rng = np.random.default_rng(7)
    v = np.concatenate([10 ** rng.uniform(-12, 6, 120), 0.01125 * (1 + rng.uniform(-1e-2, 1e-2, 20))])
    ref = np.array([_psi_inv_decimal(x) for x in v])
    err = np.abs(_psi_inv(v) - ref) / ref
    assert err.max() < 4e-15


# ---- edge share -----------------------------------------------------------------------------------
def _edge_cases(rng, n):
    w = rng.uniform(0.5, 31, n) * rng.choice([0.0, 1, 1, 1, 1, 1, 1, 1], n)
    t = 10 ** rng.uniform(-9, -3, n) * rng.choice([0.0, 1, 1, 1, 1, 1, 1, 1], n)
    e = 10 ** rng.uniform(-9, -3, n) * rng.choice([0.0, 1, 1, 1], n)
    mu = 10 ** rng.uniform(-9, 2, n) * rng.choice([0.0, 1, 1, 1, 1, -1], n)
    lo = 10 ** rng.uniform(-3, -1, n)
    hi = lo * np.where(rng.uniform(size=n) < 0.1, 1 + 1e-9, 10 ** rng.uniform(0, 3, n))    # some boxes ≈ a point
    return w, t, e, mu, lo, hi


def test_edge_solve_equals_the_newton_solve_it_replaced():
    rng = np.random.default_rng(5)
    w, t, e, mu, lo, hi = _edge_cases(rng, 200_000)
    val, x = edge_solve(w, t, e, mu, lo, hi)
    WT, WE = w * t, w * e
    xr = _edge_newton(WT, WE, mu, lo, hi)
    vr = WT / xr + WE * xr * xr + mu * xr
    assert np.all((x >= lo) & (x <= hi))
    assert np.max(np.abs(x - xr) / xr) < 1e-14
    assert np.max(np.abs(val - vr) / np.maximum(np.abs(vr), 1e-300)) < 1e-14
    # broadcasting as the callers use it ((N, M, K) from (N, M, 1) and (1, 1, K))
    v3, x3 = edge_solve(w[:12].reshape(1, 1, 12), t[:6].reshape(3, 2, 1) + 1e-6, e[:6].reshape(3, 2, 1), 0.01, 0.05, 2.0)
    assert v3.shape == x3.shape == (3, 2, 12)
    assert edge_solve(np.array(3.0), 1e-5, 1e-6, 1e-3, 0.1, 2.0)[0].shape == ()


def test_edge_solve_against_scipy():
    from scipy.optimize import minimize_scalar
    rng = np.random.default_rng(6)
    w, t, e, mu, lo, hi = _edge_cases(rng, 300)
    val, x = edge_solve(w, t, e, mu, lo, hi)
    for j in range(w.size):
        f = lambda z: w[j] * (t[j] / z + e[j] * z * z) + mu[j] * z
        ref = minimize_scalar(f, bounds=(lo[j], hi[j]), method="bounded", options={"xatol": 1e-14 * hi[j]})
        best = min(ref.fun, f(lo[j]), f(hi[j]))
        assert val[j] <= best + 1e-13 * abs(best), (j, val[j], best)
        assert val[j] == pytest.approx(f(x[j]), rel=1e-15)


# ---- batched price cuts ------------------------------------------------------------------------
def _rows(milp):
    """The MILP's constraint matrix (dense) and row lower bounds, read back from HiGHS."""
    lp = milp.h.getLp()
    a = lp.a_matrix_
    start, index, value = np.asarray(a.start_), np.asarray(a.index_), np.asarray(a.value_)
    dense = np.zeros((lp.num_row_, lp.num_col_))
    outer = np.repeat(np.arange(start.size - 1), np.diff(start))
    if a.format_ == highspy.MatrixFormat.kRowwise:
        dense[outer, index] = value
    else:
        dense[index, outer] = value
    return dense, np.asarray(lp.row_lower_)


@pytest.mark.parametrize("name", ["default", "liu-zhao-2024"])
def test_batched_price_cuts_equal_one_solve_per_price(name):
    """AssignmentMILP.add_cuts solves all prices of a server at once: its rows equal the rows built with
    one edge_solve / uplink_solve per price (the code it replaced), duplicates and skipped prices too."""
    v = load_variant(name)
    inst = generate(v, 8, 3, 1)
    D = Data(v, inst)
    keep = np.isfinite(D.user_part)[:, None, :].repeat(D.M, axis=1)
    inc = solve_fixed(D, np.arange(D.N) % D.M, np.zeros(D.N, int))
    rng = np.random.default_rng(3)
    a, b = AssignmentMILP(D, keep, 1.0 / inc["obj"]), AssignmentMILP(D, keep, 1.0 / inc["obj"])
    for m in range(D.M):
        mus = list(inc["mu"][m] * 10 ** rng.uniform(-2, 2, 5)) + [0.0, -1.0]
        mus.append(mus[0])
        lams = list(inc["lam"][m] * 10 ** rng.uniform(-2, 2, 4)) + [0.0, -1e-12, inc["lam"][m]]
        a.add_cuts(m, mus, lams)
        a.add_cuts(m, mus[:2], lams[:2])            # already there: nothing added
        sel = b.by_server[m]
        n, k = b.on[sel], b.ok[sel]
        for mu in dict.fromkeys(mus):
            if mu < 0 and not D.eq_f:
                continue
            val, _ = edge_solve(D.w[k], D.t[n, m], D.e[n, m], mu, D.fe_lo, D.F[m])
            b._row(b.nx + m, sel, val, -mu * D.F[m])
        for lam in dict.fromkeys(lams):
            if lam < 0:
                continue
            val, _, _ = uplink_solve(D.a[n, m], D.c0[n], D.c1[n], lam, D.p_lo[n], D.p_hi[n], D.b_lo, D.B[m])
            b._row(b.nx + D.M + m, sel, val, -lam * D.B[m])
    (Aa, la), (Ab, lb) = _rows(a), _rows(b)
    assert Aa.shape == Ab.shape
    assert np.array_equal(Aa, Ab) and np.array_equal(la, lb)


@pytest.mark.parametrize("name", ["default", "liu-zhao-2024", "hardware-2024"])
def test_uplink_guesses_give_the_cold_roots(name):
    """uplink_solve with guesses of b (good, 1e-3 or 1e3 off, at a box end, none) returns the roots it
    returns without them: a root outside the first bracket is found on the whole box."""
    v = load_variant(name)
    D = Data(v, generate(v, 12, 3, 2))
    rng = np.random.default_rng(0)
    n, m = np.repeat(np.arange(D.N), D.M), np.tile(np.arange(D.M), D.N)
    for lam in (0.0, 1e-12, 1e-6, 1e-2):
        lam = lam * 10 ** rng.uniform(-1, 1, n.size)
        cold = D.uplink(n, m, lam)
        good = cold[2] * np.exp(rng.uniform(-0.03, 0.03, n.size))
        far = cold[2] * 10.0 ** rng.choice([-3, 3], n.size)
        ends = np.where(rng.random(n.size) < 0.5, D.b_floor[n, m], D.B[m])
        mixed = np.where(rng.random(n.size) < 0.3, 0.0, good)
        for near in (good, far, ends, mixed):
            warm = D.uplink(n, m, lam, near=near)
            for c, w in zip(cold, warm):
                assert np.allclose(w, c, rtol=1e-8, atol=0), (name, lam[:2], near[:2])


@pytest.mark.parametrize("name", ["default", "liu-zhao-2024"])
def test_bandwidth_price_bracket_gives_the_cold_block(name):
    """solve_fixed brackets each server's bandwidth price around the last one it found for that server
    (fixed.py): a sequence of assignments solved on one data object (warm; the last prices sometimes
    moved a thousandfold) gives the objective, prices and bandwidths of each solved alone on a fresh one
    (cold)."""
    v = load_variant(name)
    inst = generate(v, 20, 4, 1)
    warm_D = Data(v, inst)
    rng = np.random.default_rng(5)
    s = np.arange(20) % 4
    for _ in range(8):
        i, j = rng.choice(20, 2, replace=False)
        s = s.copy()
        s[i], s[j] = s[j], s[i]
        if rng.random() < 0.5:
            s[i] = rng.integers(4)
            s[:4] = np.arange(4)            # every server used ("eq" budgets)
        k = np.zeros(20, int)
        last = warm_D.__dict__.get("_bw_last", {})
        if rng.random() < 0.5:   # last prices far off: roots outside the first brackets
            for m, (users, lam) in last.items():
                last[m] = (users, lam * 10.0 ** rng.choice([-3, 3]))
        warm = solve_fixed(warm_D, s, k, improve_alpha=False)
        cold = solve_fixed(Data(v, inst), s, k, improve_alpha=False)
        assert warm["obj"] == pytest.approx(cold["obj"], rel=1e-12)
        assert np.allclose(warm["lam"], cold["lam"], rtol=1e-9, atol=0)
        assert np.allclose(warm["b"], cold["b"], rtol=1e-8, atol=0)
