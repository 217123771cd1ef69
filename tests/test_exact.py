"""Honesty tests of the exact plugin (plugins/mecsplit-exact, docs/exact.md).

* the certified optimum equals a brute-force enumeration of every (server, α) assignment whose
  continuous parts are solved independently (scipy SLSQP on the log formulation, several starts, own
  objective code from the model math), and the bound never exceeds it;
* a limit gives status time_limit with bound ≤ incumbent, never optimal;
* design-notes §3.2: the uplink term is convex in (log p, log b) and NOT convex in (p, b);
* every result passes the framework's independent verification.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

pytest.importorskip("mecsplit_exact")
from scipy.optimize import minimize  # noqa: E402

from mecsplit.instance import generate  # noqa: E402
from mecsplit.solve import solve  # noqa: E402
from mecsplit.variant import load_variant  # noqa: E402

LN2 = math.log(2.0)


# ---- independent reference: enumeration + SLSQP on the log formulation -------------------------
def _terms(v, inst):
    """Model coefficients straight from the core-api formulas (independent of the plugin code)."""
    om = v.objective.omega(inst)
    llm, uc, ec, up = (inst.block(k) for k in ("llm", "user_compute", "edge_compute", "uplink"))
    psi = llm["psi_TFLOP"]
    cdu = uc["cores"] * uc["flops_per_cycle"]
    cde = ec["cores"] * ec["flops_per_cycle"]
    stab = (2 * inst.block("stability")["lipschitz"] ** 2 / inst.block("stability")["samples"]
            if inst.has_block("stability") else np.zeros(inst.N))
    return dict(
        om=om, Y=float(llm["layers"]), aT=psi * 1e3 / cdu, aE=uc["kappa"] * 1e30 * psi / cdu,
        eT=psi[:, None] * 1e3 / cde[None, :], eE=ec["kappa"] * 1e30 * psi[:, None] / cde[None, :],
        fmin=uc["f_min_GHz"], fmax=uc["f_max_GHz"], femin=ec["fe_min_GHz"], F=ec["F_max_GHz"],
        snr=up["snr_per_W_MHz"], s=up["upload_Mbit"], delay=up["delay"], pmin=up["p_min_W"], pmax=up["p_max_W"],
        bmin=up["b_min_MHz"], Bm=up["b_max_MHz"], eqf=ec["budget"] == "eq", eqb=up["budget"] == "eq",
        stab=stab)


def _slsqp(obj, z0, bounds, cons, starts):
    """Best SLSQP local minimum over several starts (the problems are convex in these variables)."""
    scale = abs(obj(z0)) or 1.0
    best = np.inf
    for shift in starts:
        z = np.clip(z0 + shift, [b[0] for b in bounds], [b[1] for b in bounds])
        res = minimize(lambda q: obj(q) / scale, z, method="SLSQP", bounds=bounds, constraints=cons,
                       options={"ftol": 1e-15, "maxiter": 400})
        ok = all((c["fun"](res.x) >= -1e-9) if c["type"] == "ineq" else abs(c["fun"](res.x)) <= 1e-9 for c in cons)
        if ok:
            best = min(best, obj(res.x))
    return best


def _user_f(T, alpha):
    """User compute term, 1-D bounded minimisation in f per user."""
    from scipy.optimize import minimize_scalar
    om, tot = T["om"], 0.0
    for n in range(len(alpha)):
        g = lambda f, n=n: alpha[n] * (om["delay"] * T["aT"][n] / f + om["energy"] * T["aE"][n] * f * f)
        tot += minimize_scalar(g, bounds=(T["fmin"], T["fmax"][n]), method="bounded", options={"xatol": 1e-12}).fun
    return tot


def _edge_block(T, m, idx, alpha):
    """min over log fe of the server's edge cost under its frequency budget (≤ or =)."""
    om, Y = T["om"], T["Y"]
    w = Y - alpha
    eT, eE, Fm = T["eT"][idx, m], T["eE"][idx, m], T["F"][m]

    def obj(z):
        fe = np.exp(z)
        return float(np.sum(om["delay"] * w * eT / fe + om["energy"] * w * eE * fe**2))

    cons = [{"type": "eq" if T["eqf"] else "ineq", "fun": lambda z: 1.0 - np.sum(np.exp(z)) / Fm}]
    bounds = [(np.log(T["femin"]), np.log(Fm))] * len(idx)
    z0 = np.full(len(idx), np.log(0.9 * Fm / len(idx)))
    return _slsqp(obj, z0, bounds, cons, [0.0, -1.0, np.linspace(-0.5, 0.0, len(idx))])


