"""Tests of the Liu–Zhao plugin (plugins/mecsplit-liuzhao): FP resource step, CCCP association step,
the decomposition and the baselines. Every solver result goes through mecsplit.solve.solve (the
framework's evaluator) and is compared against something independent: a scipy optimum of the
fixed-association problem written here from the instance data, brute-force enumeration of the
associations, and an evaluator-finite-difference KKT residual."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("mecsplit_liuzhao")
pytest.importorskip("highspy")
scipy_opt = pytest.importorskip("scipy.optimize")

from mecsplit.errors import InputError  # noqa: E402
from mecsplit.evaluate import evaluate  # noqa: E402
from mecsplit.instance import generate  # noqa: E402
from mecsplit.plugins import get_manager  # noqa: E402
from mecsplit.solve import solve  # noqa: E402
from mecsplit.variant import load_variant  # noqa: E402
from mecsplit_liuzhao.cccp import cccp_association  # noqa: E402
from mecsplit_liuzhao.decomposition import Context, decompose, initial_state  # noqa: E402
from mecsplit_liuzhao.fp import fp_resources  # noqa: E402

VARIANTS = ("liu-zhao-2024", "default", "hardware-2024")
SOLVERS = ("liu-zhao", "ao", "alpha-only", "resources-only", "greedy-fp", "random-fp", "local-only", "edge-only")


@pytest.fixture(scope="module")
def variants():
    return {v: load_variant(v) for v in VARIANTS}


def _server_cover(N, M):
    return np.arange(N) % M


# --- an independent objective for a fixed association and α (written from the instance data) -------
def _objective_fixed(v, inst, server, alpha):
    om = v.objective.omega(inst)
    llm, uc, ec, up, st = (inst.block(k) for k in ("llm", "user_compute", "edge_compute", "uplink", "stability"))
    Y = llm["layers"]
    psi = llm["psi_TFLOP"] * 1e12  # FLOP
    rows = np.arange(inst.N)
    cu, ce = uc["cores"] * uc["flops_per_cycle"], (ec["cores"] * ec["flops_per_cycle"])[server]
    sigma2 = 10 ** (up["noise_dBm_per_Hz"] / 10) * 1e-3
    g = inst.topology["gain"][rows, server]
    bits = up["upload_Mbit"] * 1e6

    def H(f, fe, p, b):  # GHz, GHz, W, MHz -> SI inside
        F, Fe, Bhz = f * 1e9, fe * 1e9, b * 1e6
        t_u, e_u = alpha * psi / (F * cu), alpha * uc["kappa"] * F**2 * psi / cu
        t_e, e_e = (Y - alpha) * psi / (Fe * ce), (Y - alpha) * ec["kappa"] * Fe**2 * psi / ce
        r = Bhz * np.log2(1 + g * p / (sigma2 * Bhz))
        t_up = bits / r
        delay = t_u + t_e + (t_up if up["delay"] else 0)
        energy = e_u + e_e + p * t_up
        stab = 2 * st["lipschitz"] ** 2 / (st["samples"] * (1 - alpha / Y))
        return float(np.sum(om["delay"] * delay + om["energy"] * energy + om["stability"] * stab))
    return H


def _scipy_fixed(v, inst, server, alpha, starts=4, seed=0):
    """min over (log f, log fe, log p, log b) with SLSQP (convex in logs: design-notes §3.2)."""
    N, M = inst.N, inst.M
    uc, ec, up = (inst.block(k) for k in ("user_compute", "edge_compute", "uplink"))
    H = _objective_fixed(v, inst, server, alpha)
    lo = np.concatenate([np.full(N, uc["f_min_GHz"]), np.full(N, ec["fe_min_GHz"]),
                         np.full(N, max(up["p_min_W"], 1e-6)), np.full(N, up["b_min_MHz"])])
    hi = np.concatenate([uc["f_max_GHz"], ec["F_max_GHz"][server], up["p_max_W"], up["b_max_MHz"][server]])
    fun = lambda y: H(*np.split(np.exp(y), 4))
    cons = []
    for m in range(M):
        sel = server == m
        kind_f = "eq" if ec["budget"] == "eq" else "ineq"
        kind_b = "eq" if up["budget"] == "eq" else "ineq"
        cons.append({"type": kind_f, "fun": lambda y, s=sel, m=m: ec["F_max_GHz"][m] - np.exp(y[N:2 * N][s]).sum()})
        cons.append({"type": kind_b, "fun": lambda y, s=sel, m=m: up["b_max_MHz"][m] - np.exp(y[3 * N:][s]).sum()})
    rng = np.random.default_rng(seed)
    best = np.inf
    for _ in range(starts):
        x0 = np.concatenate([rng.uniform(lo[:N], hi[:N]), ec["F_max_GHz"][server] / np.bincount(server)[server] * 0.99,
                             rng.uniform(lo[2 * N:3 * N], hi[2 * N:3 * N]), up["b_max_MHz"][server] / np.bincount(server)[server] * 0.99])
        r = scipy_opt.minimize(fun, np.log(x0), method="SLSQP", bounds=list(zip(np.log(lo), np.log(hi))),
                               constraints=cons, options={"maxiter": 500, "ftol": 1e-14})
        if r.success:
            best = min(best, r.fun)
    return best


# --- FP resource step --------------------------------------------------------------------------------
@pytest.mark.parametrize("vname", VARIANTS)
def test_fp_matches_scipy_on_fixed_association(variants, vname):
    v = variants[vname]
    inst = generate(v, 4, 2, seed=11)
    server = np.array([0, 1, 0, 1])
    for alpha in (np.ones(4), np.array([3.0, 10.0, 20.0, 31.0])):
        r = fp_resources(v, inst, server, alpha, fix_alpha=True)
        ev = evaluate(v, inst, r.solution)
        assert ev.feasible, ev.summary()
        ref = _scipy_fixed(v, inst, server, alpha)
        H = _objective_fixed(v, inst, server, alpha)
        x = r.x
        assert abs(H(x["f_GHz"], x["fe_GHz"], x["p_W"], x["b_MHz"]) - ev.objective) <= 1e-9 * ev.objective
        # the FP limit is the global optimum of the (log-convex) fixed problem: never worse than SLSQP,
        # and SLSQP from 4 starts gets within 1e-6 of it
        assert ev.objective <= ref * (1 + 1e-7), (ev.objective, ref)
        assert ev.objective >= ref * (1 - 1e-5), (ev.objective, ref)


@pytest.mark.parametrize("vname", VARIANTS)
def test_fp_surrogate_monotone_and_kkt(variants, vname):
    v = variants[vname]
    inst = generate(v, 30, 5, seed=2)
    trace: list = []
    r = fp_resources(v, inst, _server_cover(30, 5), kkt=True, trace=trace)
    t = np.asarray(trace)
    assert len(t) > 5 and r.converged
    # H(x^t) = K(x^t; aux^t) >= K after each block update >= H(x^{t+1})
    assert np.all(np.diff(t) <= 1e-12 * t[0]), np.max(np.diff(t))
    assert t[-1] < t[0]
    assert r.kkt["max"] < 1e-4, r.kkt
    # the check can fail: a perturbed point is not stationary
    from mecsplit_liuzhao.kkt import kkt_residual
    bad = {k: np.array(val, float) for k, val in r.relaxed.items()}
    bad["p_W"] = np.clip(bad["p_W"] * 0.5, inst.block("uplink")["p_min_W"] + 1e-6, None)
    bad["alpha"] = np.clip(bad["alpha"] + 3, 1, 31)
    assert kkt_residual(v, inst, _server_cover(30, 5), bad)["max"] > 100 * max(r.kkt["max"], 1e-9)


def test_fp_relaxed_alpha_interior_on_hardware(variants):
    """With a real split trade-off (hardware-2024, crowded servers, delay-heavy weights) FP moves α inside (1, Υ−1)."""
    v = load_variant("hardware-2024", overrides={"objective": {"weights": {"delay": 1.0, "energy": 0.05, "stability": 0.01}}})
    inst = generate(v, 20, 2, seed=5)
    r = fp_resources(v, inst, _server_cover(20, 2), kkt=True)
    a = r.relaxed["alpha"]
    assert r.kkt["max"] < 1e-4
    assert np.ptp(r.x["alpha"]) >= 0 and np.all(r.x["alpha"] == np.rint(r.x["alpha"]))
    assert evaluate(v, inst, r.solution).feasible
    # relaxed α is stationary in α: compare with a brute 1-D scan of H in α with resources fixed
    from mecsplit_liuzhao.model import Coefs, pairs
    C = Coefs.of(pairs(v, inst), _server_cover(20, 2))
    A, B = C.A(np.asarray(r.relaxed["f_GHz"])), C.B(np.asarray(r.relaxed["fe_GHz"]))
    grid = np.linspace(1, 31, 30001)
    for n in range(20):
        h = grid * A[n] + (C.P.Y - grid) * B[n] + C.P.c_stab[n] * C.P.Y / (C.P.Y - grid)
        h_at = a[n] * A[n] + (C.P.Y - a[n]) * B[n] + C.P.c_stab[n] * C.P.Y / (C.P.Y - a[n])
        assert h_at <= h.min() + 1e-6 * abs(h.min()), (n, grid[np.argmin(h)], a[n])
        assert abs(grid[np.argmin(h)] - a[n]) <= 0.1, (n, grid[np.argmin(h)], a[n])
    assert np.any((a > 1.5) & (a < 30.5)), a   # a real trade-off: some α strictly inside


# --- CCCP association step ---------------------------------------------------------------------------
def test_cccp_step_records_iterations_and_never_worsens(variants):
    v = variants["hardware-2024"]
    inst = generate(v, 40, 5, seed=4)
    server = _server_cover(40, 5)
    r = fp_resources(v, inst, server)
    c = cccp_association(v, inst, server, r.x, np.random.default_rng(0), starts=3)
    assert c.G <= c.G_start
    assert c.lp_solves == len(c.iterations) >= 3
    assert {s["start"] for s in c.iterations} == {0, 1, 2}
    assert all(it["rho"] > 0 and it.get("penalty", 0.0) >= -1e-12 for it in c.iterations)
    assert c.server.shape == (40,) and set(np.unique(c.server)) <= set(range(5))


# --- decomposition, brute force -----------------------------------------------------------------------
@pytest.mark.parametrize("vname", ["default", "hardware-2024"])
def test_liu_zhao_vs_enumerated_associations(variants, vname):
    v = variants[vname]
    N, M = 5, 2
    inst = generate(v, N, M, seed=7)
    best = np.inf
    for s in itertools.product(range(M), repeat=N):
        s = np.array(s)
        if len(set(s)) < M and v.block("uplink").p["budget"] == "eq":
            continue
        best = min(best, fp_resources(v, inst, s, rounding="exact").objective)
    res = {name: solve(v, inst, name, seed=0) for name in ("liu-zhao", "greedy-fp", "random-fp", "edge-only")}
    for name, r in res.items():
        assert r.verification["verdict"] == "ok", (name, r.verification)
        assert r.objective >= best * (1 - 1e-6), (name, r.objective, best)
    assert res["liu-zhao"].objective <= res["greedy-fp"].objective * (1 + 1e-9)
    assert res["liu-zhao"].objective <= best * 1.05, (res["liu-zhao"].objective, best)


@pytest.mark.parametrize("vname", VARIANTS)
@pytest.mark.parametrize("solver", SOLVERS)
def test_every_solver_verified(variants, vname, solver):
    v = variants[vname]
    inst = generate(v, 12, 3, seed=1)
    r = solve(v, inst, solver, seed=3)
    assert r.status.value == "feasible", r.message
    assert r.verification["verdict"] == "ok", r.verification
    assert r.solution is not None and np.all(np.asarray(r.solution["alpha"]) == np.rint(r.solution["alpha"]))
    assert r.trace and abs(r.trace[-1]["incumbent"] - r.objective) <= 1e-12 * r.objective
    if "cccp-association" in r.extra["plan"]["cycle"]:
        lps = sum(c["lp_solves"] for c in r.extra["cccp"])
        its = [t["iteration"] for t in r.trace]       # tracer.iteration() once per association LP
        assert lps >= 1 and its == sorted(its) and its[-1] <= lps
    if solver == "local-only":
        assert set(r.solution["alpha"]) == {31.0}
    if solver == "edge-only":
        assert set(r.solution["alpha"]) == {1.0}


def test_seeded_randomness_and_options(variants):
    v = variants["default"]
    inst = generate(v, 20, 4, seed=2)
    a = solve(v, inst, "random-fp", seed=1)
    b = solve(v, inst, "random-fp", seed=1)
    c = solve(v, inst, "random-fp", seed=2)
    assert a.solution == b.solution
    assert a.solution["server"] != c.solution["server"]
    with pytest.raises(InputError, match="'cccp'"):   # a plugin's own InputError reaches the user as one line
        solve(v, inst, "liu-zhao", options={"association": "magic"})
    with pytest.raises(InputError):
        solve(v, inst, "liu-zhao", options={"nope": 1})
    g = solve(v, inst, "liu-zhao", options={"association": "greedy"})
    assert g.verification["verdict"] == "ok" and g.extra["plan"]["cycle"] == ["greedy-association", "fp-resources"]


def test_paper_constants_make_alpha_one(variants):
    """design-notes §3.5: with the paper's constants α = 1 for every user, so edge-only = liu-zhao."""
    v = variants["liu-zhao-2024"]
    inst = generate(v, 20, 4, seed=9)
    lz = solve(v, inst, "liu-zhao")
    eo = solve(v, inst, "edge-only")
    assert set(lz.solution["alpha"]) == {1.0}
    assert abs(lz.objective - eo.objective) <= 1e-6 * lz.objective
    lo = solve(v, inst, "local-only")
    assert lo.objective > 5 * lz.objective


