"""The min–max path's incumbent search and level budgets (mecsplit_exact/minmax_local.py, minmax.MinMax.run;
docs/exact.md §8.8). The references share nothing with the code under test: the framework's evaluator for
every returned point, timing.Timing.check (the exact server check) for the screen's rejections, and a
level oracle with a known answer for the bisection's bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mecsplit_exact")

from mecsplit.evaluate import evaluate  # noqa: E402
from mecsplit.instance import generate  # noqa: E402
from mecsplit.variant import load_variant  # noqa: E402
from mecsplit_exact import minmax  # noqa: E402
from mecsplit_exact.bnb import QuietTracer  # noqa: E402
from mecsplit_exact.minmax_local import candidates, polish  # noqa: E402
from mecsplit_exact.subproblems import Data  # noqa: E402


def _greedy(v, inst, monkeypatch):
    """A MinMax holding the greedy start alone (its local search switched off)."""
    monkeypatch.setattr(minmax, "polish", lambda mm, budget_s: 0)
    mm = minmax.MinMax(Data(v, inst), QuietTracer(), 1e-9, 0.0, None)
    mm.start()
    monkeypatch.undo()
    return mm


@pytest.mark.parametrize("N,M,seed", [(8, 2, 1), (12, 3, 0)])
def test_screen_drops_only_moves_the_exact_check_rejects(N, M, seed, monkeypatch):
    """Every move the weak-duality screen drops (score > 0) fails the exact check at the target level on a
    server it touches; the moves it keeps are ordered by score."""
    v = load_variant("splitllm-2025")
    mm = _greedy(v, generate(v, N, M, seed), monkeypatch)
    T, ms, every = candidates(mm, screen=False)
    kept = candidates(mm)[2]
    dropped = [c for c in every if c[0] > 0]
    assert dropped and len(kept) == len(every) - len(dropped)
    assert [c[0] for c in kept] == sorted(c[0] for c in kept)
    levels = np.full(N, T)
    for score, s2, k2, touched in dropped[:: max(1, len(dropped) // 10)]:
        ex = mm.tm.check(s2, k2, levels, only=touched, proof_only=True)[0]
        assert np.max(ex[touched]) > 0, (score, ex)


@pytest.mark.parametrize("N,M,seed", [(8, 2, 1), (12, 3, 0)])
def test_polish_improves_the_greedy_start_with_verified_points(N, M, seed, monkeypatch):
    """From the greedy start the local search accepts moves, each lowering the min–max value, and ends on a
    point the framework's evaluator finds feasible with its reported largest delay."""
    v = load_variant("splitllm-2025")
    inst = generate(v, N, M, seed)
    mm = _greedy(v, inst, monkeypatch)
    start = mm.ub
    seen = []
    mm.tracer = type("T", (QuietTracer,), {"incumbent": lambda self, obj, sol=None: seen.append(obj)})()
    moves = polish(mm, np.inf)
    assert moves >= 1 and len(seen) == moves
    assert all(b < a for a, b in zip([start] + seen, seen))
    ev = evaluate(v, inst, mm.solution())
    assert ev.feasible, ev.violations
    assert ev.objective == pytest.approx(mm.ub, rel=1e-9)
    assert ev.metrics["max_delay_s"] == pytest.approx(mm.ub, rel=1e-9)


def test_open_levels_leave_the_bound_at_a_proven_level(monkeypatch):
    """The bisection's bookkeeping with a level oracle (MinMax.level_feasible replaced): levels below 10 are
    proven infeasible, [10, 12) stay open (out of budget), 12 and above are feasible (incumbent 12). The
    bound climbs to just below 10 (the open levels are retreated from, never counted), the status is not
    optimal, and the run stops on its own (no time limit)."""
    v = load_variant("splitllm-2025")
    mm = minmax.MinMax(Data(v, generate(v, 4, 2, 0)), QuietTracer(), 1e-9, 0.0, None)
    mm.start()
    mm.inc["obj"] = 12.0
    calls = []

    def oracle(T, strong=False):
        calls.append(T)
        assert len(calls) < 500
        return ("infeasible", None) if T < 10.0 else ("limit", None) if T < 12.0 else ("feasible", 12.0)

    monkeypatch.setattr(mm, "start", lambda warm=None: None)
    monkeypatch.setattr(mm, "level_feasible", oracle)
    mm.alone = 0.0     # the users' own least delays bound nothing here
    _, lb, status = mm.run()
    assert status == "stalled"
    assert 10.0 * (1 - 2 * minmax.RETREAT_MIN) <= lb < 10.0
    assert all(T < 10.0 for T, st in mm.stats["levels"] if st == "infeasible")
    assert any(st == "limit" for _, st in mm.stats["levels"])


