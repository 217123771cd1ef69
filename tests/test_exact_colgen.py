"""The set-partitioning (server-subset) bound of the exact plugin (colgen.py, docs/exact.md §2b).

* pricing: the branch-and-bound over user subsets returns the minimum reduced cost of a brute-force
  enumeration of every user subset and split, whose server blocks are solved by independent code
  (a KKT price found by scipy's brentq, per-user shares from the cubic's numpy roots);
* the bound from column generation is never above the enumerated optimum and never below the
  budget-Lagrangian bound it starts from;
* on a 10×3 instance where the budget Lagrangian leaves a gap it closes the gap at the root.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("mecsplit_exact")
from scipy.optimize import brentq  # noqa: E402

from mecsplit.errors import InputError  # noqa: E402
from mecsplit.instance import generate  # noqa: E402
from mecsplit.solve import solve  # noqa: E402
from mecsplit.variant import load_variant  # noqa: E402
from mecsplit_exact.bnb import BnB, QuietTracer  # noqa: E402
from mecsplit_exact.colgen import ColGen, Pool, Pricer, ServerTable, mu_grid  # noqa: E402
from mecsplit_exact.lagrangian import Master, _scales, maximise  # noqa: E402
from mecsplit_exact.subproblems import Data  # noqa: E402

from test_exact import L4, _enumerate  # noqa: E402


def _root(D):
    """Incumbent and the maximised budget Lagrangian at the root."""
    b = BnB(D, QuietTracer(), 1e-12, 1e-15, 1, None, colgen="off")
    b.run()
    N, M = D.N, D.M
    allowed, klo, khi = np.ones((N, M), bool), np.zeros(N, int), np.full(N, D.K - 1)
    lam, mu = b.inc["lam"], b.inc["mu"]
    best, _, _ = maximise(D, b.ev, Master(D), lam, mu, allowed, klo, khi, sl=_scales(lam), sm=_scales(mu))
    return b, best, allowed, klo, khi


def _share(W, t, e, mu, lo, hi):
    """argmin_x W(t/x + e x²) + μx on [lo, hi] from the real roots of 2We x³ + μx² − Wt = 0."""
    r = np.roots([2 * W * e, mu, 0.0, -W * t])
    r = r[np.abs(r.imag) < 1e-12].real
    cands = np.concatenate([r[(r > lo) & (r < hi)], [lo, hi]])
    vals = W * (t / cands + e * cands**2) + mu * cands
    return cands[np.argmin(vals)]


def _block(W, t, e, lo, F, eq):
    """min Σ W(t/x + e x²) s.t. Σx ≤ F (= F if eq) by brentq on the KKT price."""
    def total(mu):
        return sum(_share(W[i], t[i], e[i], mu, lo, F) for i in range(len(W)))
    if not eq and total(0.0) <= F:
        mu = 0.0
    else:
        a, b = -1e6, 1e6
        mu = brentq(lambda q: total(q) - F, a, b, xtol=1e-15, rtol=1e-15, maxiter=500)
    x = np.array([_share(W[i], t[i], e[i], mu, lo, F) for i in range(len(W))])
    x = x * min(1.0, F / x.sum()) if not eq else x * F / x.sum()
    return float(np.sum(W * (t / x + e * x**2)))


@pytest.mark.parametrize("name,seed", [("default", 3), ("hardware-2024", 4)])
def test_pricing_equals_brute_force(name, seed):
    v = load_variant(name, overrides=L4)
    N, M, m = 5, 2, 0
    D = Data(v, generate(v, N, M, seed))
    b, best, allowed, klo, khi = _root(D)
    U = b.ev.uplink(best["lam"])[0]
    rng = np.random.default_rng(seed)
    # prices around the Lagrangian's user values, so that some subsets price out and some do not
    pi = best["v"] * (1 + rng.uniform(-0.02, 0.06, N))
    tab = ServerTable(D, m, np.arange(N), klo, khi, mu_grid(best["mu"], m, D.eq_f, N))
    lb, found, _ = Pricer(tab, U[:, m] - pi).run(empty_ok=not D.eq_f, tol=1e-13)
    ref = 0.0 if not D.eq_f else np.inf
    for r in range(1, N + 1):
        for S in itertools.combinations(range(N), r):
            S = np.array(S)
            for ks in itertools.product(range(D.K), repeat=r):
                ks = np.array(ks)
                val = _block(D.w[ks], D.t[S, m], D.e[S, m], D.fe_lo, float(D.F[m]), D.eq_f)
                ref = min(ref, val + float(np.sum(D.user_part[S, ks] + U[S, m] - pi[S])))
    scale = float(np.abs(pi).sum())
    best_found = min([c[0] for c in found] + ([0.0] if not D.eq_f else []))
    assert lb <= ref + 1e-10 * scale, (lb, ref)
    assert abs(best_found - ref) <= 1e-8 * scale, (best_found, ref)
    assert ref < -1e-6 * scale  # the prices make the pricing problem non-trivial


@pytest.mark.parametrize("name,seed", [("default", 0), ("liu-zhao-2024", 2)])
def test_set_partitioning_bound_is_valid(name, seed):
    v = load_variant(name, overrides=L4)
    inst = generate(v, 3, 2, seed)
    D = Data(v, inst)
    ref = _enumerate(v, inst)
    b, best, allowed, klo, khi = _root(D)
    pool = Pool(D)
    pool.add_assignment(b.inc["server"], b.inc["k"], b.inc["x"])
    import time
    L, _ = ColGen(D, pool, b.ev).run(best["lam"], best["mu"], allowed, klo, khi, cutoff=np.inf,
                                     deadline=time.perf_counter() + 30, clock=time.perf_counter, pi0=best["v"])
    assert L <= ref * (1 + 1e-9), (L, ref)
    # the pricing tolerance (2e-10 per server, relative) is the only thing it may lose against the start
    assert L >= best["L"] - 1e-9 * abs(best["L"]), (L, best["L"])


def test_closes_the_root_gap_on_10x3():
    v = load_variant("default")
    inst = generate(v, 10, 3, 1)
    r = solve(v, inst, "exact", {"rel_gap": 1e-7, "method": "bnb", "colgen": "root"})
    assert r.status == "optimal" and r.verification["verdict"] == "ok"
    ex = r.extra
    tol = 1e-7 * abs(r.objective)
    assert ex["root_lagrangian_bound"] < r.objective - 10 * tol   # the budget Lagrangian leaves a gap
    assert ex["root_bound"] >= r.objective - tol                 # the server-subset bound closes it
    assert ex["nodes"] == 1 and ex["colgen"]["pricing_nodes"] >= 1


@pytest.mark.parametrize("opt,value", [("colgen", "sometimes"), ("colgen_share", 0.0), ("colgen_max_s", -1)])
def test_colgen_options_are_checked(opt, value):
    v = load_variant("default")
    inst = generate(v, 2, 1, 0)
    with pytest.raises(InputError, match=f"exact.{opt}"):
        solve(v, inst, "exact", {opt: value})
