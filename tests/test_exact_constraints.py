"""The exact solver on the constraint kinds of the variant-language issue (issue 15 §5): per-user split
caps, rate floors and deadlines inside the per-option subproblems, per-server user caps in the
assignment MILP — certified optimum = enumeration, and honest infeasibility.

The reference is written apart from the plugin: every assignment and split is enumerated (caps checked
here), and each one's continuous problem is the framework's own Pyomo model with the integers fixed,
the constraints added here as Pyomo expressions over the model's variables, solved by Ipopt. That
problem is convex in the logarithms of (f, fe, p, b) (docs/exact.md §1, and the deadline / rate floor
are sublevel sets of functions convex there), so Ipopt's KKT point is its global optimum.
"""

from __future__ import annotations

import itertools

import numpy as np
import pyomo.environ as pyo
import pytest

pytest.importorskip("mecsplit_exact")

from mecsplit import ipopt  # noqa: E402
from mecsplit.evaluate import evaluate  # noqa: E402
from mecsplit.instance import generate  # noqa: E402
from mecsplit.model import build_model, load_solution  # noqa: E402
from mecsplit.variant import load_variant  # noqa: E402
from mecsplit_exact.bnb import QuietTracer  # noqa: E402
from mecsplit_exact.plugin import run  # noqa: E402
from mecsplit_exact.subproblems import Data  # noqa: E402

L3 = {"blocks": {"llm": {"layers": 3}}}           # α ∈ {1, 2}: small enumerations


def _user_delay(m, inst, n):
    """User n's delay (s) as the ledger defines it, written from the model's variables."""
    llm, uc, ec, up = (inst.block(k) for k in ("llm", "user_compute", "edge_compute", "uplink"))
    psi = float(llm["psi_TFLOP"][n])
    t_user = m.alpha[n] * psi * 1e3 / (float(uc["cores"][n]) * float(uc["flops_per_cycle"][n])) / m.f[n]
    cde = ec["cores"] * ec["flops_per_cycle"]
    t_edge = sum(m.chi[n, j] * (float(llm["layers"]) - m.alpha[n]) * psi * 1e3 / float(cde[j]) / m.fe[n, j] for j in m.S)
    t_up = (sum(m.chi[n, j] * float(up["upload_Mbit"][n]) / m.rate[n, j] for j in m.S) if up["delay"] else 0.0)
    return t_user + t_edge + t_up


def _fixed_optimum(v, inst, server, alpha, deadline=None, rate_min=None, beta=None):
    """Optimum of the continuous problem for fixed servers and splits (and second cuts β) with the added
    constraints (Ipopt on the framework's model); inf when Ipopt reports it infeasible."""
    m = build_model(v, inst)
    sol = inst.reference_solution()
    sol["server"], sol["alpha"] = np.asarray(server), np.asarray(alpha, float)
    if beta is not None:
        sol["beta"] = np.asarray(beta, float)
    load_solution(m, v, inst, sol, fix=("server", "alpha") + (("beta",) if beta is not None else ()))
    N = inst.N
    if deadline is not None:
        m.test_deadline = pyo.Constraint([n for n in range(N) if np.isfinite(deadline[n])],
                                         rule=lambda m, n: _user_delay(m, inst, n) <= float(deadline[n]))
    if rate_min is not None:
        m.test_rate = pyo.Constraint([n for n in range(N) if rate_min[n] > 0],
                                     rule=lambda m, n: m.rate[n, int(server[n])] >= float(rate_min[n]))
    r = ipopt.solve_nlp(m, options={"tol": 1e-12, "max_iter": 3000, "bound_relax_factor": 0.0})
    if r.status == "infeasible":
        return np.inf
    assert r.status == "optimal", r.ipopt_status
    return r.objective


def _enumerate(v, inst, max_users=None, alpha_hi=None, deadline=None, rate_min=None):
    Y = int(inst.block("llm")["layers"])
    amax = Y - 1 if inst.has_block("stability") else Y
    best = np.inf
    for server in itertools.product(range(inst.M), repeat=inst.N):
        server = np.array(server)
        if max_users is not None and np.any(np.bincount(server, minlength=inst.M) > max_users):
            continue
        for alpha in itertools.product(range(1, amax + 1), repeat=inst.N):
            alpha = np.array(alpha, float)
            if alpha_hi is not None and np.any(alpha > alpha_hi):
                continue
            best = min(best, _fixed_optimum(v, inst, server, alpha, deadline, rate_min))
    return best


