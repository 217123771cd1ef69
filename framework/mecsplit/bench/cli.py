"""``mecsplit bench`` subcommands: run, report, export, list (exit 0 ok, 1 cells errored/flagged, 2 bad input; a kill at the hard limit is a time-out, not a failure)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

from .. import cliargs, schema
from ..errors import InputError

DEFAULT_OUT = Path("bench-results") / "report"
DEFAULT_DB = Path("bench-results") / "results.sqlite"


def cmd_run(args) -> int:
    from .runner import THREAD_VARS

    for k in THREAD_VARS:  # before numpy is imported: workers (forked from here) inherit it
        if args.timing or k not in os.environ:
            os.environ[k] = "1"
    from .report import build_report, exit_status, summary_lines, write_index
    from .runner import run_suite
    from .store import Store
    from .suite import load_suite

    suite = load_suite(args.suite)
    if args.workers is not None and args.workers < 1:
        raise InputError("<option>", "--workers", f"got {args.workers}", "an integer >= 1")
    if args.executor == "dask":
        need_extra("distributed", "dask", "--executor")
    if args.executor == "dask" and not args.scheduler:
        raise InputError("<option>", "--scheduler", "missing for --executor dask", "a Dask scheduler address, e.g. tcp://host:8786")
    store = Store(args.db)
    try:
        try:
            s = run_suite(suite, store, workers=args.workers, executor=args.executor, scheduler=args.scheduler,
                          timing=args.timing, progress=not args.no_progress)
        except KeyboardInterrupt:
            stored = len({r["cell_hash"] for r in store.rows(suite.name)})
            print(f"\ninterrupted: {stored} cell(s) of suite {suite.name} stored in {args.db}; run "
                  f"`mecsplit bench run {args.suite}` again to resume (stored cells are not re-run)", file=sys.stderr)
            return 130
        md = build_report(store, suite.name, args.out)
        index = write_index(store, args.out)
        print("\n".join(summary_lines(store, suite.name)))
        print("(gap = (objective - reference) / |reference|, verified results only; * = killed at the hard limit)")
        print(f"suite {s['suite']}: {s['cells']} cells ({s['done_before']} already stored, {s['ran']} run, "
              f"{s['skipped']} skipped, {s['killed']} killed) in {s['wall_s']:.1f} s with {s['workers']} worker(s) "
              f"[{s['executor']}]; statuses {json.dumps(s['counts'], sort_keys=True)}")
        print(f"store: {args.db}\nreport: {md}  (and {md.with_suffix('.html')}; index {index})")
        return exit_status(store, suite.name)
    finally:
        store.close()


def _open_store(db):
    from .store import Store

    if not schema.is_file(db):
        raise InputError(str(db), "--db", "no such results store", "run `mecsplit bench run SUITE` first, or pass --db PATH")
    return Store(db)


def cmd_report(args) -> int:
    from .report import build_report, exit_status, readme_text, write_index, write_readme

    store = _open_store(args.db)
    try:
        suites = [args.suite] if args.suite else store.suites()
        if args.suite and args.suite not in store.suites():
            raise InputError(str(args.db), "suite", f"no results for suite {args.suite!r}", ", ".join(store.suites()) or "(empty store)")
        if args.readme and not args.suite:
            raise InputError("<option>", "--readme", "needs a SUITE", "mecsplit bench report SUITE --readme README.md")
        if args.readme:
            readme_text(args.readme)  # checked before any report is written
        code = 0
        for s in suites:
            print(f"report of suite {s} (tables and plots) ...", file=sys.stderr, flush=True)
            print(build_report(store, s, args.out))
            code = max(code, exit_status(store, s))
        print(write_index(store, args.out))
        if args.readme:
            write_readme(store, args.suite, args.readme, f"mecsplit bench report {args.suite} --readme {args.readme}")
            print(f"{args.readme}: generated section rewritten")
        return code
    finally:
        store.close()


def need_extra(module: str, extra: str, option: str) -> None:
    """One line naming the missing optional dependency and the pip command that installs it."""
    if importlib.util.find_spec(module) is None:
        from importlib import metadata

        from packaging.requirements import Requirement

        reqs = [Requirement(t) for t in metadata.requires("mecsplit") or []]
        pins = [str(r).split(";")[0].strip() for r in reqs if r.marker is not None and r.marker.evaluate({"extra": extra})]
        pin = " ".join(pins) or module
        raise InputError("<option>", option, f"needs {pin}, which is not installed",
                         f"pip install 'mecsplit[{extra}]' (or pip install '{pin}')")


def cmd_export(args) -> int:
    from .report import export_parquet

    need_extra("pyarrow", "parquet", "--parquet")
    store = _open_store(args.db)
    try:
        n = export_parquet(store, args.parquet, args.suite)
        print(f"wrote {n} row(s) to {args.parquet}")
        return 0
    finally:
        store.close()


def cmd_list(args) -> int:
    from .suite import available_suites, load_suite

    for name, path in available_suites().items():
        try:
            s = load_suite(path)
            print(f"{name:20s} {s.description}  [{path}]")
        except InputError as e:
            print(f"{name:20s} (invalid: {e})")
    return 0


def add_parser(sub) -> None:
    from ..cliargs import add_verbose

    p = sub.add_parser("bench", help="benchmark suites: run, report, export, list (docs/benchmarks.md)",
                       description="Run benchmark suites (every cell in its own worker process with a hard "
                                   "wall-clock kill), store results in SQLite, report, export.")
    bs = p.add_subparsers(dest="bench_cmd", required=True)
    default_db = str(DEFAULT_DB)

    r = bs.add_parser("run", help="run a suite (name from `bench list` or a .toml path); finished cells are skipped")
    r.add_argument("suite", metavar="SUITE")
    r.add_argument("--workers", type=cliargs.workers, default=None, help=f"worker processes (default: cores = {os.cpu_count()})")
    r.add_argument("--executor", choices=("local", "dask"), default="local")
    r.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler address (with --executor dask)")
    r.add_argument("--timing", action="store_true", help="timing mode: one worker, one BLAS/OpenMP thread")
    r.add_argument("--db", default=default_db, help=f"SQLite store (default {default_db})")
    r.add_argument("--out", default=str(DEFAULT_OUT), type=cliargs.output_dir, help=f"report folder (default {DEFAULT_OUT}/: index.html + <suite>/report.html|md + PNGs)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_verbose(r, sub=True)
    r.set_defaults(fn=cmd_run)

    r = bs.add_parser("report", help="markdown + HTML + PNG/SVG report from the store")
    r.add_argument("suite", nargs="?", help="one suite (default: every suite in the store)")
    r.add_argument("--db", default=default_db)
    r.add_argument("--out", default=str(DEFAULT_OUT), type=cliargs.output_dir)
    r.add_argument("--readme", metavar="FILE", help="also write SUITE's headline table between the "
                   "<!-- mecsplit:headline:start/end --> markers of FILE (the README's generated section)")
    r.set_defaults(fn=cmd_report)

    r = bs.add_parser("export", help="export the store as parquet (benchopt-like columns)")
    r.add_argument("--parquet", required=True, metavar="FILE", type=cliargs.output_file)
    r.add_argument("--suite", default=None)
    r.add_argument("--db", default=default_db)
    r.set_defaults(fn=cmd_export)

    r = bs.add_parser("list", help="list the suites found (benchmarks/suites, $MECSPLIT_SUITES)")
    r.set_defaults(fn=cmd_list)
