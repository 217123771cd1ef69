"""The root Lagrangian's master LP (lagrangian.py; docs/exact.md §2).

* Master.purge keeps the LP optimum (moved here from test_exact_oa.py);
* a master that more than doubles is solved by HiGHS' interior point with crossover (IPM_ROWS): same LP
  value as the dual simplex on the same rows, and a basic solution, so Master.purge still drops exactly
  the zero-dual cuts and keeps the LP optimum;
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mecsplit_exact")

from mecsplit.instance import generate  # noqa: E402
from mecsplit.variant import load_variant  # noqa: E402
from mecsplit_exact import lagrangian  # noqa: E402
from mecsplit_exact.bnb import BnB, QuietTracer  # noqa: E402
from mecsplit_exact.lagrangian import FIELDS, Master, _scales, maximise  # noqa: E402
from mecsplit_exact.subproblems import Data  # noqa: E402


def _root():
    """default 10×3 seed 2: the root node only (bnb, node_limit 1)."""
    v = load_variant("default")
    D = Data(v, generate(v, 10, 3, 2))
    b = BnB(D, QuietTracer(), 1e-7, 1e-12, 1, None, colgen="off")
    b.run()
    return D, b


def _master():
    """The root's master after maximise from the incumbent's multipliers, and an LP box around them."""
    D, b = _root()
    N, M = D.N, D.M
    lam, mu = b.inc["lam"], b.inc["mu"]
    sl, sm = _scales(lam), _scales(mu)
    master = Master(D)
    maximise(D, b.ev, master, lam, mu, np.ones((N, M), bool), np.zeros(N, int), np.full(N, D.K - 1), sl=sl, sm=sm)
    return D, master, (np.zeros(M), 2 * lam + sl, np.zeros(M), 2 * mu + sm, sl, sm)


def _copy(D, master, rows):
    out = Master(D)
    out.add(*(getattr(master, name)[rows] for name in FIELDS))
    return out


def test_master_purge_keeps_the_lp_optimum():
    """Dropping the cuts with zero dual at an LP optimum (lagrangian.Master.purge) leaves that LP's
    optimal value unchanged (its dual solution stays feasible): the same box gives the same value after
    the rebuild, with fewer rows. (A purge that dropped the cuts carrying the weights raises the value.)"""
    _, master, box = _master()
    before = master.solve(*box)
    rows = len(master.c)
    master.purge()
    after = master.solve(*box)
    assert len(master.c) == int(np.sum(np.abs(before["weights"]) > 0)) < rows
    assert after["ub"] == pytest.approx(before["ub"], rel=1e-12)   # dropping the active cuts instead: 9.5e-10


def test_master_grown_by_ipm_has_the_simplex_value_and_purges(monkeypatch):
    D, full, box = _master()
    N, R = D.N, len(full.c)
    ref = _copy(D, full, slice(None)).solve(*box)        # built in one go: dual simplex

    calls = []
    orig = lagrangian.quiet.highs

    def spy():
        h = orig()
        set_option = h.setOptionValue
        h.setOptionValue = lambda k, v: (calls.append((k, v)), set_option(k, v))[1]
        return h

    monkeypatch.setattr(lagrangian.quiet, "highs", spy)
    monkeypatch.setattr(lagrangian, "IPM_ROWS", 0)
    users_first = np.unique(full.user, return_index=True)[1]          # one cut per user, then all the rest
    grown = _copy(D, full, np.sort(users_first))
    grown.solve(*box)
    grown.add(*(getattr(full, name) for name in FIELDS))              # the duplicates are skipped
    assert len(grown.c) == R and R - N > N
    sol = grown.solve(*box)
    assert ("solver", "ipm") in calls                                 # the growth went through the IPM
    assert sol["ub"] == pytest.approx(ref["ub"], rel=1e-10)
    nonzero = int(np.sum(np.abs(sol["weights"]) > 0))
    grown.purge()
    after = grown.solve(*box)
    assert len(grown.c) == nonzero < R                                # a basic solution: slack cuts have zero dual
    assert after["ub"] == pytest.approx(ref["ub"], rel=1e-10)