def _solve(v, inst, **constraints):
    D = Data(v, inst).constrain(**constraints)
    return D, run(D, {"rel_gap": 1e-9}, QuietTracer())


def _check(v, inst, out, ref, max_users=None, alpha_hi=None, deadline=None, rate_min=None):
    """The certified optimum equals the enumeration, the bound is below it, and the returned point is
    feasible for the evaluator and for every added constraint (checked here, not by the plugin)."""
    assert out.status == "optimal", out.message
    assert abs(out.objective - ref) <= 1e-6 * abs(ref), (out.objective, ref)
    assert out.bound <= ref * (1 + 1e-9)
    # the reported bound is capped at the incumbent: the root's own bound must be valid too
    root = out.extra.get("root_lagrangian_bound")
    assert root is None or root <= ref * (1 + 1e-9), (root, ref)
    # max_delay: every level proven infeasible is below the optimum
    assert all(T <= ref * (1 + 1e-9) for T, st in out.extra.get("levels", []) if st == "infeasible")
    ev = evaluate(v, inst, out.solution)
    assert ev.feasible, ev.violations
    assert ev.objective == pytest.approx(out.objective, rel=1e-9)
    s = np.asarray(out.solution["server"])
    if max_users is not None:
        assert np.all(np.bincount(s, minlength=inst.M) <= max_users)
    if alpha_hi is not None:
        assert np.all(np.asarray(out.solution["alpha"]) <= alpha_hi)
    if deadline is not None:
        assert np.all(np.asarray(ev.per_user["delay_s"]) <= np.asarray(deadline) * (1 + 1e-9))
    if rate_min is not None:
        a = inst.block("uplink")["snr_per_W_MHz"][np.arange(inst.N), s]
        p, b = np.asarray(out.solution["p_W"]), np.asarray(out.solution["b_MHz"])
        assert np.all(b * np.log2(1 + a * p / b) >= np.asarray(rate_min) * (1 - 1e-9))


def test_user_caps_and_split_caps_match_enumeration():
    v = load_variant("default", overrides=L3)
    inst = generate(v, 3, 2, 4)
    free = _enumerate(v, inst)
    _, out0 = _solve(v, inst)
    s0 = np.asarray(out0.solution["server"])
    # cap the server the unconstrained optimum crowds, and the split of one user: both must bind
    crowded = int(np.argmax(np.bincount(s0, minlength=2)))
    cap = np.array([3.0, 3.0])
    cap[crowded] = np.bincount(s0, minlength=2)[crowded] - 1
    a_hi = np.array([np.inf, 1.0, np.inf]) if out0.solution["alpha"][1] > 1 else np.array([1.0, np.inf, np.inf])
    ref = _enumerate(v, inst, max_users=cap, alpha_hi=a_hi)
    assert ref > free * (1 + 1e-7)       # the caps bind
    _, out = _solve(v, inst, max_users=cap, alpha_hi=a_hi)
    _check(v, inst, out, ref, max_users=cap, alpha_hi=a_hi)


def test_rate_floor_matches_enumeration():
    v = load_variant("hardware-2024", overrides=L3)     # activations upload: rates matter
    inst = generate(v, 3, 2, 1)
    _, out0 = _solve(v, inst)
    s0 = np.asarray(out0.solution["server"])
    a = inst.block("uplink")["snr_per_W_MHz"][np.arange(3), s0]
    p, b = np.asarray(out0.solution["p_W"]), np.asarray(out0.solution["b_MHz"])
    r0 = b * np.log2(1 + a * p / b)
    B = inst.block("uplink")["b_max_MHz"][s0]
    rmax = B * np.log2(1 + a * inst.block("uplink")["p_max_W"] / B)     # the whole band at full power
    floors = r0 + 0.3 * (rmax - r0)                      # above every user's optimal rate, each reachable alone
    # all three floors at once: the enumeration finds no feasible point and the solver proves it
    assert _enumerate(v, inst, rate_min=floors) == np.inf
    _, out = _solve(v, inst, rate_min_Mbps=floors)
    assert out.status == "infeasible", out.message
    # the floor of the user with the most room: binding, feasible
    n = int(np.argmax(rmax / r0))
    rmin = np.where(np.arange(3) == n, floors, 0.0)
    ref = _enumerate(v, inst, rate_min=rmin)
    assert out0.objective * (1 + 1e-7) < ref < np.inf
    _, out = _solve(v, inst, rate_min_Mbps=rmin)
    _check(v, inst, out, ref, rate_min=rmin)


