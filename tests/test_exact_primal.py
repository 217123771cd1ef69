"""Incumbents from a second core (plugins/mecsplit-exact primal.py, docs/exact.md §2e).

* the worker only writes complete assignments, each strictly better (costed exactly) than the one before,
  and none better than the optimum found by full enumeration with independently solved blocks;
* a solve with the worker certifies the same optimum as one without, and leaves no process or file behind;
* HiGHS' options for a solve (mecsplit.quiet.highs_options: its seed and one thread) reach every model made
  inside, whatever number of threads HiGHS' global scheduler was started with before, and leave HiGHS'
  defaults behind; another seed certifies the same optimum.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

pytest.importorskip("mecsplit_exact")

from mecsplit import quiet  # noqa: E402
from mecsplit.instance import generate  # noqa: E402
from mecsplit.solve import solve  # noqa: E402
from mecsplit.variant import load_variant  # noqa: E402
from mecsplit_exact import bnb, primal  # noqa: E402
from mecsplit_exact.fixed import solve_fixed  # noqa: E402
from mecsplit_exact.oa import AssignmentMILP, price_points  # noqa: E402
from mecsplit_exact.subproblems import Data  # noqa: E402

from test_exact import L4, _enumerate  # noqa: E402


def test_worker_writes_better_and_better_complete_assignments(tmp_path):
    v = load_variant("default", overrides=L4)
    inst = generate(v, 3, 2, 0)
    D = Data(v, inst)
    keep = np.isfinite(D.user_part)[:, None, :].repeat(D.M, axis=1) & D.possible
    first = solve_fixed(D, np.arange(D.N) % D.M, np.zeros(D.N, int))
    milp = AssignmentMILP(D, keep, 1.0 / first["obj"])
    for m in range(D.M):    # a coarse cost model: the worker's MILP answers need not be optimal
        milp.add_cuts(m, [0.0] + price_points(D, first["mu"], n=3)[m], [0.0, first["lam"][m]])
    primal.prepare(str(tmp_path), D, milp)
    out = io.StringIO()
    primal.work(str(tmp_path), 5.0, 0, os.getppid(), out=out)
    lines = [json.loads(s) for s in out.getvalue().splitlines()]
    assert lines
    costs = []
    for server, k in lines:
        server, k = np.asarray(server), np.asarray(k)
        assert server.shape == (D.N,) and np.all((server >= 0) & (server < D.M))
        assert np.all(D.possible[np.arange(D.N), server, k])
        costs.append(solve_fixed(D, server, k, improve_alpha=False)["obj"])
    assert all(b < a for a, b in zip(costs, costs[1:]))
    assert costs[-1] >= _enumerate(v, inst) * (1 - 1e-7)


@pytest.mark.skipif(not primal.available(), reason="the worker needs a second core")
def test_solve_with_the_worker_certifies_the_same_optimum(monkeypatch):
    v = load_variant("default")
    inst = generate(v, 30, 5, 0)
    plain = solve(v, inst, "exact", {"rel_gap": 1e-6})
    workers = []

    class Recorded(primal.PrimalWorker):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            workers.append(self)

    monkeypatch.setattr(bnb, "WORKER", 0)
    monkeypatch.setattr(bnb, "PrimalWorker", Recorded)
    r = solve(v, inst, "exact", {"rel_gap": 1e-6})
    assert workers and "primal_worker" in r.extra
    assert plain.status == r.status == "optimal"
    assert r.objective == pytest.approx(plain.objective, rel=2e-6)   # each within 1e-6 of the optimum
    assert r.bound <= plain.objective * (1 + 1e-9) and plain.bound <= r.objective * (1 + 1e-9)
    for w in workers:
        assert w.proc.poll() is not None and not os.path.exists(w.dir)


def _tiny_milp(**options):
    """max x0 + 2 x1 over binaries, run on HiGHS with ``options``: its run status and objective."""
    import highspy

    h = quiet.highs()
    for k, v in options.items():
        h.setOptionValue(k, v)
    h.addVars(2, np.zeros(2), np.ones(2))
    h.changeColsCost(2, np.arange(2, dtype=np.int32), np.array([-1.0, -2.0]))
    h.changeColsIntegrality(2, np.arange(2, dtype=np.int32), np.full(2, highspy.HighsVarType.kInteger))
    return h.run(), h.getInfo().objective_function_value


def test_highs_options_reach_every_model_and_reset_the_scheduler():
    import highspy

    ok = highspy.HighsStatus.kOk
    assert _tiny_milp(threads=2) == (ok, -3.0)        # the scheduler now has 2 threads
    with quiet.highs_options(threads=1, random_seed=7):
        h = quiet.highs()
        assert h.getOptionValue("threads")[1] == 1 and h.getOptionValue("random_seed")[1] == 7
        assert _tiny_milp() == (ok, -3.0)             # fails ("already initialized to use 2") without the reset
    h = quiet.highs()
    assert h.getOptionValue("threads")[1] == 0 and h.getOptionValue("random_seed")[1] == 0
    assert _tiny_milp(threads=2) == (ok, -3.0)        # fails ("initialized to use 1") without the reset on exit


def test_highs_takes_options_checked_and_keeps_the_blocks_when_verbose(monkeypatch):
    """``quiet.highs(options)`` sets them, with the block's (seed, threads) also under ``--verbose``, and a
    setting HiGHS refuses raises with its name (HiGHS' setOptionValue only returns a status)."""
    h = quiet.highs({"mip_rel_gap": 0.25, "presolve": "off"})
    assert h.getOptionValue("mip_rel_gap")[1] == 0.25 and h.getOptionValue("presolve")[1] == "off"
    for bad in ({"mip_rel_gapp": 0.1}, {"mip_rel_gap": "tight"}, {"presolve": "sometimes"}):
        with pytest.raises(RuntimeError, match=next(iter(bad))):
            quiet.highs(bad)
    monkeypatch.setenv("MECSPLIT_VERBOSE", "1")
    with quiet.highs_options(random_seed=11):
        h = quiet.highs({"mip_rel_gap": 0.25})
    assert h.getOptionValue("random_seed")[1] == 11 and h.getOptionValue("mip_rel_gap")[1] == 0.25


def test_another_seed_certifies_the_same_optimum():
    v = load_variant("default")
    inst = generate(v, 30, 5, 1)
    a, b = (solve(v, inst, "exact", {"rel_gap": 1e-6}, seed=s) for s in (0, 12345))
    assert a.status == b.status == "optimal"
    assert a.objective == pytest.approx(b.objective, rel=2e-6)
    assert a.bound <= b.objective * (1 + 1e-9) and b.bound <= a.objective * (1 + 1e-9)
