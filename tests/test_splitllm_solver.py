"""The ``splitllm`` solver (plugins/mecsplit-splitllm; docs/splitllm.md): its points pass the framework's
check on every scheme, its resource step is the convex optimum (Ipopt on the Pyomo model agrees, and its own
certificate brackets it), it finds the enumerated optimum on a tiny instance, its min-peak cuts are the
brute-force minimum, and two-tier SL needs at least the three-tier scheme's peak memory."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pyomo.environ as pyo
import pytest

pytest.importorskip("mecsplit_splitllm")

from mecsplit.blocks.memory import peak_memory_GB  # noqa: E402
from mecsplit.evaluate import evaluate  # noqa: E402
from mecsplit.instance import generate  # noqa: E402
from mecsplit.model import build_model, load_solution  # noqa: E402
from mecsplit.plugins import get_manager  # noqa: E402
from mecsplit.solve import solve  # noqa: E402
from mecsplit.variant import load_variant  # noqa: E402
from mecsplit_splitllm.memory_search import min_peak_cuts  # noqa: E402
from mecsplit_splitllm.resources import solve_resources  # noqa: E402
from mecsplit_splitllm.scheme import Scheme  # noqa: E402
from mecsplit_splitllm.search import Search  # noqa: E402

SCHEMES = ("splitllm-2025", "splitllm-sl-2025", "splitllm-sfl-2025", "splitllm-device-2025", "splitllm-cloud-2025")


@pytest.mark.parametrize("kind", ["max_delay", "peak_memory"])
@pytest.mark.parametrize("name", SCHEMES)
def test_points_pass_check(name, kind, tmp_path, cli):
    v = load_variant(name, overrides={"objective": {"kind": kind}})
    inst = generate(v, 7, 2, seed=2)
    r = solve(v, inst, "splitllm", seed=2)
    assert r.status.value == "feasible", r.message
    assert r.verification["verdict"] == "ok" and r.verification["feasible"], r.verification
    assert {"peak_memory_GB.device", "peak_memory_GB.edge", "peak_memory_GB.cloud", "peak_memory_GB.overall"} <= set(r.metrics)
    if kind == "max_delay" and name == "splitllm-2025":   # and through the command line, as a user would
        inst.save(tmp_path / "i.json")
        (tmp_path / "r.json").write_text(json.dumps({"status": "feasible", "objective": r.objective, "solution": r.solution}))
        p = cli("check", "--variant", name, "--instance", str(tmp_path / "i.json"), str(tmp_path / "r.json"))
        assert p.returncode == 0, p.stdout + p.stderr
        assert "peak_memory_GB.overall" in p.stdout and "verdict: ok" in p.stdout


def test_resource_step_is_the_convex_optimum():
    """Association and cuts fixed, the rest is convex: Ipopt on the Pyomo model (χ, α, β fixed) reaches the
    step's value, which its own certificate brackets."""
    pytest.importorskip("cyipopt")
    from mecsplit.ipopt import solve_nlp

    v = load_variant("splitllm-2025")
    inst = generate(v, 8, 2, seed=6)
    sc = Scheme.of(v, inst)
    rng = np.random.default_rng(1)
    server = rng.integers(0, 2, 8)
    alpha = rng.integers(1, 3, 8).astype(float)
    beta = alpha + rng.integers(10, 14, 8)
    res = solve_resources(sc, server, alpha, beta)
    assert np.all(res.lower <= res.tau * (1 + 1e-12)) and np.all(res.tau - res.lower <= 1e-8 * res.tau)
    sol = {"server": server, "alpha": alpha, "beta": beta, "f_GHz": sc.f_max, "p_W": sc.p_max,
           "b_MHz": res.b, "fe_GHz": res.fe, "fc_GHz": res.fc}
    ev = evaluate(v, inst, sol)
    assert ev.feasible and ev.objective == pytest.approx(res.tau.max(), rel=1e-12)
    m = build_model(v, inst)
    ref = {k: np.asarray(x, float) for k, x in inst.reference_solution().items()}
    load_solution(m, v, inst, dict(ref, server=server, alpha=alpha, beta=beta), fix=("server", "alpha", "beta"))
    out = solve_nlp(m)
    assert out.status == "optimal"
    assert out.objective == pytest.approx(res.tau.max(), rel=1e-6)
    assert out.objective >= res.lower.max() * (1 - 1e-6)


