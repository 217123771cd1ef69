"""Benchmark of the Ipopt bridge (mecsplit.ipopt) against casadi.nlpsol on the same NLP.

    python benchmarks/bench_ipopt_bridge.py [--sizes 10x3,50x10,200x20] [--starts mid,upper]
                                            [--repeat 3] [--seed 0] [--resolves 8] [--tuned k=v,...]
                                            [--sweep]

The NLP (continuous split fine-tuning over a mobile edge network, fixed round-robin association
j(i) = i mod J): per user i, transmit power p_i in [0.01, 2] W, local CPU f_i in [0.5, 1] GHz, split
layer l_i in [1, 31] (continuous); per (i, j(i)) bandwidth b in [1e-3, 20] MHz, edge CPU fe in
[0.1, 3] GHz; minimise

    sum_i l_i (A_i/f_i + k f_i^2) + (31 - l_i)(B_i/fe + k2 fe^2)
          + S_i (1 + p_i) / (b log(1 + p_i g_i / b) / ln 2) + c / (1 - l_i/32)

s.t. per server sum b <= 20 MHz and sum fe <= 3 GHz. A, B ~ U(0.02, 0.05) Gcycles/layer,
S ~ U(2, 8) Mbit, g ~ U(20, 200), k = 0.5, k2 = 0.2, c = 0.5.

Rows (all times wall clock, best of --repeat):
* bridge/cyipopt: Pyomo model -> walk -> CasADi derivatives -> CyIpoptNLP + cyipopt-wheels Ipopt;
* bridge/cyipopt + opts: the same with the Ipopt options given by --tuned;
* bridge/casadi: the same walk, solved by casadi.nlpsol (driver="casadi");
* reference: the NLP written directly in CasADi from the same data, casadi.nlpsol('ipopt').
"end-to-end" is the whole solve call from a built model (walk, compile, solve, results) for the
bridge, and SX construction + nlpsol construction + solve for the reference; "ratio" divides by the
reference. "callbacks %" is the share of solve time spent in function/derivative evaluations
(our Python callbacks for cyipopt; CasADi's own t_wall_nlp_* for nlpsol).
"""

from __future__ import annotations

import argparse
import math
import time

import casadi as ca
import numpy as np
import pyomo.environ as pyo

from mecsplit.ipopt import clear_cache, solve_nlp

K, K2, C_PRIV, L_MAX = 0.5, 0.2, 0.5, 31.0
BOUNDS = {"p": (0.01, 2.0), "f": (0.5, 1.0), "l": (1.0, 31.0), "b": (1e-3, 20.0), "fe": (0.1, 3.0)}
B_TOT, FE_TOT = 20.0, 3.0  # MHz, GHz per server