def test_steps_registered_and_recombinable(variants):
    steps = get_manager().steps
    kinds = {n: steps[n].kind for n in ("fp-resources", "cccp-association", "greedy-association", "exact-alpha")}
    assert kinds == {"fp-resources": "resources", "cccp-association": "association",
                     "greedy-association": "association", "exact-alpha": "split"}
    v = variants["hardware-2024"]
    inst = generate(v, 16, 4, seed=3)
    ctx = Context.of(v, inst, np.random.default_rng(0))
    st = decompose(ctx, initial_state(ctx), init=[steps["random-association"].fn, steps["fp-resources"].fn],
                   cycle=[steps["cccp-association"].fn, steps["fp-resources"].fn], max_outer=5)
    ev = evaluate(v, inst, st.solution())
    assert ev.feasible and abs(ev.objective - st.objective) <= 1e-9 * ev.objective
    outer = [r["objective"] for r in ctx.log if r["step"] == "outer" and r["feasible"]]
    assert st.objective == min(outer)


def test_equality_budgets_with_fewer_users_than_servers_is_infeasible(variants):
    v = variants["liu-zhao-2024"]
    inst = generate(v, 3, 5, seed=0)
    r = solve(v, inst, "liu-zhao")
    assert r.status.value == "infeasible" and "servers" in r.message and r.solution is None
    ok = solve(variants["default"], generate(variants["default"], 3, 5, seed=0), "liu-zhao")   # ≤ budgets: fine
    assert ok.verification["verdict"] == "ok" and ok.status.value == "feasible"