def test_finds_the_enumerated_optimum_on_a_tiny_instance():
    """2 users, 2 edges, 4 layers: every association and cut pair, each with the exact resource step (itself
    checked against Ipopt above) — the solver's local search reaches the best of them."""
    v = load_variant("splitllm-2025", overrides={"blocks": {"llm": {"layers": 4}}})
    for seed in (1, 2):
        inst = generate(v, 2, 2, seed=seed)
        sc = Scheme.of(v, inst)
        best = np.inf
        for server in itertools.product(range(2), repeat=2):
            cuts = [sc.cuts(n, server[n]) for n in range(2)]
            for c0, c1 in itertools.product(*cuts):
                a, b = np.array([c0[0], c1[0]]), np.array([c0[1], c1[1]])
                best = min(best, solve_resources(sc, np.array(server), a, b).tau.max())
        r = solve(v, inst, "splitllm", seed=seed)
        assert r.verification["verdict"] == "ok"
        assert r.objective == pytest.approx(best, rel=1e-7), seed


def test_min_peak_cuts_are_the_brute_force_minimum():
    for name in ("splitllm-2025", "splitllm-sfl-2025"):
        v = load_variant(name, overrides={"blocks": {"llm": {"layers": 6}}, "objective": {"kind": "peak_memory"}})
        inst = generate(v, 3, 2, seed=7)
        sc = Scheme.of(v, inst)
        server = Search(sc).greedy_association()
        a, b = min_peak_cuts(v, inst, sc, server)
        got = peak_memory_GB(inst, {"server": server, "alpha": a, "beta": b})["overall"]
        brute = min(peak_memory_GB(inst, {"server": server, "alpha": np.array([c[0] for c in cs]),
                                          "beta": np.array([c[1] for c in cs])})["overall"]
                    for cs in itertools.product(*[sc.cuts(n, server[n]) for n in range(3)]))
        assert got == pytest.approx(brute, rel=1e-9), name


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_two_tier_sl_needs_at_least_the_three_tier_peak(seed):
    """Same seeded instance, each scheme at its least peak (objective peak_memory): two-tier SL's fullest
    machine holds at least as much as the three-tier scheme's; and for any SL point, moving one layer from
    the edge to the cloud (β = Υ − 1) does not raise the peak."""
    peaks = {}
    for name in ("splitllm-2025", "splitllm-sl-2025"):
        v = load_variant(name, overrides={"objective": {"kind": "peak_memory"}})
        inst = generate(v, 20, 4, seed=seed)
        r = solve(v, inst, "splitllm", seed=seed)
        assert r.verification["verdict"] == "ok"
        peaks[name] = r.metrics["peak_memory_GB.overall"], r.solution, inst
    assert peaks["splitllm-sl-2025"][0] >= peaks["splitllm-2025"][0]
    _, sl_sol, _ = peaks["splitllm-sl-2025"]
    three = generate(load_variant("splitllm-2025"), 20, 4, seed=seed)
    pt = {"server": np.asarray(sl_sol["server"]), "alpha": np.asarray(sl_sol["alpha"]), "beta": np.full(20, 31.0)}
    assert peak_memory_GB(three, pt)["overall"] <= peaks["splitllm-sl-2025"][0]


def test_same_seed_same_result():
    v = load_variant("splitllm-2025")
    inst = generate(v, 6, 2, seed=9)
    a, b = solve(v, inst, "splitllm", seed=1), solve(v, inst, "splitllm", seed=1)
    assert a.solution == b.solution and a.objective == b.objective


def test_refuses_what_it_does_not_model_with_a_reason():
    from mecsplit.errors import InputError

    for over, why in (({"objective": {"kind": "weighted_sum"}}, "objective kind 'weighted_sum'"),
                      ({"blocks": {"memory_scheme": {"edge_streams": "per_user"}}}, "couples the users' cuts"),
                      ({"constraints": [{"name": "phone", "for_each": "user", "expr": "memory_GB <= 3"}]}, "constraint 'phone'")):
        v = load_variant("splitllm-2025", overrides=over)
        with pytest.raises(InputError, match=why):
            solve(v, generate(v, 3, 2, seed=0), "splitllm")
    assert get_manager().solvers["splitllm"].capabilities.why_not(load_variant("default")) is not None
