"""Every variant file in models/ is solved on a tiny instance by a generic path (issue 2 point 1).

For each variant (found at test time, so variants added later are covered): a 2-user x 1-server
instance (``llm.layers`` overridden to 4 when that block exists), solved by ``enumerate`` (every integer
assignment + Ipopt) and by ``scip`` (global, 20 s limit). Checks: the framework's verification is ok,
the Pyomo objective at the returned point equals the evaluator's objective, and SCIP's certificate
(if any) agrees with the enumeration: same optimum to 1e-6 relative, bound never above the enumeration's
verified incumbent.
"""

from __future__ import annotations

import math

import pyomo.environ as pyo
import pytest

pytest.importorskip("mecsplit_peers")

from mecsplit.errors import InputError  # noqa: E402
from mecsplit.evaluate import evaluate  # noqa: E402
from mecsplit.instance import generate  # noqa: E402
from mecsplit.model import build_model, load_solution  # noqa: E402
from mecsplit.plugins import get_manager  # noqa: E402
from mecsplit.servers import fixed_server_count  # noqa: E402
from mecsplit.solve import solve  # noqa: E402
from mecsplit.variant import available_variants, load_variant  # noqa: E402

VARIANTS = sorted(available_variants())

# Measured wrong certificates of SCIP 9 (PySCIPOpt 6.3.0) through Pyomo scip_direct, kept visible. With SCIP's
# default feastol 1e-6, sft-2025 2x1 (4 layers, seed 3) was certified at 0.402047 although the evaluator verifies
# 0.399651; the plugin's default feastol 1e-8 fixes it (test_peers.py::test_default_feastol_fixes_sft_certificate).
# A variant listed here would xfail with the numbers instead of failing.
KNOWN_SCIP_WRONG: dict[str, str] = {
    # measured: 2x1, 4 layers, seed 3, 8 slots: SCIP certifies 0.4095992 (bound 0.4095999) while the evaluator
    # verifies the enumeration's 0.4095975 — 6e-6 relative, SCIP's feasibility tolerance on 16 rate constraints
    "sft-2025-dynamic": "SCIP's certificate on the 8-slot SFT model is off by ~6e-6 relative",
    # α is fixed by its bounds and the optimum is f = f_max; SCIP's dual bound lands ~1e-8 (relative) above
    # the optimum, inside its default 1e-6 feasibility tolerance on f ≤ f_max
    "splitllm-device-2025": "SCIP dual bound 1e-8 above the trivial optimum (numerical tolerance)",
}


def tiny(name):
    v = load_variant(name)
    if v.has_block("llm"):
        try:
            v = load_variant(name, overrides={"blocks": {"llm": {"layers": 4}}})
        except InputError:
            pass
    return v, generate(v, 2, fixed_server_count(v) or 1, seed=3)  # explicit per-server lists fix M


_cache: dict = {}


def run(name, solver):
    if (name, solver) not in _cache:
        v, inst = tiny(name)
        _cache[(name, solver)] = (v, inst, solve(v, inst, solver, None, time_limit_s=10.0))
    return _cache[(name, solver)]


def pyomo_objective(v, inst, sol):
    m = build_model(v, inst)
    load_solution(m, v, inst, sol)   # sets the max_delay epigraph τ (per slot) at its tight value
    return float(pyo.value(m.obj))


def test_variants_found():
    assert {"default", "liu-zhao-2024", "hardware-2024"} <= set(VARIANTS)


@pytest.mark.parametrize("name", VARIANTS)
def test_enumerate_solves_every_variant(name):
    v, inst, r = run(name, "enumerate")
    assert r.status.value == "feasible", r.message
    assert r.verification["verdict"] == "ok", r.verification
    assert r.extra["assignments"] >= 1 and r.extra["verified_points"] >= 1
    ev = evaluate(v, inst, r.solution)
    assert ev.feasible and ev.objective == pytest.approx(r.objective, rel=1e-12)
    assert pyomo_objective(v, inst, r.solution) == pytest.approx(ev.objective, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", VARIANTS)
def test_scip_on_every_variant(name):
    spec = get_manager().solvers.get("scip")
    if spec is None or spec.missing_requirements():
        pytest.skip("pyscipopt missing")
    v, inst, s = run(name, "scip")
    _, _, e = run(name, "enumerate")
    wrong = [f"verifier flags {s.verification['flags']}"] if s.verification["verdict"] == "flagged" else []
    assert s.verification["verdict"] in ("ok", "flagged"), (s.message, s.verification)
    assert s.status.value in ("optimal", "time_limit", "error"), s.message
    if s.solution is not None:
        ev = evaluate(v, inst, s.solution)
        assert pyomo_objective(v, inst, s.solution) == pytest.approx(ev.objective, rel=1e-9, abs=1e-12)
    if s.bound is not None and math.isfinite(s.bound) and s.bound > e.objective + 1e-9 * max(1, abs(e.objective)):
        wrong.append(f"bound {s.bound} > verified {e.objective}")
    if s.status.value == "optimal" and abs(s.objective - e.objective) > 1e-6 * max(1, abs(e.objective)):
        wrong.append(f"certified {s.objective} != enumeration {e.objective}")
    if wrong and name in KNOWN_SCIP_WRONG:
        pytest.xfail(KNOWN_SCIP_WRONG[name] + ": " + "; ".join(wrong))
    assert not wrong, wrong


@pytest.mark.parametrize("name", VARIANTS)
def test_mindtpy_on_every_variant(name):
    pytest.importorskip("highspy")
    v, inst, r = run(name, "mindtpy-oa")
    _, _, e = run(name, "enumerate")
    assert r.verification["verdict"] == "ok", (r.message, r.verification)
    assert r.status.value in ("feasible", "time_limit") and r.bound is None, r.message
    ev = evaluate(v, inst, r.solution)
    assert pyomo_objective(v, inst, r.solution) == pytest.approx(ev.objective, rel=1e-9, abs=1e-12)
    # a heuristic: never better than the enumeration beyond the NLP tolerance
    assert r.objective >= e.objective - 1e-6 * max(1, abs(e.objective))
