"""The ``mecsplit`` command line.

Exit codes: 0 success; 1 a check failed (infeasible point, objective disagreement, a flagged or
failed solve); 2 bad input (the one-line message names the file, the field and the fix);
3 internal error (one line naming the saved traceback file); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import __version__, cliargs
from .errors import InputError
from .fmt import num, pct

EPILOG = """examples:
  mecsplit variants
  mecsplit instance --variant default --users 10 --servers 3 --seed 1 -o inst.json
  mecsplit solve --instance inst.json --solver greedy -o result.json
  mecsplit check --instance inst.json result.json
  mecsplit plugins --probe
  mecsplit bench run default

exit codes: 0 ok, 1 check failed / solve flagged or failed, 2 bad input, 3 internal error, 130 interrupted
"""


def _variant(args):
    from .variant import load_variant

    return load_variant(args.variant)


def cmd_variants(args) -> int:
    from .variant import available_variants, load_variant

    if args.show:
        v = load_variant(args.show)
        print(f"{v.name}  ({v.path})\n  {v.description}\n  extends: {' -> '.join(v.chain)}")
        print(f"  sizes: {v.sizes}  generator: {v.generator[0]} {v.generator[1]}")
        print(f"  objective: {v.objective.kind} weights={dict(v.objective.weights)} normalise={v.objective.normalise}")
        for b in v.blocks:
            print(f"  [{b.name}] " + ", ".join(f"{k}={val}" for k, val in b.p.items()))
        return 0
    for name, path in available_variants().items():
        try:
            v = load_variant(path)
            print(f"{name:22s} {v.description}")
        except InputError as e:
            print(f"{name:22s} (invalid: {e})")
    return 0


def cmd_blocks(args) -> int:
    from .plugins import get_manager
    from .servers import CLASS_KEYS

    def show(params) -> None:
        for p in params:
            default = p.default if not isinstance(p.default, dict) else json.dumps(p.default)
            print(f"    {p.name:20s} {p.unit:18s} per {p.per:7s} default {default}  — {p.doc}")

    mgr = get_manager()
    for name, cls in sorted(mgr.blocks.items()):
        print(f"[blocks.{name}]  (plugin {mgr.block_origin[name]})  {cls.doc}")
        show(cls.params)
        try:   # what variant expressions may use (a block with its default parameters)
            blk = cls({})
            quantities = [(v.name, v.unit, v.doc) for v in blk.variables(None) if v.name != "server"] + \
                [(q.name, str(q.unit), q.doc) for q in blk.quantities()]
        except Exception:  # a block that needs an instance to list its variables
            quantities = []
        for qname, unit, doc in quantities:
            print(f"    quantity {qname:20s} {unit:9s} per user  — {doc}")
    print("quantities of every variant: delay_s (s), energy_J (J) per user (the sums of the delay and energy terms), "
          "stability and quality (1) with those blocks; n_users per server; aggregates sum_over_users, mean_over_users, "
          "max_over_users, min_over_users, sum_users (models/README.md)")
    for name, gen in sorted(mgr.generators.items()):
        print(f"[generator] name = \"{name}\"  {gen.description}")
        show(gen.params)
    print("[[generator.server_classes]]  (any generator; models/README.md, \"Servers\")")
    show(CLASS_KEYS)
    return 0


def cmd_instance(args) -> int:
    from .instance import generate

    inst = generate(_variant(args), args.users, args.servers, args.seed)
    if args.output:
        cliargs.write_output(args.output, inst.to_json())
        print(f"wrote {args.output}: variant {inst.variant.name}, {inst.N} users x {inst.M} servers, seed {inst.seed}, hash {inst.hash}")
    else:
        sys.stdout.write(inst.to_json())
    return 0


def _variant_and_instance(args):
    """The instance file and its variant: ``--variant`` if given (the instance must be of it), else the
    variant the file records."""
    from .instance import load
    from .variant import load_variant

    if args.variant is not None:
        variant = load_variant(args.variant)
    else:
        from .schema import NAME_RE, read_json

        try:
            recorded = read_json(args.instance, "an instance JSON").get("variant")
        except (InputError, AttributeError):
            recorded = None  # load() below says what is wrong with the file
        try:  # a recorded name only, looked up on the search path: an instance never names a file to read
            variant = load_variant(recorded if isinstance(recorded, str) and NAME_RE.fullmatch(recorded) else "default")
        except InputError as e:
            raise InputError(args.instance, "variant", f"the instance is of variant {recorded!r}, which is not found "
                             f"({e.problem})", f"--variant PATH/TO/{recorded}.toml") from None
    return variant, load(args.instance, variant)


def cmd_solve(args) -> int:
    from .solve import solve

    variant, inst = _variant_and_instance(args)
    options = dict(args.option)
    res = solve(variant, inst, args.solver, options, args.time_limit, args.seed)
    text = res.to_json()
    if args.output:
        cliargs.write_output(args.output, text + "\n")
    v = res.verification or {}
    print(f"{args.solver} on {variant.name} {inst.N}x{inst.M}: status {res.status.value}, objective {num(res.objective)}, "
          f"bound {num(res.bound)}, gap {pct(res.gap)}, {num(res.wall_time_s, 's')}, {res.iterations} iterations; "
          f"verifier: {v.get('verdict')} {' '.join(v.get('flags') or [])}".rstrip())
    if res.message:
        print(f"  message: {res.message}")
    for k in ("total_energy_J", "avg_delay_s", "mean_stability"):
        if k in res.metrics:
            print(f"  {k} = {num(res.metrics[k])}")
    return 0 if v.get("verdict") == "ok" and res.status.value != "error" else 1


def cmd_check(args) -> int:
    from .schema import read_json
    from .solve import RESULT_WHAT, check_result

    variant, inst = _variant_and_instance(args)
    d = read_json(args.result, RESULT_WHAT)
    ver, ev = check_result(variant, inst, d, args.result)
    obj = d.get("objective")
    if ev is None:
        print(f"no solution to evaluate (status {d.get('status')})")
    else:
        rel = None if obj is None or not ev.objective else abs(ev.objective - obj) / abs(ev.objective)
        print(f"objective (evaluated) = {num(ev.objective)}   reported = {num(obj)}   relative difference {pct(rel)}")
        for k, val in ev.metrics.items():
            if k != "objective":
                print(f"  {k:28s} {num(val)}")
        print("constraints (max relative violation):")
        for k, val in sorted(ev.violations.items()):
            print(f"  {k:28s} {pct(val)}{'  VIOLATED' if val > 1e-6 else ''}")
    print(f"verdict: {ver['verdict']} {' '.join(ver['flags'] or [])}".rstrip())
    return 0 if ver["verdict"] == "ok" else 1


def cmd_plugins(args) -> int:
    from .plugins import get_manager

    mgr = get_manager()
    if args.variant:   # capability matching: which solvers take this variant, and why not
        from .variant import load_variant

        v = load_variant(args.variant)
        for s in sorted(mgr.solvers.values(), key=lambda s: s.name):
            why = s.why_not(v)
            print(f"{s.name:22s} {'exact' if s.exact else 'heuristic':9s} {'takes ' + v.name if why is None else 'no: ' + why}")
        return 0
    specs = sorted(mgr.solvers.values(), key=lambda s: s.name)
    state = {s.name: ("unavailable: {} — {}".format(*why) if (why := mgr.unavailable(s)) else "available") for s in specs}
    if args.probe:
        from .probe import probe

        state.update(probe(mgr, [s for s in specs if state[s.name] == "available"], use_cache=not args.no_cache))
    for pname, info in mgr.info.items():
        print(f"{pname} {info['version']}  [{info['source']}]")
        for s in (s for s in specs if s.plugin == pname):
            kind = "exact" if s.exact else "heuristic"
            print(f"    solver {s.name:22s} {kind:9s} {state[s.name]}")
        steps = sorted(st.name for st in mgr.steps.values() if st.plugin == pname)
        if steps:
            print(f"    steps: {', '.join(steps)}")
        blocks = sorted(b for b, o in mgr.block_origin.items() if o == pname)
        if blocks:
            print(f"    blocks: {', '.join(blocks)}")
    for pname, err in mgr.errors.items():
        print(f"{pname}  FAILED TO LOAD: {err}")
    if not args.probe:
        print("(available = imports and declared requirements present; `mecsplit plugins --probe` solves a 2x1 instance with each)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = cliargs.OneLineParser(prog="mecsplit", description="Split fine-tuning MINLPs over mobile edge networks: "
                                 "variants, instances, solver plugins, verification and benchmarks.",
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"mecsplit {__version__}")
    ap.add_argument("--plugins-dir", action="append", default=[], help="folder of single-file plugins (*.py); repeatable")
    ap.add_argument("--block-plugin", action="append", default=[], help="do not load this plugin (entry-point name); repeatable")
    cliargs.add_verbose(ap)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("variants", help="list variants (or --show NAME)")
    p.add_argument("--show", metavar="NAME")
    p.set_defaults(fn=cmd_variants)

    p = sub.add_parser("blocks", help="list the blocks variant files can use, with parameters and units")
    p.set_defaults(fn=cmd_blocks)

    p = sub.add_parser("plugins", help="list plugins, their solvers and whether each can run here")
    p.add_argument("--probe", action="store_true", help="solve a 2x1 instance with each solver (in parallel; verdicts "
                   "cached by versions in ~/.cache/mecsplit, or $MECSPLIT_CACHE_DIR)")
    p.add_argument("--no-cache", action="store_true", help="with --probe: probe again even if a verdict is cached")
    p.add_argument("--no-probe", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for old scripts
    p.add_argument("--variant", metavar="V", help="say for each solver whether it takes variant V, or the first feature it lacks")
    p.set_defaults(fn=cmd_plugins)

    p = sub.add_parser("instance", help="generate a seeded instance")
    p.add_argument("--variant", default="default")
    p.add_argument("--users", type=cliargs.users)
    p.add_argument("--servers", type=cliargs.servers)
    p.add_argument("--seed", type=cliargs.seed, default=0)
    p.add_argument("-o", "--output", type=cliargs.output_file)
    p.set_defaults(fn=cmd_instance)

    p = sub.add_parser("solve", help="solve an instance with a registered solver; the result is verified")
    p.add_argument("--variant", default=None, help="name or .toml path (default: the variant the instance records)")
    p.add_argument("--instance", required=True, type=cliargs.input_file)
    p.add_argument("--solver", required=True)
    p.add_argument("--time-limit", type=cliargs.time_limit, metavar="SECONDS")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", type=cliargs.option)
    p.add_argument("--seed", type=cliargs.seed, default=0, help="seed of the solver's own random choices")
    p.add_argument("-o", "--output", type=cliargs.output_file)
    cliargs.add_verbose(p, sub=True)
    p.set_defaults(fn=cmd_solve)

    p = sub.add_parser("check", help="evaluate a result's solution independently; exit 1 if infeasible or disagreeing")
    p.add_argument("--variant", default=None, help="name or .toml path (default: the variant the instance records)")
    p.add_argument("--instance", required=True, type=cliargs.input_file)
    p.add_argument("result", type=cliargs.input_file)
    p.set_defaults(fn=cmd_check)

    try:
        from .bench.cli import add_parser as add_bench
    except ImportError:
        add_bench = None
    if add_bench is not None:
        add_bench(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.verbose:  # read where solvers are created (mecsplit.quiet), in this process and in bench workers
        os.environ["MECSPLIT_VERBOSE"] = "1"
    try:
        if args.plugins_dir or args.block_plugin:
            from .plugins import get_manager

            get_manager(reload=True, plugins_dirs=args.plugins_dir, blocked=args.block_plugin)
        return int(args.fn(args) or 0)
    except InputError as e:
        print(f"mecsplit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` etc.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # a bug: one line + the saved traceback, never the code of a failed check
        return cliargs.report_crash(e)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
