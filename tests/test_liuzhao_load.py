"""The improved Liu–Zhao association (``liu-zhao-load``, option ``association="load"``, ``start``):
moves priced at the loads they create, checked by the evaluator and against the exact solver."""

from __future__ import annotations

import numpy as np
import pytest

from mecsplit.errors import InputError
from mecsplit.evaluate import evaluate
from mecsplit.instance import generate
from mecsplit.solve import solve
from mecsplit.variant import load_variant

pytest.importorskip("mecsplit_liuzhao")
from mecsplit_liuzhao.cccp import load_moves  # noqa: E402
from mecsplit_liuzhao.model import equal_shares, pairs, to_solution  # noqa: E402
from mecsplit_liuzhao.rules import capacity, greedy_association  # noqa: E402


def _equal_share_objective(v, inst, P, server, x):
    """The evaluator's objective of ``server`` with every user at the equal shares of its server's
    load (α, f, p of ``x``) — independent of the load_moves bookkeeping."""
    server = np.asarray(server, int)
    k = np.bincount(server, minlength=P.M)[server]
    fe_cap = np.inf if P.fe_eq else (P.om["delay"] * P.e_T / (2 * P.om["energy"] * P.e_E)) ** (1 / 3)
    fe_cap = np.broadcast_to(fe_cap, (P.N, P.M))[np.arange(P.N), server]
    sol = to_solution(server, {**x, "b_MHz": P.Bw[server] / k, "fe_GHz": np.minimum(P.F[server] / k, fe_cap)})
    ev = evaluate(v, inst, sol)
    assert ev.feasible, ev.summary()
    return ev.objective


@pytest.mark.parametrize("vname", ["hardware-2024", "default", "liu-zhao-2024"])
def test_load_moves_deltas_match_the_evaluator(vname):
    """Every applied move lowers the evaluator's objective by exactly the move's priced delta (the
    A(f) and stability terms do not depend on the association), and the loads are not capped."""
    v = load_variant(vname)
    inst = generate(v, 12, 3, seed=1)
    P = pairs(v, inst)
    server = greedy_association(P)
    x = equal_shares(P, server)
    r = load_moves(P, server, x)
    srv = server.copy()
    before = _equal_share_objective(v, inst, P, srv, x)
    for mv in r.moves:
        assert srv[mv["user"]] == mv["from"]
        srv[mv["user"]] = mv["to"]
        after = _equal_share_objective(v, inst, P, srv, x)
        assert mv["delta"] < 0
        assert after - before == pytest.approx(mv["delta"], rel=1e-9, abs=1e-12 * abs(before))
        before = after
    assert np.array_equal(srv, r.server)
    if vname == "hardware-2024":  # the uplink dominates: the capped loads (4 each) are left
        assert r.moves and np.bincount(r.server, minlength=P.M).max() > capacity(P)
    if P.fe_eq or P.b_eq:
        assert np.bincount(r.server, minlength=P.M).min() >= 1


@pytest.mark.parametrize("vname", ["hardware-2024", "default", "liu-zhao-2024"])
def test_liu_zhao_load_verified_and_never_worse_than_its_start(vname):
    v = load_variant(vname)
    inst = generate(v, 10, 3, seed=2)
    start = solve(v, inst, "greedy-fp", {}, 30, seed=2)      # the faithful start: capped greedy + FP
    res = solve(v, inst, "liu-zhao-load", {}, 30, seed=2)
    assert res.status == "feasible" and res.verification["verdict"] == "ok"
    ev = evaluate(v, inst, res.solution)
    assert ev.feasible and ev.objective == pytest.approx(res.objective, rel=1e-9)
    assert res.objective <= start.objective * (1 + 1e-12)
    up = solve(v, inst, "liu-zhao", {"start": "uncapped", "association": "load"}, 30, seed=2)
    assert up.verification["verdict"] == "ok"


def test_load_association_closes_the_faithful_gap_on_hardware():
    """hardware-2024 8×2 seed 2: the faithful association (capped start, loads locked by the CCCP
    step's tentative shares) ends > 20 % above the certified optimum; the load moves reach it."""
    v = load_variant("hardware-2024")
    inst = generate(v, 8, 2, seed=2)
    ex = solve(v, inst, "exact", {}, 60, seed=2)
    assert ex.status == "optimal" and ex.verification["verdict"] == "ok"
    faithful = solve(v, inst, "liu-zhao", {}, 30, seed=2)
    improved = solve(v, inst, "liu-zhao-load", {}, 30, seed=2)
    assert faithful.verification["verdict"] == improved.verification["verdict"] == "ok"
    gap_f = faithful.objective / ex.objective - 1
    gap_i = improved.objective / ex.objective - 1
    assert gap_f > 0.2
    assert -1e-6 <= gap_i < gap_f / 100
    assert max(np.bincount(faithful.solution["server"], minlength=2)) == 4  # ⌈8/2⌉, locked


def test_start_option_checked():
    v = load_variant("default")
    inst = generate(v, 4, 2, seed=1)
    with pytest.raises(InputError, match="start"):
        solve(v, inst, "liu-zhao", {"start": "free"}, 10, seed=1)
