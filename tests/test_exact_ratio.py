"""The exact solver on the cost-per-quality ratio (DASHF with whole-layer splits, dinkelbach.py,
docs/exact.md §6).

* the certified ratio equals a full enumeration of servers × splits whose continuous blocks are
  solved by independent SLSQP code (tests/test_exact.py) and whose quality is computed here from the
  formula of the spec (§2.2 [I]: U_n = w_n (q0 + ln(1 + c α/Υ))); every bound in the trace is at
  most that optimum;
* it is never below the DASHF plugin's own certified bound on the continuous variant (a relaxation
  of this one, computed by unrelated grid/Lagrangian code);
* variants it cannot certify are refused with the field named.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("mecsplit_exact")

from mecsplit.errors import InputError  # noqa: E402
from mecsplit.instance import generate  # noqa: E402
from mecsplit.solve import solve  # noqa: E402
from mecsplit.variant import load_variant  # noqa: E402

from test_exact import _fixed_reference, _terms  # noqa: E402

L3 = {"blocks": {"llm": {"layers": 3}}}


def _quality(inst, alpha, Y):
    sq = inst.block("service_quality")
    assert sq["kind"] == "local_log"
    return float(np.sum(np.asarray(sq["weight"]) * (sq["base"] + np.log(1 + sq["gain"] * alpha / Y))))


def _enumerate_ratio(v, inst):
    T = _terms(v, inst)
    Y = int(T["Y"])
    T["stab"] = np.zeros(inst.N)      # the ratio's cost is delay + energy (a stability block only caps α ≤ Υ−1)
    top = Y - 1 if inst.has_block("stability") else Y
    best, cache = np.inf, {}
    for server in itertools.product(range(inst.M), repeat=inst.N):
        server = np.array(server)
        for alpha in itertools.product(range(0, top + 1), repeat=inst.N):
            alpha = np.array(alpha, float)
            best = min(best, _fixed_reference(T, server, alpha, cache) / _quality(inst, alpha, Y))
    return best


STAB = {"blocks": {"llm": {"layers": 3}, "stability": {"enabled": True}}}


@pytest.mark.parametrize("seed,over", [(0, L3), (1, L3), (2, STAB)], ids=["s0", "s1", "with-stability-block"])
def test_ratio_optimum_matches_enumeration(seed, over):
    v = load_variant("dashf-layers-2024", overrides=over)
    inst = generate(v, 3, 2, seed)
    ref = _enumerate_ratio(v, inst)
    r = solve(v, inst, "exact")     # rel_gap 1e-7 (the default)
    assert r.verification["verdict"] == "ok", r.verification
    assert r.status == "optimal" and r.gap <= 1e-7
    assert abs(r.objective - ref) <= 1e-6 * ref, (r.objective, ref)
    assert r.bound <= ref * (1 + 1e-9)
    assert all(t["bound"] is None or t["bound"] <= ref * (1 + 1e-9) for t in r.trace)
    assert r.extra["dinkelbach_steps"] >= 2


def test_ratio_10x2_certified_and_above_the_continuous_bound():
    """The paper's size, certified at the default 1e-7. The whole-layer optimum is feasible for the continuous variant
    dashf-2024, so it is ≥ the DASHF plugin's certified bound there, and the framework's evaluator on
    dashf-2024 gives the same ratio for it."""
    from mecsplit.evaluate import evaluate
    from mecsplit_dashf.bound import lower_bound

    v = load_variant("dashf-layers-2024")
    inst = generate(v, 10, 2, 0)
    r = solve(v, inst, "exact", time_limit_s=120)
    assert r.status == "optimal" and r.verification["verdict"] == "ok"
    assert r.gap <= 1e-7 and r.bound <= r.objective
    assert 0 < min(r.solution["alpha"]) or max(r.solution["alpha"]) < 32   # the split is a real decision
    vc = load_variant("dashf-2024")
    ic = generate(vc, 10, 2, 0)
    sol = {k: np.asarray(val) for k, val in r.solution.items()}
    ev = evaluate(vc, ic, sol)
    assert ev.feasible and ev.objective == pytest.approx(r.objective, rel=1e-9)
    x = {k: sol[k] for k in ("alpha", "f_GHz", "fe_GHz", "p_W", "b_MHz")}
    lb = lower_bound(vc, ic, sol["server"], x, lam_hi=r.objective)["lambda_lb"]
    assert 0 < lb <= r.objective


def test_ratio_time_limit_is_honest():
    v = load_variant("dashf-layers-2024")
    inst = generate(v, 30, 4, 3)
    r = solve(v, inst, "exact", time_limit_s=0.5)
    assert r.status == "time_limit" or (r.status == "optimal" and r.gap <= 1e-7)
    assert r.verification["verdict"] == "ok"
    assert r.wall_time_s < 30            # the limit is honoured (one step at most overruns it by its cleanup)
    assert r.bound is None or r.bound <= r.objective * (1 + 1e-12)


@pytest.mark.parametrize("variant,over,field", [
    ("dashf-2024", {}, "blocks.llm.split"),
    ("dashf-layers-2024", {"blocks": {"service_quality": {"kind": "rate_log"}}}, "blocks.service_quality.kind"),
])
def test_unsupported_ratio_variants_are_refused(variant, over, field):
    v = load_variant(variant, overrides=over)
    inst = generate(v, 3, 2, 0)
    with pytest.raises(InputError, match=field.replace(".", r"\.")):
        solve(v, inst, "exact")