def test_rate_floor_raises_the_power():
    """hardware-2024 weighing energy only (activations upload, p ≥ 0.01 W): the unconstrained optimum
    sends at the power floor; a rate floor above that rate must raise p (the lower bound p ≥ p_rate(b)
    in the uplink subproblem), not only b."""
    v = load_variant("hardware-2024", overrides={"blocks": {"llm": {"layers": 3}, "uplink": {"p_min_W": 0.01}},
                                                 "objective": {"weights": {"delay": 0.0}}})
    inst = generate(v, 3, 2, 0)
    _, out0 = _solve(v, inst)
    s0 = np.asarray(out0.solution["server"])
    a = inst.block("uplink")["snr_per_W_MHz"][np.arange(3), s0]
    p, b = np.asarray(out0.solution["p_W"]), np.asarray(out0.solution["b_MHz"])
    assert np.allclose(p, inst.block("uplink")["p_min_W"])
    rmin = np.where(np.arange(3) == 0, 3.0 * b[0] * np.log2(1 + a[0] * p[0] / b[0]), 0.0)
    ref = _enumerate(v, inst, rate_min=rmin)
    assert out0.objective * (1 + 1e-7) < ref < np.inf
    _, out = _solve(v, inst, rate_min_Mbps=rmin)
    _check(v, inst, out, ref, rate_min=rmin)
    assert out.solution["p_W"][0] > inst.block("uplink")["p_min_W"] * 1.01


def test_infeasible_caps_and_floors_are_proven():
    v = load_variant("default", overrides=L3)
    inst = generate(v, 3, 2, 0)
    _, out = _solve(v, inst, max_users=[1.0, 1.0])               # 3 users, 2 places
    assert out.status == "infeasible" and "MILP" in out.message and out.solution is None
    _, out = _solve(v, inst, alpha_hi=[0.5, np.inf, np.inf])     # user 0 cannot hold one layer
    assert out.status == "infeasible" and "user 0" in out.message
    D = Data(v, inst)
    rmax = 0.6 * float(np.max(D.B[None, :] * np.log2(1 + D.a * D.p_hi[:, None] / D.B[None, :])))
    _, out = _solve(v, inst, rate_min_Mbps=[rmax] * 3)           # each floor alone reachable, not all three
    assert out.status == "infeasible", out.message


# ---- the min–max delay objective (max_delay) ---------------------------------------------------------
MAXDELAY = {"objective": {"kind": "max_delay", "normalise": "none"}}


@pytest.mark.parametrize("name,over,N,seed", [
    ("default", {"blocks": {"llm": {"layers": 3}, "user_compute": {"cores": 2000}}}, 4, 0),
    ("hardware-2024", {"blocks": {"llm": {"layers": 3}, "user_compute": {"cores": 300}}}, 3, 3),
], ids=["default-strong-phone", "hardware"])
def test_max_delay_matches_enumeration(name, over, N, seed):
    v = load_variant(name, overrides={**over, **MAXDELAY})
    inst = generate(v, N, 2, seed)
    ref = _enumerate(v, inst)
    D, out = _solve(v, inst)
    _check(v, inst, out, ref)
    # the instance is not trivial: resources are shared (some server holds two users or more)
    assert np.max(np.bincount(out.solution["server"], minlength=2)) >= 2


def test_max_delay_with_deadlines_and_caps():
    """Per-user deadlines tighter than the level for some users, and a user cap, in the min–max problem."""
    v = load_variant("default", overrides={"blocks": {"llm": {"layers": 3}, "user_compute": {"cores": 2000}}, **MAXDELAY})
    inst = generate(v, 4, 2, 0)
    _, out0 = _solve(v, inst)
    d0 = np.asarray(evaluate(v, inst, out0.solution).per_user["delay_s"])
    n = int(np.argsort(d0)[1])                        # a user below the makespan: squeeze its deadline
    deadline = np.full(4, np.inf)
    deadline[n] = 0.8 * d0[n]
    cap = np.array([3.0, 3.0])
    ref = _enumerate(v, inst, max_users=cap, deadline=deadline)
    _, out = _solve(v, inst, deadline_s=deadline, max_users=cap)
    _check(v, inst, out, ref, max_users=cap, deadline=deadline)
    assert out.objective >= out0.objective * (1 - 1e-9)


