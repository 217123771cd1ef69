"""The registered solvers: ``liu-zhao`` and the paper's baselines (spec §1.11), each a composition of
steps from :mod:`mecsplit_liuzhao.decomposition` (``init`` once, then ``cycle`` until the objective
stops decreasing).

| solver          | init                                                   | cycle                                   |
|-----------------|--------------------------------------------------------|-----------------------------------------|
| liu-zhao        | greedy-association, fp-resources                       | <association>, fp-resources             |
| ao              | greedy-association, exact-alpha, fp-resources-fixed-α  | <association>, exact-alpha, fp-fixed-α  |
| alpha-only      | greedy-association, random-resources, exact-alpha      | <association>, random-resources, exact-alpha |
| resources-only  | greedy-association, random-alpha, fp-fixed-α           | <association>, fp-fixed-α               |
| greedy-fp       | greedy-association, fp-resources                       | —                                       |
| random-fp       | random-association, fp-resources                       | —                                       |
| local-only      | greedy-association, alpha-max, fp-fixed-α              | <association>, fp-fixed-α               |
| edge-only       | greedy-association, alpha-min, fp-fixed-α              | <association>, fp-fixed-α               |
| liu-zhao-load   | greedy-association, fp-resources                       | <association> = load, fp-resources      |

Option ``inits`` (default "relaxed"): comma-separated starts of the whole decomposition, one run
each, best kept: "relaxed" (greedy association, FP from the closed-form relaxed α at equal shares),
"local" / "edge" (first converge the local-only / edge-only plan with α pinned, then continue with
this solver's cycle from there, so the result is never worse than that baseline).
P2 has several basins (hardware-2024: all-edge vs all-local), and the alternation stays in the one it
starts in — see docs/liuzhao.md. ``alpha_starts`` does the same inside each FP step.
<association> is the option ``association`` = "cccp" (default; ``liu-zhao-load``: "load") | "load" | "greedy" |
"random" | "none". Option ``start`` = "capped" (default: the greedy start puts at most ⌈N/M⌉ users on a
server, our reading of the paper's "subject to bandwidth") | "uncapped".
local-only uses α = Υ−1, not Υ: with the stability block AS_n = 2L²/(k(1−α/Υ)) is infinite at α = Υ
and the variant bounds α ≤ Υ−1 (spec §1.11 [I]); one layer still runs at the edge.
"""

from __future__ import annotations

from functools import partial

from mecsplit.errors import InputError
from mecsplit.result import Outcome, Status

from .decomposition import STEPS, Context, decompose, initial_state

ASSOC = {"cccp": "cccp-association", "load": "load-association", "greedy": "greedy-association",
         "random": "random-association", "none": None}
STARTS = ("capped", "uncapped")
ROUNDING = ("nearest", "exact")

PLANS = {
    "liu-zhao": (["greedy-association", "fp-resources"], ["<assoc>", "fp-resources"]),
    "ao": (["greedy-association", "exact-alpha", "fp-resources-fixed-alpha"], ["<assoc>", "exact-alpha", "fp-resources-fixed-alpha"]),
    "alpha-only": (["greedy-association", "random-resources", "exact-alpha"], ["<assoc>", "random-resources", "exact-alpha"]),
    "resources-only": (["greedy-association", "random-alpha", "fp-resources-fixed-alpha"], ["<assoc>", "fp-resources-fixed-alpha"]),
    "greedy-fp": (["greedy-association", "fp-resources"], []),
    "random-fp": (["random-association", "fp-resources"], []),
    "local-only": (["greedy-association", "alpha-max", "fp-resources-fixed-alpha"], ["<assoc>", "fp-resources-fixed-alpha"]),
    "edge-only": (["greedy-association", "alpha-min", "fp-resources-fixed-alpha"], ["<assoc>", "fp-resources-fixed-alpha"]),
    "liu-zhao-load": (["greedy-association", "fp-resources"], ["<assoc>", "fp-resources"]),
}

DESCRIPTIONS = {
    "liu-zhao": "Liu & Zhao decomposition: FP resource step (α relaxed, rounded) alternated with the CCCP association LP step",
    "ao": "classic alternating optimisation: exact integer α-step, then FP resources with α fixed, then association",
    "alpha-only": "optimise α only (exact), random resources (seeded), association step",
    "resources-only": "optimise resources only (FP, α fixed), random α (seeded), association step",
    "greedy-fp": "greedy association (highest rate, at most ⌈N/M⌉ users per server: our reading of the paper's "
                 "'subject to bandwidth', a modelling choice), then the FP resource step",
    "random-fp": "random association (seeded; at most ⌈N/M⌉ users per server: our reading of the paper's "
                 "'subject to bandwidth', a modelling choice), then the FP resource step",
    "local-only": "α = α_max (Υ−1: AS is infinite at Υ), FP resources, association step",
    "edge-only": "α = α_min (every layer but α_min at the edge), FP resources, association step",
    "liu-zhao-load": "liu-zhao with an improved association (not in the paper): single-user moves priced at the "
                     "equal shares of the loads they create, instead of the CCCP LP whose tentative shares "
                     "keep every server's load fixed (docs/liuzhao.md)",
}

