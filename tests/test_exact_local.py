"""The exact solver's local search (local.py, docs/exact.md §2d).

* the screen's predicted change of every move and swap is a lower bound on the true change, and with
  the tokens upload (bandwidth almost free) it is the true change: checked against the edge and uplink
  blocks solved independently (SLSQP in log variables, tests/test_exact.py) on "le" and "eq" budgets;
* the search only ever offers verified improvements and stops at an assignment no move or swap
  improves (an exhaustive check with the fixed-assignment solver);
* the swap pre-selection above MAX_PAIRS keeps the screen's predictions for the pairs it keeps;
* the quick screen predicts exactly what the screen predicts for the candidates it keeps, its
  second-order model ranks the candidates as the screen does, and a search that starts every pass with
  it still ends where the full screen predicts no improvement;
* the option's type is checked.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mecsplit_exact")

from mecsplit.errors import InputError  # noqa: E402
from mecsplit.instance import generate  # noqa: E402
from mecsplit.solve import solve  # noqa: E402
from mecsplit.variant import load_variant  # noqa: E402
import mecsplit_exact.local as local  # noqa: E402
from mecsplit_exact.fixed import solve_fixed  # noqa: E402
from mecsplit_exact.subproblems import Data  # noqa: E402

from test_exact import L4, SPLIT, _fixed_reference, _terms  # noqa: E402


def _apply(r, kind, i, j, kbest):
    s, k = r["server"].copy(), r["k"].copy()
    if kind == "move":
        s[i], k[i] = j, kbest[i, j]
    else:
        si, sj = s[i], s[j]
        s[i], k[i], s[j], k[j] = sj, kbest[i, sj], si, kbest[j, si]
    return s, k


@pytest.mark.parametrize("name,seed,over,tight", [("default", 0, L4, True), ("liu-zhao-2024", 1, L4, True),
                                                  ("hardware-2024", 2, SPLIT, False)],
                         ids=["default", "liu-zhao-eq", "hardware-activations"])
def test_screen_predictions_against_independent_blocks(name, seed, over, tight):
    v = load_variant(name, overrides=over)
    inst = generate(v, 5, 3, seed)
    D, T = Data(v, inst), _terms(v, inst)
    r = solve_fixed(D, np.array([0, 1, 2, 0, 1]), np.zeros(5, int), improve_alpha=False)
    move, swap, kbest = local.LocalSearch(D).screen(r)
    cache = {}
    base = _fixed_reference(T, r["server"], D.alphas[r["k"]], cache)
    assert abs(base - r["obj"]) <= 1e-7 * abs(base)
    checked = 0
    for kind, table in (("move", move), ("swap", swap)):
        for i, j in zip(*np.nonzero(np.isfinite(table))):
            s, k = _apply(r, kind, i, j, kbest)
            true = _fixed_reference(T, s, D.alphas[k], cache) - base
            assert table[i, j] <= true + 1e-7 * abs(base), (kind, i, j, table[i, j], true)
            if tight:   # the bandwidth price is ~1e-11 with the tokens upload: first order is exact
                assert abs(table[i, j] - true) <= 1e-7 * abs(base), (kind, i, j, table[i, j], true)
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("top", [None, 2], ids=["quick-top-default", "quick-top-2"])
@pytest.mark.parametrize("name", ["default", "liu-zhao-2024"])
def test_search_ends_in_a_verified_local_optimum(name, top, monkeypatch):
    if top is not None:   # the quick screen keeps 2 candidates per kind: passes fall back to the full screen
        monkeypatch.setattr(local, "QUICK_TOP", top)
    v = load_variant(name, overrides=L4)
    inst = generate(v, 8, 3, 4)
    D = Data(v, inst)
    start = solve_fixed(D, np.arange(8) % 3, np.zeros(8, int), improve_alpha=False)
    offered = []

    def offer(s, k):
        q = solve_fixed(D, s, k, improve_alpha=False)
        offered.append(q["obj"])
        return q

    ls = local.LocalSearch(D)
    r = ls.improve(start, np.inf, lambda: 0.0, offer)
    assert ls.stats["improvements"] >= 1 and r["obj"] < start["obj"]
    assert ls.stats["passes"] > ls.stats["quick_passes"] >= 1      # quick passes, and the full one at the end
    assert r["obj"] == min([start["obj"]] + offered)
    again = solve_fixed(D, r["server"], r["k"], improve_alpha=False)
    assert again["obj"] == pytest.approx(r["obj"], rel=1e-12)
    # no move or swap (with the moved users' best splits) improves it: exhaustive check
    _, _, kbest = ls.screen(r)
    cnt = np.bincount(r["server"], minlength=3)
    for i in range(8):
        for j in range(3):
            if j != r["server"][i] and not (D.eq_f and cnt[r["server"][i]] == 1):
                s, k = _apply(r, "move", i, j, kbest)
                assert solve_fixed(D, s, k, improve_alpha=False)["obj"] >= r["obj"] * (1 - 1e-12)
        for i2 in range(i + 1, 8):
            if r["server"][i2] != r["server"][i]:
                s, k = _apply(r, "swap", i, i2, kbest)
                assert solve_fixed(D, s, k, improve_alpha=False)["obj"] >= r["obj"] * (1 - 1e-12)


def test_swap_preselection_keeps_exact_predictions(monkeypatch):
    v = load_variant("default", overrides=L4)
    inst = generate(v, 12, 3, 5)
    D = Data(v, inst)
    r = solve_fixed(D, np.arange(12) % 3, np.zeros(12, int), improve_alpha=False)
    full = local.LocalSearch(D).screen(r)[1]
    monkeypatch.setattr(local, "MAX_PAIRS", 10)
    part = local.LocalSearch(D).screen(r)[1]
    kept = np.isfinite(part)
    assert kept.sum() == 10 and np.isfinite(full).sum() == 48
    assert np.allclose(part[kept], full[kept], rtol=0, atol=1e-12 * r["obj"])


@pytest.mark.parametrize("name,over,N,M,seed", [("default", L4, 12, 3, 5), ("liu-zhao-2024", L4, 12, 3, 1),
                                                 ("hardware-2024", SPLIT, 12, 3, 2), ("default", None, 30, 5, 0)],
                         ids=["default", "liu-zhao-eq", "hardware-activations", "default-30x5"])
def test_quick_screen_keeps_the_screens_predictions_and_ranks_like_it(name, over, N, M, seed):
    from scipy.stats import spearmanr

    v = load_variant(name, overrides=over) if over else load_variant(name)
    D = Data(v, generate(v, N, M, seed))
    r = solve_fixed(D, np.arange(N) % M, np.zeros(N, int), improve_alpha=False)
    ls = local.LocalSearch(D)
    move, swap, kbest = ls.screen(r)
    # every candidate kept: the same tables, value for value
    qm, qs, qk = ls.quick_screen(r, top=10**9)
    assert np.array_equal(qk, kbest) and np.array_equal(qm, move) and np.array_equal(qs, swap)
    # the model's estimates: the same candidates allowed, ranked as the screen ranks them
    em, es = ls.estimates(ls._state(r))
    for exact, est in ((move, em), (swap, es)):
        ok = np.isfinite(exact)
        assert np.array_equal(ok, np.isfinite(est)) and ok.sum() >= 20
        assert spearmanr(exact[ok], est[ok]).statistic >= 0.98
    # a few kept: the model's best, each predicted exactly as the screen does
    qm, qs, _ = ls.quick_screen(r, top=5)
    for exact, est, quick in ((move, em, qm), (swap, es, qs)):
        kept = np.isfinite(quick)
        assert kept.sum() == 5 and np.array_equal(quick[kept], exact[kept])
        assert est[kept].max() <= np.sort(est[np.isfinite(est)])[4]


def test_local_search_option_is_checked():
    v = load_variant("default")
    inst = generate(v, 4, 2, 0)
    with pytest.raises(InputError, match="exact.local_search.*bool"):   # the framework checks option types
        solve(v, inst, "exact", {"local_search": "yes"})