# ---- per-user deadlines with the weighted-sum objective ------------------------------------------------
def test_deadlines_match_enumeration():
    """Deadlines between a user's least possible delay and its delay at the unconstrained optimum, on
    two users (hardware profile, splits interior: the deadline moves f, fe, p and b together)."""
    v = load_variant("hardware-2024", overrides={"blocks": {"llm": {"layers": 3}, "user_compute": {"cores": 2000}},
                                                 "objective": {"weights": {"stability": 0.0}}})
    inst = generate(v, 3, 2, 1)
    D0, out0 = _solve(v, inst)
    d0 = np.asarray(evaluate(v, inst, out0.solution).per_user["delay_s"])
    least = D0.min_delay.min(axis=(1, 2))
    deadline = np.full(3, np.inf)
    for n in np.argsort(-(d0 - least) / d0)[:2]:      # the two users with the most room
        deadline[n] = least[n] + 0.5 * (d0[n] - least[n])
    ref = _enumerate(v, inst, deadline=deadline)
    assert out0.objective * (1 + 1e-7) < ref < np.inf
    _, out = _solve(v, inst, deadline_s=deadline)
    _check(v, inst, out, ref, deadline=deadline)


def test_deadline_just_below_the_largest_delay_default_10x3():
    """Issue 15: a deadline just below the unconstrained optimum's largest per-user delay makes the
    certified objective strictly worse, and every user meets it; far below, infeasible with the proof."""
    v = load_variant("default")
    inst = generate(v, 10, 3, 2)
    D0, out0 = _solve(v, inst)
    d0 = np.asarray(evaluate(v, inst, out0.solution).per_user["delay_s"])
    deadline = np.full(10, 0.999 * d0.max())
    _, out = _solve(v, inst, deadline_s=deadline)
    assert out.status == "optimal", out.message
    assert out.objective > out0.objective * (1 + 1e-9)
    assert out.bound > out0.objective               # certified: no point meeting the deadline is as good
    ev = evaluate(v, inst, out.solution)
    assert ev.feasible and ev.objective == pytest.approx(out.objective, rel=1e-9)
    assert np.max(ev.per_user["delay_s"]) <= deadline[0] * (1 + 1e-9)
    tight = np.full(10, 0.5 * D0.min_delay.min(axis=(1, 2)).max())  # below one user's least possible delay
    _, out = _solve(v, inst, deadline_s=tight)
    assert out.status == "infeasible" and "has no possible option" in out.message


def test_memory_block_caps_the_split():
    """The `memory` block's device cap becomes the split cap (Data.alpha_hi from Memory.alpha_cap); the
    certified optimum equals the enumeration over the splits the memory allows, and it binds."""
    over = {"blocks": {"llm": {"layers": 3}, "user_compute": {"cores": 2000}}, "objective": {"weights": {"stability": 0.0}}}
    v0 = load_variant("hardware-2024", overrides=over)
    inst0 = generate(v0, 3, 2, 1)
    _, out0 = _solve(v0, inst0)
    assert max(out0.solution["alpha"]) == 2           # unconstrained, some user trains two layers
    v = load_variant("hardware-2024", overrides={**over, "blocks": {**over["blocks"], "memory": {"M_max_GB": 1.1}}})
    inst = generate(v, 3, 2, 1)
    from mecsplit.blocks.memory import Memory
    cap = Memory.alpha_cap(inst)
    assert np.all(cap == 1)                           # 1.1 GB holds one block (≈ 0.7 GB) on every device
    ref = _enumerate(v, inst, alpha_hi=cap)
    D, out = _solve(v, inst)
    assert np.all(D.alpha_hi == cap)
    _check(v, inst, out, ref, alpha_hi=cap)           # the evaluator's device_memory row holds too
    assert out.objective > out0.objective * (1 + 1e-9)