OPTIONS = {"association": "cccp", "start": "capped", "max_outer": 20, "tol": 1e-4, "starts": 3, "rho0": 0.01, "rho_growth": 10.0,
           "cccp_max_iter": 60, "tentative": "share", "fp_tol": 1e-8, "fp_max_iter": 300, "rounding": "nearest", "kkt": False,
           "alpha_starts": "given", "inits": "relaxed", "max_moves": 0}
SOLVER_OPTIONS = {"liu-zhao-load": {"association": "load"}}   # defaults that differ from OPTIONS
# checked by the framework before a solve (mecsplit.solve.check_option); other numbers must be ≥ 0
DOMAINS = {"association": tuple(ASSOC), "rounding": ROUNDING, "start": STARTS, "tentative": ("share", "current"),
           **{k: {"lo": 1} for k in ("starts", "cccp_max_iter", "fp_max_iter")}}


def _bind(name: str, opts: dict):
    kind, fn = STEPS[name]
    if kind == "resources" and name.startswith("fp-"):
        kw = {"tol": opts["fp_tol"], "max_iter": opts["fp_max_iter"], "kkt": opts["kkt"]}
        if name == "fp-resources":
            kw["rounding"] = opts["rounding"]
            kw["alpha_starts"] = tuple(opts["alpha_starts"].split(","))
        return partial(fn, **kw)
    if name == "greedy-association":
        return partial(fn, capped=opts["start"] == "capped")
    if name == "load-association":
        return partial(fn, max_moves=opts["max_moves"] or None)
    if name == "cccp-association":
        return partial(fn, starts=opts["starts"], rho0=opts["rho0"], rho_growth=opts["rho_growth"],
                       max_iter=opts["cccp_max_iter"], tentative=opts["tentative"])
    return fn


def plan(solver: str, opts: dict):
    if not opts["alpha_starts"] or set(opts["alpha_starts"].split(",")) - {"given", "min", "max", "mid"}:
        raise InputError("<option>", f"{solver}.alpha_starts", f"got {opts['alpha_starts']!r}",
                         "comma-separated FP α starts from given, min, max, mid")
    if not opts["inits"] or set(opts["inits"].split(",")) - {"relaxed", "local", "edge"}:
        raise InputError("<option>", f"{solver}.inits", f"got {opts['inits']!r}",
                         "comma-separated starts of the decomposition from relaxed, local, edge (best kept)")
    init, cycle = PLANS[solver]
    assoc = ASSOC[opts["association"]]
    cycle = [assoc if s == "<assoc>" else s for s in cycle]
    if None in cycle:
        cycle = []
    return [_bind(s, opts) for s in init], [_bind(s, opts) for s in cycle], init, cycle


def run(solver: str, problem, options: dict, tracer) -> Outcome:
    init, cycle, init_names, cycle_names = plan(solver, options)
    ctx = Context.of(problem.variant, problem.instance, problem.rng, tracer)
    if (ctx.P.fe_eq or ctx.P.b_eq) and ctx.P.N < ctx.P.M:
        return Outcome(Status.INFEASIBLE, message=f"equality budgets need every server to serve a user: "
                       f"{ctx.P.N} users < {ctx.P.M} servers (the instance has no feasible point)")
    st, per_init = None, []
    for how in options["inits"].split(","):
        if how == "relaxed":
            cand = decompose(ctx, initial_state(ctx), init, cycle, max_outer=options["max_outer"], tol=options["tol"])
        else:  # converge with α pinned (local-only / edge-only plan), then continue with this solver's cycle
            pin_init, pin_cycle, _, _ = plan("local-only" if how == "local" else "edge-only", options)
            pinned = decompose(ctx, initial_state(ctx), pin_init, pin_cycle, max_outer=options["max_outer"], tol=options["tol"])
            cand = decompose(ctx, pinned, [], cycle, max_outer=options["max_outer"], tol=options["tol"])
        per_init.append({"init": how, "objective": cand.objective})
        if st is None or cand.objective < st.objective:
            st = cand
    cccp = [r for r in ctx.log if r["step"] == "cccp-association"]
    outer = [r for r in ctx.log if r["step"] == "outer"]
    extra = {"plan": {"init": init_names, "cycle": cycle_names}, "inits": per_init,
             "outer": outer,
             "fp_iterations": [r["fp_iterations"] for r in ctx.log if r["step"] == "fp-resources"],
             "cccp": [{"lp_solves": r["lp_solves"], "moved": r["moved"], "G_before": r["G_before"], "G_after": r["G_after"],
                       "starts": r["starts"], "iterations": r["iterations"]} for r in cccp],
             "kkt_residual": [r["kkt_residual"] for r in ctx.log if "kkt_residual" in r]}
    return Outcome(Status.FEASIBLE, solution=st.solution(), objective=float(st.objective),
                   iterations=max(len(outer) - 1, 0), extra=extra)


def solver_fn(name: str):
    def solve(problem, options, tracer):
        return run(name, problem, options, tracer)
    solve.__name__ = f"solve_{name.replace('-', '_')}"
    return solve