def _uplink_block(T, m, idx):
    """min over (log p, log b) of the server's uplink cost under its bandwidth budget."""
    om = T["om"]
    k = len(idx)
    snr, s = T["snr"][idx, m], T["s"][idx]

    def obj(z):
        p, b = np.exp(z[:k]), np.exp(z[k:])
        r = b * np.log2(1 + snr * p / b)
        return float(np.sum(om["delay"] * (s / r if T["delay"] else 0.0) + om["energy"] * p * s / r))

    Bm = T["Bm"][m]
    cons = [{"type": "eq" if T["eqb"] else "ineq", "fun": lambda z: 1.0 - np.sum(np.exp(z[k:])) / Bm}]
    pl = np.log(max(T["pmin"], 1e-7))
    bounds = [(pl, np.log(T["pmax"][n])) for n in idx] + [(np.log(T["bmin"]), np.log(Bm))] * k
    z0 = np.concatenate([np.log(T["pmax"][idx]) - 0.1, np.full(k, np.log(0.9 * Bm / k))])
    # a start near the power floor too: with an energy-only uplink the optimum is p = p_min, which
    # scipy >= 1.16's SLSQP does not always reach from p_max (seen: 8e-6 relative above the optimum)
    to_floor = np.r_[pl + 0.01 - z0[:k], np.zeros(k)]
    return _slsqp(obj, z0, bounds, cons, [0.0, np.r_[np.full(k, -3.0), np.zeros(k)], np.r_[np.zeros(k), np.full(k, -2.0)], to_floor])


def _fixed_reference(T, server, alpha, cache):
    """Optimum of the continuous problem for fixed servers and splits. It separates (exactly) into
    user-f terms, per-server edge blocks and per-server uplink blocks; each block is solved by SLSQP
    in log variables from several starts; blocks are memoised."""
    Y = T["Y"]
    tot = _user_f(T, alpha)
    if np.any(T["stab"] > 0):
        tot += float(np.sum(T["om"]["stability"] * T["stab"] / (1 - alpha / Y)))
    for m in np.unique(server):
        idx = np.nonzero(server == m)[0]
        ke = ("e", int(m), tuple(idx), tuple(alpha[idx]))
        ku = ("u", int(m), tuple(idx))
        if ke not in cache:
            cache[ke] = _edge_block(T, m, idx, alpha[idx])
        if ku not in cache:
            cache[ku] = _uplink_block(T, m, idx)
        tot += cache[ke] + cache[ku]
    return tot


def _enumerate(v, inst):
    T = _terms(v, inst)
    Y = int(T["Y"])
    best, cache = np.inf, {}
    for server in itertools.product(range(inst.M), repeat=inst.N):
        server = np.array(server)
        if T["eqf"] and len(set(server.tolist())) < inst.M:
            continue  # an empty server cannot meet an equality frequency budget
        for alpha in itertools.product(range(1, Y), repeat=inst.N):
            best = min(best, _fixed_reference(T, server, np.array(alpha, float), cache))
    return best


L4 = {"blocks": {"llm": {"layers": 4}}}
# a hardware profile with a stronger phone GPU and no stability weight: the split is interior there
SPLIT = {"blocks": {"llm": {"layers": 4}, "user_compute": {"cores": 2000}}, "objective": {"weights": {"stability": 0.0}}}
CASES = [("default", 3, 2, 0, L4), ("default", 3, 2, 1, L4), ("liu-zhao-2024", 3, 2, 2, L4),
         ("hardware-2024", 3, 2, 3, L4), ("hardware-2024", 3, 2, 1, SPLIT)]


@pytest.mark.parametrize("name,N,M,seed,over", CASES, ids=["default-s0", "default-s1", "liu-zhao", "hardware", "hardware-split"])
def test_optimum_matches_enumeration(name, N, M, seed, over):
    v = load_variant(name, overrides=over)
    inst = generate(v, N, M, seed)
    ref = _enumerate(v, inst)
    for method in ("oa", "bnb"):   # outer approximation (default) and Lagrangian branch-and-bound
        r = solve(v, inst, "exact", {"rel_gap": 1e-9, "method": method})
        assert r.verification["verdict"] == "ok", r.verification
        assert r.status == "optimal"
        assert abs(r.objective - ref) <= 1e-6 * abs(ref), (method, r.objective, ref)
        assert r.bound <= ref * (1 + 1e-9)
        assert all(t["bound"] is None or t["bound"] <= ref * (1 + 1e-9) for t in r.trace)
        assert all(t["incumbent"] is None or t["incumbent"] >= ref * (1 - 1e-6) for t in r.trace)
    if over is SPLIT:  # the case is not trivially α = 1 everywhere
        assert 1 < max(r.solution["alpha"]) and min(r.solution["alpha"]) < 3


def test_time_limit_is_honest():
    v = load_variant("default")
    inst = generate(v, 60, 10, 5)
    r = solve(v, inst, "exact", time_limit_s=0.05)
    assert r.status == "time_limit"
    assert r.verification["verdict"] == "ok"
    assert r.bound is None or r.bound <= r.objective
    r2 = solve(v, inst, "exact", {"node_limit": 1, "colgen_max_s": 2.0})
    assert r2.status in ("time_limit", "optimal")
    assert r2.bound <= r2.objective
    if r2.status == "optimal":
        assert r2.gap <= 1e-7 + 1e-12