# ---- three tiers (splitllm-2025): options (server, α, β), the cloud slot as a third budget -------------
def test_compute_split_matches_a_brute_force():
    """timing.compute_split (closed form with clipped shares) against a dense 1-D search over the edge share."""
    from mecsplit_exact.timing import compute_split
    rng = np.random.default_rng(5)
    for _ in range(200):
        W, Wc = 10 ** rng.uniform(-2, 1, 2)
        mu, pi = 10 ** rng.uniform(-2, 2, 2) * (rng.random(2) > 0.1)
        lo1, lo2 = 10 ** rng.uniform(-4, -2, 2)
        hi1, hi2 = 10 ** rng.uniform(-1, 0.5, 2)
        L = (W / hi1 + Wc / hi2) * 10 ** rng.uniform(0, 1.5)
        cost, x1, x2, nu, _ = compute_split(W, Wc, L, mu, pi, lo1, hi1, lo2, hi2)
        assert W / x1 + Wc / x2 <= L * (1 + 1e-9) and lo1 <= x1 <= hi1 and lo2 <= x2 <= hi2
        fe = np.geomspace(lo1, hi1, 200001)
        t2 = L - W / fe
        ok = t2 > 0
        fc = np.maximum(Wc / np.where(ok, t2, 1.0), lo2)
        ok &= fc <= hi2
        brute = np.min(np.where(ok, mu * fe + pi * np.where(ok, fc, 0.0), np.inf))
        assert cost <= brute * (1 + 1e-6) + 1e-12
        assert cost >= brute - 1e-4 * abs(brute) - 1e-9      # the grid is fine enough to come within 1e-4
        # ν = −dC/dL
        c2 = compute_split(W, Wc, L * (1 + 1e-6), mu, pi, lo1, hi1, lo2, hi2)[0]
        assert nu == pytest.approx((cost - c2) / (L * 1e-6), rel=1e-3, abs=1e-9 * (1 + abs(cost) / L))


def test_three_tiers_match_enumeration():
    """splitllm-2025 with 4 layers, 3 users on one edge (they share its GPU, band and cloud slot): every
    cut pair (α, β) of every user enumerated, each fixed problem the framework's model solved by Ipopt."""
    v = load_variant("splitllm-2025", overrides={"blocks": {"llm": {"layers": 4}}})
    inst = generate(v, 3, 1, 0)
    pairs = [(a, b) for a in (1, 2) for b in (2, 3) if b > a]
    best = np.inf
    for choice in itertools.product(pairs, repeat=3):
        alpha = np.array([c[0] for c in choice], float)
        beta = np.array([c[1] for c in choice], float)
        best = min(best, _fixed_optimum(v, inst, np.zeros(3, int), alpha, beta=beta))
    D, out = _solve(v, inst)
    _check(v, inst, out, best)
    assert D.K == len(pairs)


def test_variant_file_constraints_end_to_end(tmp_path):
    """A variant file with a deadline, a rate floor and a user cap (the variant language, issue 15)
    reaches the exact solver through the compilation (plugin.data_for); the framework's evaluator
    checks the added constraints on the returned point, and the optimum equals the enumeration."""
    from mecsplit.solve import solve

    base = load_variant("default", overrides=L3)
    inst0 = generate(base, 3, 2, 2)
    _, out0 = _solve(base, inst0)
    d0 = np.asarray(evaluate(base, inst0, out0.solution).per_user["delay_s"])
    deadline = float(0.999 * d0.max())
    (tmp_path / "dl.toml").write_text(f'''[variant]
extends = "default"
description = "test: deadline, rate floor, cap"
[blocks.llm]
layers = 3
[[constraints]]
name = "deadline"
for_each = "user"
expr = "delay_s <= {deadline!r}"
[[constraints]]
name = "rate-floor"
for_each = "user"
expr = "rate_Mbps >= 0.001"
[[constraints]]
name = "server-cap"
for_each = "server"
expr = "n_users <= 2"
''')
    v = load_variant(str(tmp_path / "dl.toml"))
    inst = generate(v, 3, 2, 2)
    r = solve(v, inst, "exact", {"rel_gap": 1e-9})
    assert r.status == "optimal" and r.verification["verdict"] == "ok", (r.message, r.verification)
    ref = _enumerate(base, inst0, max_users=np.array([2.0, 2.0]), deadline=np.full(3, deadline),
                     rate_min=np.full(3, 0.001))
    assert abs(r.objective - ref) <= 1e-6 * ref and r.bound <= ref * (1 + 1e-9)
    assert r.objective > out0.objective * (1 + 1e-9)