def _cut_share(tm, D, n, m, k, T, lam, pi):
    R = tm.price(n, m, k, T, lam, 1.0, pi)[0]
    return R / (lam * D.B[m] + D.F[m] + pi * D.slot)


def test_count_caps_hold_for_every_feasible_set_found():
    """minmax.most_users: each server's users in the incumbent (a set that meets its makespan, exactly)
    never outnumber the cap derived from the feasibility cut at that level, at random prices or the
    server's own; at its own prices the cap is reached somewhere (the caps are not vacuous)."""
    v = load_variant("splitllm-2025")
    rng, tight = np.random.default_rng(0), 0
    for seed in range(3):
        mm = minmax.MinMax(Data(v, generate(v, 10, 2, seed)), QuietTracer(), 1e-9, 0.0, None)
        mm.start()
        D, tm, inc = mm.D, mm.tm, mm.inc
        for srv in range(D.M):
            size = int(np.sum(inc["server"] == srv))
            T = inc["levels"][srv] * (1 + 1e-9)
            n, m, k = np.nonzero(D.possible & (mm.min_delay <= T))
            on = m == srv
            prices = [(inc["lam"][srv], inc["pi"][srv])] + list(
                rng.uniform(0.1, 10.0, (4, 2)) * np.array([D.F[srv] / D.B[srv], D.F[srv] / D.slot]))
            caps = [minmax.most_users(_cut_share(tm, D, n[on], srv, k[on], T, lam, pi), n[on], D.N)
                    for lam, pi in prices]
            assert all(size <= c for c in caps), (seed, srv, size, caps)
            tight += caps[0] == size
    assert tight >= 1


def test_count_caps_prove_the_level_the_milp_could_not():
    """splitllm-2025 20×4 seed 2 (docs/exact.md §8.7–8.8): at T = 32.94 (1 % below the local search's
    incumbent) the feasibility MILP with the cuts alone ran out of 74 s of CPU; the count caps at the
    incumbent's prices sum to fewer than the 20 users, so no assignment meets T."""
    v = load_variant("splitllm-2025")
    inst = generate(v, 20, 4, 2)
    mm = minmax.MinMax(Data(v, inst), QuietTracer(), 1e-9, 0.0, None)
    mm.start()
    D, tm, T = mm.D, mm.tm, 32.94
    assert mm.ub > T
    n, m, k = np.nonzero(D.possible & (mm.min_delay <= T))
    caps = []
    for srv in range(D.M):
        on = m == srv
        caps.append(min(minmax.most_users(_cut_share(tm, D, n[on], srv, k[on], T, lam, pi), n[on], D.N)
                        for lam, pi in mm.prices[srv] | {(0.0, 0.0)}))
    assert sum(caps) < D.N, caps


def test_count_prices_cap_below_the_seen_prices():
    """MinMax.count_prices on splitllm-2025 20×4 seed 2 at T = 33.22 (a level the MILP left open for 185 s of
    CPU with the caps of the seen prices only): the sum it reports is the c cheapest users' shares at its
    prices (recomputed here), and lowering each server's cap with it until it stops gives caps no larger
    than at any seen price and summing to at most the 20 users (below the seen prices' sum)."""
    v = load_variant("splitllm-2025")
    mm = minmax.MinMax(Data(v, generate(v, 20, 4, 2)), QuietTracer(), 1e-9, 0.0, None)
    mm.start()
    D, tm, T = mm.D, mm.tm, 33.22
    n, m, k = np.nonzero(D.possible & (mm.min_delay <= T))
    seen_caps, caps = [], []
    for srv in range(D.M):
        on = m == srv
        P = tm.prepare(n[on], m[on], k[on], np.full(on.sum(), T))
        seen = min(minmax.most_users(_cut_share(tm, D, n[on], srv, k[on], T, lam, pi), n[on], D.N)
                   for lam, pi in mm.prices[srv] | {(0.0, 0.0)})
        c = seen
        while c > 0:
            lam, pi, val = mm.count_prices(srv, P, n[on], c)
            share = _cut_share(tm, D, n[on], srv, k[on], T, lam, pi)
            cheapest = np.array([share[n[on] == u].min() if np.any(n[on] == u) else np.inf for u in range(D.N)])
            assert val == pytest.approx(np.sort(cheapest)[:c].sum(), rel=1e-9)
            new = minmax.most_users(share, n[on], D.N)
            if new >= c:
                break
            c = new
        seen_caps.append(seen)
        caps.append(c)
    assert all(c <= s for c, s in zip(caps, seen_caps))
    assert sum(caps) <= D.N < sum(seen_caps), (caps, seen_caps)