def test_warm_start_and_verdict_default_10x3():
    v = load_variant("default")
    inst = generate(v, 10, 3, 0)
    ref = inst.reference_solution()
    r = solve(v, inst, "exact", warm_start={k: np.asarray(x).tolist() for k, x in ref.items()})
    assert r.status == "optimal" and r.verification["verdict"] == "ok"
    assert r.gap <= 1e-7
    assert r.trace and r.trace[-1]["bound"] is not None
    # the trace is monotone: incumbents decrease, bounds increase
    inc = [t["incumbent"] for t in r.trace if t["incumbent"] is not None]
    bnd = [t["bound"] for t in r.trace if t["bound"] is not None]
    assert inc == sorted(inc, reverse=True) and bnd == sorted(bnd)


# ---- design-notes §3.2: convexity of the uplink term -------------------------------------------
def _uplink(x, y, a, c0, c1):  # (c0 + c1 p)/r, r = b log2(1 + a p/b), p = e^x, b = e^y
    p, b = np.exp(x), np.exp(y)
    return (c0 + c1 * p) * LN2 / (b * np.log1p(a * p / b))


def _hess(fun, x, y, h):
    fxx = (fun(x + h, y) - 2 * fun(x, y) + fun(x - h, y)) / h**2
    fyy = (fun(x, y + h) - 2 * fun(x, y) + fun(x, y - h)) / h**2
    fxy = (fun(x + h, y + h) - fun(x + h, y - h) - fun(x - h, y + h) + fun(x - h, y - h)) / (4 * h**2)
    return np.array([[fxx, fxy], [fxy, fyy]])


def test_uplink_convex_in_logs_not_in_p_b():
    rng = np.random.default_rng(20261122)
    worst_log, worst_lin = np.inf, np.inf
    for _ in range(2000):
        a = 10 ** rng.uniform(-3, 4)
        c0, c1 = 10 ** rng.uniform(-4, 0), 10 ** rng.uniform(-4, 0)
        x, y = rng.uniform(np.log(1e-3), np.log(2)), rng.uniform(np.log(1e-3), np.log(20))
        H = _hess(lambda X, Y: _uplink(X, Y, a, c0, c1), x, y, 1e-3)
        worst_log = min(worst_log, np.linalg.eigvalsh(H)[0] / np.abs(H).max())
        p, b = np.exp(x), np.exp(y)
        G = _hess(lambda P, B: _uplink(np.log(P), np.log(B), a, c0, c1), p, b, 1e-3 * min(p, b))
        worst_lin = min(worst_lin, np.linalg.eigvalsh(G)[0] / np.abs(G).max())
    assert worst_log >= -1e-4          # convex in (log p, log b) up to finite-difference noise
    assert worst_lin < -1e-2           # clearly indefinite somewhere in (p, b)


def test_edge_term_concave_in_alpha_under_prices():
    """Why α is enumerated, not relaxed: min_fe (Υ−α)(t/fe + e fe²) + μ fe is concave in α."""
    from mecsplit_exact.subproblems import edge_solve
    w = np.linspace(1, 31, 31)
    val, _ = edge_solve(w, 2.0, 0.01, 0.3, 0.01, 3.0)
    assert np.all(np.diff(val, 2) <= 1e-12)
    assert np.any(np.diff(val, 2) < -1e-6)


# ---- SCIP reference at the smallest size ------------------------------------------------------
@pytest.mark.slow
def test_scip_agrees_smallest():
    """SCIP (plugins/mecsplit-peers, raw formulation) as the independent reference at 2 users x 1 server."""
    from mecsplit.plugins import get_manager

    if "scip" not in get_manager().solvers or get_manager().solver("scip").missing_requirements():
        pytest.skip("scip solver plugin not installed")
    v = load_variant("default")   # (with a 4-layer override SCIP overran its time limit here: > 120 s for 20 s)
    inst = generate(v, 2, 1, 0)
    r = solve(v, inst, "exact", {"rel_gap": 1e-9})
    rs = solve(v, inst, "scip", {"rel_gap": 1e-7}, time_limit_s=20)
    assert r.status == "optimal" and r.verification["verdict"] == "ok"
    assert rs.verification["verdict"] == "ok"
    assert r.bound <= rs.objective * (1 + 1e-9)          # our bound never exceeds SCIP's verified incumbent
    assert r.objective <= rs.objective * (1 + 1e-6)      # and SCIP finds nothing better
    if rs.bound is not None and math.isfinite(rs.bound):
        assert rs.bound <= r.objective * (1 + 1e-6)      # SCIP's bound never exceeds ours
    if rs.status == "optimal":
        assert abs(rs.objective - r.objective) <= 1e-6 * abs(r.objective)