def make_data(n_users: int, n_servers: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    server = np.arange(n_users) % n_servers
    load = np.bincount(server, minlength=n_servers)[server]  # users sharing each user's server
    if np.any(load * BOUNDS["fe"][0] > FE_TOT):
        raise ValueError(f"{n_users}x{n_servers} is infeasible: fe >= 0.1 GHz per user")
    return dict(N=n_users, J=n_servers, server=server,
                A=rng.uniform(0.02, 0.05, n_users), B=rng.uniform(0.02, 0.05, n_users),
                S=rng.uniform(2, 8, n_users), g=rng.uniform(20, 200, n_users),
                # start: mid box for user variables, 90 % of an equal share of each budget
                b0=np.minimum(0.9 * B_TOT / load, BOUNDS["b"][1]),
                fe0=np.maximum(0.9 * FE_TOT / load, BOUNDS["fe"][0]))


def start_point(d: dict, start: str) -> dict:
    """Per-variable start vectors: "mid" (mid box, 90 % of an equal budget share) or "upper"
    (every variable at its upper bound: budgets violated, a harder start)."""
    n = d["N"]
    if start == "upper":
        return {k: np.full(n, BOUNDS[k][1]) for k in BOUNDS}
    if start != "mid":
        raise ValueError(f"unknown start {start!r} (mid, upper)")
    return {"p": np.full(n, 1.0), "f": np.full(n, 0.75), "l": np.full(n, 16.0),
            "b": d["b0"], "fe": d["fe0"]}


def build_pyomo(d: dict, start: str = "mid") -> pyo.ConcreteModel:
    m = pyo.ConcreteModel(name=f"split{d['N']}x{d['J']}")
    m.U = pyo.RangeSet(0, d["N"] - 1)
    m.S = pyo.RangeSet(0, d["J"] - 1)
    m.P = pyo.Set(initialize=[(i, int(d["server"][i])) for i in range(d["N"])], dimen=2)
    x0 = start_point(d, start)
    m.p = pyo.Var(m.U, bounds=BOUNDS["p"], initialize=lambda m, i: x0["p"][i])
    m.f = pyo.Var(m.U, bounds=BOUNDS["f"], initialize=lambda m, i: x0["f"][i])
    m.l = pyo.Var(m.U, bounds=BOUNDS["l"], initialize=lambda m, i: x0["l"][i])
    m.b = pyo.Var(m.P, bounds=BOUNDS["b"], initialize=lambda m, i, j: x0["b"][i])
    m.fe = pyo.Var(m.P, bounds=BOUNDS["fe"], initialize=lambda m, i, j: x0["fe"][i])
    A, B, S, g = d["A"], d["B"], d["S"], d["g"]

    def user_cost(i, j):
        rate = m.b[i, j] * pyo.log(1 + m.p[i] * g[i] / m.b[i, j]) / math.log(2)  # Mbit/s
        return (m.l[i] * (A[i] / m.f[i] + K * m.f[i] ** 2)
                + (L_MAX - m.l[i]) * (B[i] / m.fe[i, j] + K2 * m.fe[i, j] ** 2)
                + S[i] * (1 + m.p[i]) / rate + C_PRIV / (1 - m.l[i] / 32))

    m.obj = pyo.Objective(expr=sum(user_cost(i, j) for i, j in m.P))
    m.bw = pyo.Constraint(m.S, rule=lambda m, s: sum(m.b[i, j] for i, j in m.P if j == s) <= B_TOT)
    m.cpu = pyo.Constraint(m.S, rule=lambda m, s: sum(m.fe[i, j] for i, j in m.P if j == s)
                           <= FE_TOT)
    return m


def build_casadi(d: dict, start: str = "mid"):
    """The same NLP written directly (vectorised) in CasADi: (nlp dict, x0, lbx, ubx, lbg, ubg)."""
    n = d["N"]
    p, f, l, b, fe = (ca.SX.sym(k, n) for k in ("p", "f", "l", "b", "fe"))
    rate = b * ca.log(1 + p * d["g"] / b) / math.log(2)
    cost = (l * (d["A"] / f + K * f ** 2) + (L_MAX - l) * (d["B"] / fe + K2 * fe ** 2)
            + d["S"] * (1 + p) / rate + C_PRIV / (1 - l / 32))
    onehot = np.zeros((d["J"], n))
    onehot[d["server"], np.arange(n)] = 1.0
    x = ca.vertcat(p, f, l, b, fe)
    g = ca.vertcat(ca.mtimes(onehot, b), ca.mtimes(onehot, fe))
    lb = np.concatenate([np.full(n, BOUNDS[k][0]) for k in ("p", "f", "l", "b", "fe")])
    ub = np.concatenate([np.full(n, BOUNDS[k][1]) for k in ("p", "f", "l", "b", "fe")])
    s0 = start_point(d, start)
    x0 = np.concatenate([s0[k] for k in ("p", "f", "l", "b", "fe")])
    ubg = np.concatenate([np.full(d["J"], B_TOT), np.full(d["J"], FE_TOT)])
    return {"x": x, "f": ca.sum1(cost), "g": g}, x0, lb, ub, np.full(2 * d["J"], -np.inf), ubg


def run_reference(d: dict, start: str, options: dict) -> dict:
    t0 = time.perf_counter()
    nlp, x0, lbx, ubx, lbg, ubg = build_casadi(d, start)
    opts = {"ipopt": {"print_level": 0, "sb": "yes", **options}, "print_time": False}
    solver = ca.nlpsol("ref", "ipopt", nlp, opts)
    t1 = time.perf_counter()
    sol = solver(x0=x0, lbx=lbx, ubx=ubx, lbg=lbg, ubg=ubg)
    t2 = time.perf_counter()
    st = solver.stats()
    cb = sum(v for k, v in st.items() if k.startswith("t_wall_nlp_"))
    return dict(compile=t1 - t0, solve=t2 - t1, total=t2 - t0, iters=st["iter_count"],
                obj=float(sol["f"]), callbacks=cb, status=st["return_status"])


def run_bridge(d: dict, start: str, driver: str, options: dict, warm: bool = True) -> dict:
    t0 = time.perf_counter()
    m = build_pyomo(d, start)
    build = time.perf_counter() - t0
    clear_cache()  # measure a cold compile
    r = solve_nlp(m, driver=driver, options=options, load_solutions=False)
    # a second solve of the same structure hits the compile cache
    w = solve_nlp(m, driver=driver, options=options, load_solutions=False) if warm else None
    return dict(build=build, compile=r.compile_time_s, solve=r.solve_time_s, total=r.wall_time_s,
                iters=r.iterations, obj=r.objective, callbacks=r.callback_time_s,
                status=r.ipopt_status, warm_compile=w.compile_time_s if w else None)


def run_resolves(d: dict, driver: str, options: dict, k: int, cached: bool) -> dict:
    """k solves of one model whose split layers l are fixed to a new random 1/31 pattern each
    time (as a MINLP's fixed-integer subproblems): only fixed values change."""
    rng = np.random.default_rng(1)
    m = build_pyomo(d)
    clear_cache()
    compile_s = total_s = 0.0
    for _ in range(k):
        for i in m.U:
            m.l[i].fix(float(rng.choice([1.0, 31.0])))
        if not cached:
            clear_cache()
        r = solve_nlp(m, driver=driver, options=options, load_solutions=False)
        compile_s += r.compile_time_s
        total_s += r.wall_time_s
    return dict(compile=compile_s / k, total=total_s / k)


def best_of(fn, repeat):
    runs = [fn() for _ in range(repeat)]
    return min(runs, key=lambda r: r["total"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10x3,50x10,200x20")
    ap.add_argument("--starts", default="mid,upper")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--resolves", type=int, default=8,
                    help="solves per size in the compile-cache table (0 to skip)")
    ap.add_argument("--sweep", action="store_true",
                    help="also try Ipopt option sets on the largest size (slow: L-BFGS runs)")
    ap.add_argument("--tuned", default="",
                    help="extra Ipopt options for a 'cyipopt + opts' row, e.g. "
                         "'mumps_permuting_scaling=0,mumps_scaling=0'")
    args = ap.parse_args(argv)
    base = {"tol": args.tol}
    tuned = dict(base)
    for item in filter(None, args.tuned.split(",")):
        k, v = item.split("=")
        tuned[k] = int(v) if v.lstrip("-").isdigit() else (float(v) if _isfloat(v) else v)

    sizes = [tuple(map(int, s.split("x"))) for s in args.sizes.split(",")]
    rows = []
    for n_users, n_servers in sizes:
        d = make_data(n_users, n_servers, args.seed)
        for start in args.starts.split(","):
            ref = best_of(lambda: run_reference(d, start, base), args.repeat)
            cases = [("bridge/cyipopt", "cyipopt", base), ("bridge/casadi", "casadi", base)]
            if len(tuned) > len(base):
                cases.insert(1, ("bridge/cyipopt + opts", "cyipopt", tuned))
            for label, driver, opts in cases:
                r = best_of(lambda: run_bridge(d, start, driver, opts), args.repeat)
                rows.append((n_users, n_servers, start, label, r, ref))
            rows.append((n_users, n_servers, start, "reference casadi.nlpsol", ref, ref))

    print(f"\nIpopt bridge vs casadi.nlpsol: tol={args.tol}, best of {args.repeat}, seed {args.seed}"
          + (f", opts: {args.tuned}" if args.tuned else ""))
    print("\n| N×J (n, m) | start | route | model build ms | compile ms | warm compile ms | iters "
          "| solve ms | ms/iter | callbacks % | objective | end-to-end ms | ratio end-to-end "
          "| ratio ms/iter |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n_users, n_servers, start, label, r, ref in rows:
        it = max(r["iters"], 1)
        per_it = (r["solve"] / it) / (ref["solve"] / max(ref["iters"], 1))
        print(f"| {n_users}×{n_servers} ({5 * n_users}, {2 * n_servers}) | {start} | {label} | "
              f"{_ms(r.get('build'))} | {_ms(r['compile'])} | {_ms(r.get('warm_compile'))} | "
              f"{r['iters']} | {_ms(r['solve'])} | {1e3 * r['solve'] / it:.2f} | "
              f"{100 * r['callbacks'] / r['solve']:.0f} | {r['obj']:.6f} | {_ms(r['total'])} | "
              f"{r['total'] / ref['total']:.2f} | {per_it:.2f} |")
        if r["status"] != "Solve_Succeeded":
            print(f"|  |  | status: {r['status']} ||||||||||||")

    if args.resolves:
        print(f"\nCompile cache: {args.resolves} solves per size, split layers l fixed to a new "
              "1/31 pattern each time (start mid); mean per solve")
        print("\n| N×J | driver | compile ms, cache off | compile ms, cache on | solve call ms, "
              "cache off | solve call ms, cache on | saved |")
        print("|---|---|---|---|---|---|---|")
        for n_users, n_servers in sizes:
            d = make_data(n_users, n_servers, args.seed)
            for driver in ("cyipopt", "casadi"):
                off = best_of(lambda: run_resolves(d, driver, base, args.resolves, False), 1)
                on = best_of(lambda: run_resolves(d, driver, base, args.resolves, True), 1)
                print(f"| {n_users}×{n_servers} | {driver} | {_ms(off['compile'])} | "
                      f"{_ms(on['compile'])} | {_ms(off['total'])} | {_ms(on['total'])} | "
                      f"{100 * (1 - on['total'] / off['total']):.0f} % |")

    if args.sweep:
        n_users, n_servers = sizes[-1]
        sweep(make_data(n_users, n_servers, args.seed), "mid", base, args.repeat)


# Ipopt option sets tried on the cyipopt driver (--sweep)
SWEEP = [
    {}, {"mumps_pivot_order": 0}, {"mumps_pivot_order": 2}, {"mumps_pivot_order": 4},
    {"mumps_pivot_order": 6}, {"mumps_permuting_scaling": 0, "mumps_scaling": 0},
    {"mumps_mem_percent": 100}, {"linear_system_scaling": "none"},
    {"hessian_approximation": "limited-memory"}, {"mu_strategy": "adaptive"},
]


def sweep(d: dict, start: str, base: dict, repeat: int) -> None:
    print(f"\nIpopt option sweep, {d['N']}×{d['J']}, start {start}, best of {repeat}")
    print("\n| driver | options | iters | solve ms | ms/iter | status |")
    print("|---|---|---|---|---|---|")
    for driver in ("cyipopt", "casadi"):
        for extra in SWEEP:
            r = best_of(lambda: run_bridge(d, start, driver, {**base, **extra}, warm=False), repeat)
            label = ", ".join(f"{k}={v}" for k, v in extra.items()) or "(defaults)"
            print(f"| {driver} | {label} | {r['iters']} | {_ms(r['solve'])} | "
                  f"{1e3 * r['solve'] / max(r['iters'], 1):.2f} | {r['status']} |")


def _ms(v):
    return "–" if v is None else f"{1e3 * v:.1f}"


def _isfloat(v):
    try:
        float(v)
        return True
    except ValueError:
        return False


if __name__ == "__main__":
    main()
