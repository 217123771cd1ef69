"""The assignment MILP with outer-approximated server costs (oa.py, docs/exact.md §2c).

* every cut is valid: with cuts at arbitrary prices (random, not the solver's), the MILP's bound is
  never above the optimum found by full enumeration with independently solved blocks (SLSQP in
  log variables, tests/test_exact.py), on "le" and "eq" budgets and with interior splits;
* a cut is exact at the assignment's own multiplier (strong duality): its value equals the
  independently solved edge and uplink blocks;
* the default method (outer approximation) and the Lagrangian branch-and-bound certify the same
  optimum where both finish.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mecsplit_exact")

from mecsplit.errors import InputError  # noqa: E402
from mecsplit.instance import generate  # noqa: E402
from mecsplit.solve import solve  # noqa: E402
from mecsplit.variant import load_variant  # noqa: E402
from mecsplit_exact.fixed import solve_fixed  # noqa: E402
from mecsplit_exact.oa import AssignmentMILP  # noqa: E402
from mecsplit_exact.subproblems import Data, edge_solve, uplink_solve  # noqa: E402

from test_exact import L4, SPLIT, _edge_block, _enumerate, _terms, _uplink_block  # noqa: E402


@pytest.mark.parametrize("name,seed,over", [("default", 0, L4), ("liu-zhao-2024", 2, L4), ("hardware-2024", 1, SPLIT)],
                         ids=["default", "liu-zhao-eq", "hardware-split"])
def test_milp_bound_with_arbitrary_cuts_is_valid(name, seed, over):
    v = load_variant(name, overrides=over)
    inst = generate(v, 3, 2, seed)
    D = Data(v, inst)
    ref = _enumerate(v, inst)
    rng = np.random.default_rng(seed)
    keep = np.isfinite(D.user_part)[:, None, :].repeat(D.M, axis=1)
    inc = solve_fixed(D, np.arange(D.N) % D.M, np.zeros(D.N, int))
    milp = AssignmentMILP(D, keep, 1.0 / inc["obj"])
    for m in range(D.M):    # prices spread over six decades around the KKT ones, negative too for "eq"
        mus = inc["mu"][m] * 10 ** rng.uniform(-3, 3, 6) + 1e-6
        if D.eq_f:
            mus = np.concatenate([mus, -mus[:3]])
        milp.add_cuts(m, mus, inc["lam"][m] * 10 ** rng.uniform(-3, 3, 6) + 1e-12)
    bound, found, timed_out = milp.solve(30.0, 1e-12)
    assert not timed_out and found
    assert bound <= ref * (1 + 1e-9), (bound, ref)
    for server, k in found:   # its solutions are feasible assignments: exact costs never below the optimum
        r = solve_fixed(D, server, k, improve_alpha=False)
        assert r is None or r["obj"] >= ref * (1 - 1e-7)


@pytest.mark.parametrize("name,seed", [("default", 3), ("liu-zhao-2024", 1), ("hardware-2024", 2)])
def test_cut_is_exact_at_the_assignments_multiplier(name, seed):
    v = load_variant(name, overrides=L4)
    inst = generate(v, 4, 2, seed)
    D, T = Data(v, inst), _terms(v, inst)
    server, k = np.array([0, 1, 0, 1]), np.array([0, 1, 2, 0])
    r = solve_fixed(D, server, k, improve_alpha=False)
    alpha = D.alphas[k]
    for m in range(D.M):
        idx = np.nonzero(server == m)[0]
        e_val, _ = edge_solve(D.w[k[idx]], D.t[idx, m], D.e[idx, m], r["mu"][m], D.fe_lo, D.F[m])
        u_val, _, _ = uplink_solve(D.a[idx, m], D.c0[idx], D.c1[idx], r["lam"][m], D.p_lo[idx], D.p_hi[idx],
                                   D.b_lo, D.B[m])
        edge_cut = float(np.sum(e_val) - r["mu"][m] * D.F[m])
        up_cut = float(np.sum(u_val) - r["lam"][m] * D.B[m])
        edge_ref = _edge_block(T, m, idx, alpha[idx])
        up_ref = _uplink_block(T, m, idx)
        assert edge_cut == pytest.approx(edge_ref, rel=1e-7), (m, edge_cut, edge_ref)
        assert up_cut == pytest.approx(up_ref, rel=1e-6, abs=1e-12), (m, up_cut, up_ref)


def test_oa_and_branch_and_bound_agree_10x3():
    v = load_variant("default")
    inst = generate(v, 10, 3, 2)
    a = solve(v, inst, "exact", {"method": "oa"})
    b = solve(v, inst, "exact", {"method": "bnb", "colgen": "root"})
    for r in (a, b):
        assert r.status == "optimal" and r.verification["verdict"] == "ok"
    assert a.objective == pytest.approx(b.objective, rel=1e-7)
    assert a.bound <= b.objective * (1 + 1e-12) and b.bound <= a.objective * (1 + 1e-12)
    assert a.extra["oa_rounds"] >= 1 and a.extra["root_lagrangian_bound"] < a.objective - 1e-7 * a.objective


def test_method_option_is_checked():
    v = load_variant("default")
    inst = generate(v, 2, 1, 0)
    with pytest.raises(InputError, match="exact.method"):
        solve(v, inst, "exact", {"method": "simplex"})


def test_milp_start_solution_does_not_hide_the_optimum():
    """HiGHS 1.16, given a start solution, reported a better optimum on this MILP (a Dinkelbach step
    of dashf-layers-2024 10×2) but handed back the start and no callback for the better point; oa.py
    then solves again without the start. The assignments returned with a start must contain the
    optimum found without one, at the same bound."""
    from mecsplit_exact.oa import price_points

    v = load_variant("dashf-layers-2024")
    inst = generate(v, 10, 2, 0)
    D0 = Data(v, inst)
    D = D0.shifted(-0.0739325937231 * D0.Q)      # the step at the price λ
    server = np.array([1, 0, 1, 1, 1, 0, 0, 1, 1, 0])
    k = np.array([12, 22, 14, 32, 13, 15, 30, 11, 32, 32])
    inc = solve_fixed(D, server, k, improve_alpha=False)
    keep = np.ones((D.N, D.M, D.K), bool)

    def milp():
        mp = AssignmentMILP(D, keep, 1.0 / abs(inc["obj"]))
        for m in range(D.M):
            mp.add_cuts(m, [0.0, inc["mu"][m]], [0.0, inc["lam"][m]] + price_points(D, [inc["lam"][m]], n=6)[0])
        return mp

    lb0, found0, _ = milp().solve(30.0, 1e-12)
    mp = milp()
    lb1, found1, _ = mp.solve(30.0, 1e-12, mp.start_vector(server, k))
    opt = found0[-1]
    assert not (np.array_equal(opt[0], server) and np.array_equal(opt[1], k))   # the start is not optimal
    assert any(np.array_equal(s, opt[0]) and np.array_equal(kk, opt[1]) for s, kk in found1)
    assert lb1 == pytest.approx(lb0, rel=1e-9, abs=1e-12)


def test_master_purge_keeps_the_certified_optimum(monkeypatch):
    """The Lagrangian master dropping its slack LP rows (lagrangian.Master.purge, forced here at 30 rows)
    changes neither the certified optimum nor the validity of the root bound, on both methods."""
    import mecsplit_exact.lagrangian as lg

    v = load_variant("default")
    inst = generate(v, 10, 3, 2)
    ref = {m: solve(v, inst, "exact", {"method": m}) for m in ("oa", "bnb")}
    purges = []
    purge = lg.Master.purge

    def counted(self):
        purges.append(len(self.c))
        purge(self)

    monkeypatch.setattr(lg, "PURGE_ROWS", 30)
    monkeypatch.setattr(lg, "ALL_ROWS", 0)          # row generation (the purge only runs with it)
    monkeypatch.setattr(lg.Master, "purge", counted)
    for method, a in ref.items():
        r = solve(v, inst, "exact", {"method": method})
        assert r.status == "optimal" and r.verification["verdict"] == "ok"
        assert r.objective == pytest.approx(a.objective, rel=1e-7)
        assert r.bound <= a.objective * (1 + 1e-12) and a.bound <= r.objective * (1 + 1e-12)
        assert r.extra["root_lagrangian_bound"] <= a.objective
        assert r.extra["root_lagrangian_bound"] == pytest.approx(a.extra["root_lagrangian_bound"], rel=1e-6)
    assert len(purges) >= 2


@pytest.mark.parametrize("name,over", [("default", None), ("hardware-2024", SPLIT)], ids=["default", "hardware-split"])
def test_neighbourhood_milp_is_the_best_reassignment_of_its_servers(name, over):
    """AssignmentMILP.neighbourhood (the large-neighbourhood search's sub-MILP, docs/exact.md §2d) returns
    the best re-assignment of the users on the chosen servers among those servers by the full MILP's cost
    model: its value there (AssignmentMILP.point: cost columns at the smallest values the cuts allow)
    equals the minimum over every such re-assignment, enumerated, also with extra cut prices given to the
    sub-MILP alone (then added to the MILP); the other users stay where they were."""
    import itertools

    from mecsplit_exact.oa import price_points

    v = load_variant(name, overrides=over)
    inst = generate(v, 6, 5, 1)
    D = Data(v, inst)
    keep = np.zeros((D.N, D.M, D.K), bool)
    kk = np.array([0, 1, 0, 2, 1, 0]) if name != "default" else np.zeros(D.N, int)
    keep[np.arange(D.N), :, kk] = True
    keep &= D.possible
    server = np.array([0, 1, 2, 3, 4, 0])
    inc = solve_fixed(D, server, kk, improve_alpha=False)
    milp = AssignmentMILP(D, keep, 1.0 / inc["obj"])
    mus = price_points(D, inc["mu"], n=6, eq=D.eq_f)
    lams = price_points(D, inc["lam"], n=4)
    for m in range(D.M):
        milp.add_cuts(m, [0.0, inc["mu"][m]] + mus[m], [0.0, inc["lam"][m]] + lams[m])

    def value(s, k):
        x = milp.point(s, k)
        return np.inf if x is None else float(milp.cost @ x)

    group = np.array([0, 2, 3, 4])
    near = price_points(D, np.full(group.size, 1e-4), 0.9, 3)   # extra prices (the budget does not bind here:
    # μ = 0, so these rows are slack unless mis-built): the sub-MILP's own rows, then the MILP's
    s2, k2, sub_value = milp.neighbourhood(group, server, kk, 30.0, near)
    for m, mus_m in zip(group, near):
        milp.add_cuts(int(m), mus_m)
    free = np.nonzero(np.isin(server, group))[0]
    best = np.inf
    for pick in itertools.product(group, repeat=free.size):
        s3 = server.copy()
        s3[free] = pick
        best = min(best, value(s3, kk))
    assert np.array_equal(s2[~np.isin(server, group)], server[~np.isin(server, group)])
    assert np.all(np.isin(s2[free], group)) and np.array_equal(k2, kk)
    assert value(s2, k2) == pytest.approx(best, rel=1e-9, abs=1e-9)
    x = milp.point(s2, k2)      # the group's part of its MILP value is the sub-MILP's objective
    part = float(milp.cost[: milp.nx] @ (x[: milp.nx] * np.isin(milp.on, free)) + x[milp.nx + group].sum()
                 + x[milp.nx + D.M + group].sum())
    assert sub_value == pytest.approx(part, rel=1e-7, abs=1e-9)


def test_milp_costs_its_start_incumbent_exactly(monkeypatch):
    """Every MILP round starts from an incumbent the MILP costs exactly (bnb.py outer_approximation: the
    local search runs before the cuts are built, and every round ends by cutting the incumbent at its own
    multipliers), so a MILP solution equal to it is never valued below its exact cost: at each HiGHS run,
    the incumbent's MILP value (AssignmentMILP.point) equals its exact objective. Here the local search
    improves the first incumbent, so without those cuts the first run values it 1e-7 low."""
    import mecsplit_exact.oa as oa

    seen = []
    run = oa.AssignmentMILP.solve

    def checked(self, *a, **kw):
        inc = kw["incumbent"]()
        x = self.point(inc["server"], inc["k"])
        seen.append((inc["obj"], float(self.offset.sum() + self.cost @ x / self.sc)))
        return run(self, *a, **kw)

    monkeypatch.setattr(oa.AssignmentMILP, "solve", checked)
    v = load_variant("default")
    r = solve(v, generate(v, 30, 5, 0), "exact", {"rel_gap": 1e-6})
    assert r.status == "optimal" and r.extra["local_search"]["improvements"] > 0 and seen
    for exact, milp_value in seen:
        assert milp_value == pytest.approx(exact, rel=1e-11)


def test_a_milp_stopped_once_runs_in_full_the_next_time():
    """HiGHS keeps a model's user-interrupt flag from its last run: a round stopped by the caller's test
    (``stop``) must not stop the next round of the same model at its first callback."""
    from mecsplit_exact.oa import price_points

    v = load_variant("default")
    inst = generate(v, 20, 4, 0)
    D = Data(v, inst)
    inc = solve_fixed(D, np.arange(D.N) % D.M, np.zeros(D.N, int))
    keep = np.isfinite(D.user_part)[:, None, :].repeat(D.M, axis=1) & D.possible

    def milp():
        mp = AssignmentMILP(D, keep, 1.0 / abs(inc["obj"]))
        for m in range(D.M):
            mp.add_cuts(m, [0.0, inc["mu"][m]] + price_points(D, inc["mu"], n=10)[m], [0.0, inc["lam"][m]])
        return mp

    calls = []
    mp = milp()
    mp.solve(30.0, 1e-12, stop=lambda lb: calls.append(lb) or True)      # stopped at its first callback
    assert calls
    lb, found, limited = mp.solve(30.0, 1e-12, stop=lambda lb: False)
    lb0, found0, _ = milp().solve(30.0, 1e-12, stop=lambda lb: False)
    assert not limited and found
    assert lb == pytest.approx(lb0, rel=1e-9, abs=1e-12)


def test_milp_settings_are_the_ones_highs_runs_with(monkeypatch):
    """Every numeric and search setting (oa.NUMERICS, oa.SEARCH) reaches the MILP's HiGHS model with its
    value, and a setting HiGHS does not know stops the build instead of being ignored (HiGHS only
    returns a status for it)."""
    import highspy

    import mecsplit_exact.oa as oa

    v = load_variant("default")
    D = Data(v, generate(v, 6, 2, 0))
    keep = np.isfinite(D.user_part)[:, None, :].repeat(D.M, axis=1) & D.possible
    mp = AssignmentMILP(D, keep, 1.0)
    for name, value in {**oa.NUMERICS, **oa.SEARCH}.items():
        status, got = mp.h.getOptionValue(name)
        assert status == highspy.HighsStatus.kOk and got == value, name
    monkeypatch.setitem(oa.SEARCH, "mip_pool_age_limt", 100)
    with pytest.raises(RuntimeError, match="mip_pool_age_limt"):
        AssignmentMILP(D, keep, 1.0)