@pytest.mark.parametrize("name,over,N,M,seed", [
    ("splitllm-2025", {"blocks": {"llm": {"layers": 6}}}, 5, 2, 0),
    ("splitllm-2025", {}, 6, 2, 1),
    ("default", {"blocks": {"user_compute": {"cores": 2000}}, **MAXDELAY}, 5, 2, 2),
], ids=["three-tiers-6-layers", "three-tiers", "two-tiers-strong-phone"])
def test_makespan_is_the_fixed_min_max(name, over, N, M, seed):
    """timing.Timing.makespan (the 3-D Newton on the budgets, docs §8.4) on random assignments: its
    shares meet every budget and the level (plugin's delay ledger), the largest server makespan equals
    Ipopt's optimum of the framework's model with the assignment fixed, and each shared server's prices
    prove by weak duality (the feasibility cut, not the Newton) that a level 1e-7 below is infeasible."""
    from mecsplit_exact.minmax import MinMax

    v = load_variant(name, overrides=over) if over else load_variant(name)
    inst = generate(v, N, M, seed)
    D = Data(v, inst)
    mm = MinMax(D, QuietTracer(), 1e-9, 0.0, None)
    tm, rng = mm.tm, np.random.default_rng(seed)
    for _ in range(2):
        server = np.resize(np.arange(M), N)[rng.permutation(N)]          # every server shared
        k = np.array([rng.choice(np.nonzero(D.possible[n, server[n]])[0]) for n in range(N)])
        Tm, lam, pi, fe, b, fc = tm.makespan(server, k)
        fe, b, fc = mm.fit(server, fe, b, fc)
        d = mm.delays(server, k, fe, b, fc)
        assert np.all(d <= Tm[server] * (1 + 1e-9))
        ref = _fixed_optimum(v, inst, server, D.alphas[k], beta=D.betas[k] if D.three else None)
        assert np.max(Tm) == pytest.approx(ref, rel=1e-6)
        for m in range(M):
            on = np.nonzero(server == m)[0]
            Tlow = Tm[m] * (1 - 1e-7)
            R = tm.price(on, m, k[on], Tlow, lam[m], 1.0, pi[m])[0]
            assert np.sum(R) > lam[m] * D.B[m] + D.F[m] + pi[m] * (D.slot if D.three else 0.0)


@pytest.mark.parametrize("name,N,M,seed", [("splitllm-2025", 6, 2, 1), ("splitllm-2025", 8, 3, 2)])
def test_lp_point_prices_reach_the_dual_maximum(name, N, M, seed):
    """minmax.MinMax.best_prices (the cuts at the level LP's points, docs §8.4): for fractional weights on a
    server's options at a level (scaled so that they meet the pure-direction cuts, as an LP point does), its
    prices reach the maximum of the concave dual value Σ w_o R_o(λ, 1, π) − λB − π slot − F over its search
    box found by a brute-force fine log grid (within 1e-6 of F), and the value it reports is its prices'."""
    from mecsplit_exact.minmax import MinMax

    v = load_variant(name)
    inst = generate(v, N, M, seed)
    D = Data(v, inst)
    mm = MinMax(D, QuietTracer(), 1e-9, 0.0, None)
    tm, rng = mm.tm, np.random.default_rng(seed)
    n, m, k = np.nonzero(D.possible)
    d0 = tm.min_delay(n, m, k)
    for srv in range(M):
        T = 1.5 * float(np.median(d0[m == srv]))
        sel = np.nonzero((m == srv) & (d0 <= T))[0]
        sel = rng.choice(sel, size=min(12, sel.size), replace=False)

        def dual(L, Pi, w):
            L, Pi = np.atleast_1d(L), np.atleast_1d(Pi)
            R = tm.price(np.tile(n[sel], L.size), srv, np.tile(k[sel], L.size), T, np.repeat(L, sel.size), 1.0,
                         np.repeat(Pi, sel.size))[0].reshape(L.size, sel.size)
            return R @ w - L * D.B[srv] - Pi * D.slot - D.F[srv]

        w = rng.uniform(0.0, 1.0, sel.size)
        # within the pure directions' cuts (Σ w R ≤ B, F, slot for prices (1,0,0), (0,1,0), (0,0,1))
        pure = [tm.price(n[sel], srv, k[sel], T, *p)[0] @ w / cap for p, cap in
                (((1.0, 0.0, 0.0), D.B[srv]), ((0.0, 1.0, 0.0), D.F[srv]), ((0.0, 0.0, 1.0), D.slot))]
        w *= 0.9 / max(pure)
        P = tm.prepare(n[sel], m[sel], k[sel], np.full(sel.size, T))
        lam, pi, val = mm.best_prices(srv, P, w)
        assert val == pytest.approx(float(dual(lam, pi, w)[0]), rel=1e-9, abs=1e-9 * D.F[srv])
        c = D.F[srv] / np.array([D.B[srv], D.slot])       # best_prices' centre (no prices seen), its box e^±6
        a = np.exp(np.linspace(-6, 6, 121))
        L, Pi = (g.ravel() for g in np.meshgrid(c[0] * a, c[1] * a, indexing="ij"))
        brute = float(np.max(dual(L, Pi, w)))
        assert val >= brute - 1e-6 * D.F[srv], (val, brute)
