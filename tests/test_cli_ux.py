"""Issue 20: a CLI that is quick and quiet, says what went wrong where it went wrong, and installs like a
package. One test (or more) per bullet of the issue; every CLI call runs in a fresh interpreter."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import run_cli

HEAVY = ("pyomo", "scipy", "highspy", "cvxpy", "casadi", "pyscipopt", "cyipopt")
# what HiGHS, SCIP, Ipopt and Pyomo print when left alone (banner, log lines, warnings)
CHATTER = re.compile(r"HiGHS|Highs|SCIP|Ipopt|pyomo|Pyomo|WARNING|Coefficient ranges|Presolv|Copyright")
OURS = re.compile(r"^(\S+ on \S+ \d+x\d+: status |  message: |  \w+ = )")  # what `mecsplit solve` prints


def chatter(r) -> list[str]:
    return [ln for ln in (r.stdout + r.stderr).splitlines() if CHATTER.search(ln) and not OURS.match(ln)]

# the reference point (equal shares, full power) as a solver; with PROBE_LOG set, each call is logged
TEST_PLUGIN = '''
import os, time
from mecsplit.plugins import hookimpl
from mecsplit.result import Outcome, Status

def solve(problem, options, tracer):
    if "PROBE_LOG" in os.environ:
        with open(os.environ["PROBE_LOG"], "a") as fh:
            fh.write(f"{os.getpid()}\\n")
    time.sleep(float(os.environ.get("PROBE_SLEEP", "0")))
    sol = {k: v.tolist() for k, v in problem.instance.reference_solution().items()}
    ev = problem.evaluate(sol)
    tracer.incumbent(ev.objective, sol)
    return Outcome(Status.FEASIBLE, sol, ev.objective)

@hookimpl
def register_solvers(registry):
    registry.add_solver(name="ref", solve=solve, exact=False)
    registry.add_solver(name="ref-b", solve=solve, exact=False)
    registry.add_solver(name="needs-xyz", solve=solve, exact=False, requires=("not_a_module_xyz",))
'''


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    d = tmp_path_factory.mktemp("ux")
    for variant, users, servers in (("default", 3, 2), ("liu-zhao-2024", 3, 2), ("dashf-2024", 2, 1)):
        r = run_cli("instance", "--variant", variant, "--users", str(users), "--servers", str(servers), "--seed", "1",
                    "-o", str(d / f"{variant}.json"))
        assert r.returncode == 0, r.stderr
    return d


# --- quick -----------------------------------------------------------------------------------------
def test_version():
    r = run_cli("--version")
    assert r.returncode == 0 and re.fullmatch(r"mecsplit \d+\.\d+\.\d+\n", r.stdout)


def _loaded_after(calls: str, modules) -> subprocess.CompletedProcess:
    """Run ``calls`` (Python using ``main``) in a fresh interpreter; its last line lists which of
    ``modules`` got imported: ``LOADED [...]``."""
    code = (f"import sys; from mecsplit.cli import main\n{calls}\n"
            f"print('LOADED', sorted(m for m in {tuple(modules)!r} if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r


def test_help_imports_nothing_numeric():
    """`mecsplit --help` loads argparse and the CLI only: not even numpy (the ≤ 0.2 s part of the issue)."""
    r = _loaded_after("try: main(['--help'])\nexcept SystemExit: pass", ("numpy",) + HEAVY)
    assert "LOADED []" in r.stdout, r.stdout[-300:]


def test_listing_imports_no_solver_stack():
    """`variants`, `blocks` and `plugins` (no --probe) with every installed plugin import none of Pyomo,
    SciPy, HiGHS, CVXPY, CasADi, SCIP, Ipopt (the import-time part of the issue; timings: benchmarks/cli_startup.py)."""
    r = _loaded_after("for cmd in (['variants'], ['blocks'], ['plugins']): assert main(cmd) == 0", HEAVY)
    assert "LOADED []" in r.stdout, r.stdout[-300:]
    assert "solver greedy" in r.stdout  # the plugins were loaded, just not their solver stacks


def test_plugins_lists_availability_without_solving(tmp_path):
    """Plain `plugins` solves nothing; a missing module is named with the pip command; --probe solves
    each solver once, in worker processes, in parallel, and caches the verdict by versions."""
    (tmp_path / "plugs").mkdir()
    (tmp_path / "plugs" / "ref.py").write_text(TEST_PLUGIN)
    log = tmp_path / "calls.txt"
    env = {"PROBE_LOG": str(log), "MECSPLIT_CACHE_DIR": str(tmp_path / "cache"), "PROBE_SLEEP": "1"}
    args = ("--plugins-dir", str(tmp_path / "plugs"), "plugins")
    r = run_cli(*args, env=env)
    assert r.returncode == 0, r.stderr
    assert not log.exists()  # nothing was solved
    assert re.search(r"ref .* available", r.stdout)
    assert "unavailable: missing module(s) not_a_module_xyz — pip install not_a_module_xyz" in r.stdout

    r = run_cli(*args, "--probe", env=env)
    assert r.returncode == 0, r.stderr
    assert re.search(r"ref .* ok \(default 2x1 in [\d.e+-]+ s\)$", r.stdout, re.M), r.stdout
    assert re.search(r"ref-b .* ok \(default 2x1 in", r.stdout)
    pids = log.read_text().split()
    assert len(pids) == 2  # each available solver once; needs-xyz is not probed
    if (os.cpu_count() or 1) >= 2:
        assert len(set(pids)) == 2  # two workers at once (each probe sleeps 1 s)

    r = run_cli(*args, "--probe", env=env)
    assert "(cached)" in r.stdout and len(log.read_text().split()) == 2  # cached: not solved again
    r = run_cli(*args, "--probe", "--no-cache", env=env)
    assert "(cached)" not in r.stdout and len(log.read_text().split()) == 4
    # an edit of the plugin changes the key: probed again without --no-cache
    src = tmp_path / "plugs" / "ref.py"
    src.write_text(src.read_text() + "\n# edited\n")
    os.utime(src, (time.time() + 5, time.time() + 5))
    r = run_cli(*args, "--probe", env=env)
    assert "(cached)" not in r.stdout and len(log.read_text().split()) == 6


def _fake_distribution(root, requires: list[str], extras: list[str] = ()):
    """An installed distribution 'fake-plugin' with the given Requires-Dist lines and an entry point."""
    (root / "fake_plugin.py").write_text(textwrap.dedent('''
        from mecsplit.plugins import hookimpl
        @hookimpl
        def register_solvers(registry):
            registry.add_solver(name="fake-fast", solve="fake_plugin:nope", exact=False, requires=("fastlib_xyz",))
            registry.add_solver(name="fake-plain", solve="fake_plugin:nope", exact=False)
    '''))
    di = root / "fake_plugin-1.0.dist-info"
    di.mkdir()
    meta = ["Metadata-Version: 2.1", "Name: fake-plugin", "Version: 1.0", *[f"Provides-Extra: {e}" for e in extras],
            *[f"Requires-Dist: {r}" for r in requires]]
    (di / "METADATA").write_text("\n".join(meta) + "\n")
    (di / "entry_points.txt").write_text("[mecsplit]\nfake = fake_plugin\n")


def test_unavailable_names_the_extra_and_the_core_bound(tmp_path):
    _fake_distribution(tmp_path, ['fastlib-xyz>=2; extra == "fast"', "mecsplit>=99,<100"], extras=["fast"])
    env = {"PYTHONPATH": str(tmp_path), "MECSPLIT_LOAD_PLUGINS": "fake"}
    r = run_cli("plugins", env=env, entry_points=True)
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if "fake-fast" in ln)
    assert "needs mecsplit<100,>=99 (installed: 0.1.0)" in line or "needs mecsplit>=99,<100 (installed: 0.1.0)" in line
    assert "missing module(s) fastlib_xyz" in line and "pip install 'fake-plugin[fast]'" in line
    plain = next(ln for ln in r.stdout.splitlines() if "fake-plain" in ln)
    assert "unavailable: needs mecsplit" in plain  # the core bound applies to every solver of the plugin


# --- says what went wrong where it went wrong ------------------------------------------------------
def test_broken_plugin_is_named_when_its_solver_is_asked_for(tmp_path, inst):
    plugs = tmp_path / "plugs"
    plugs.mkdir()
    (plugs / "nearest.py").write_text("from mecsplit.plugins import hookimpl\n\ndef solve(problem, options tracer):\n    pass\n")
    (plugs / "other.py").write_text("import os\nimport not_a_module_xyz\n")
    r = run_cli("--plugins-dir", str(plugs), "solve", "--instance", str(inst / "default.json"), "--solver", "nearest")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"{plugs / 'nearest.py'}: field 'line 3'" in r.stderr
    assert "plugin 'dir:nearest' failed to load: SyntaxError" in r.stderr
    r = run_cli("--plugins-dir", str(plugs), "solve", "--instance", str(inst / "default.json"), "--solver", "other")
    assert r.returncode == 2 and f"{plugs / 'other.py'}: field 'line 2'" in r.stderr
    assert "ModuleNotFoundError: No module named 'not_a_module_xyz'" in r.stderr
    # a name no plugin matches: the failed plugins are listed as the possible cause
    r = run_cli("--plugins-dir", str(plugs), "solve", "--instance", str(inst / "default.json"), "--solver", "zzz")
    assert r.returncode == 2 and "unknown solver 'zzz'" in r.stderr and "dir:nearest" in r.stderr and "dir:other" in r.stderr
    # the same in a suite: the skipped cell says why
    suite = tmp_path / "s.toml"
    suite.write_text('[defaults]\nsizes = [[2, 1]]\nsolvers = ["nearest"]\nreference = "none"\n')
    r = run_cli("--plugins-dir", str(plugs), "bench", "run", str(suite), "--db", str(tmp_path / "db.sqlite"),
                "--out", str(tmp_path / "rep"), "--no-progress")
    skipped = sqlite3.connect(tmp_path / "db.sqlite").execute("SELECT reason FROM skipped").fetchall()
    assert skipped and "nearest.py" in skipped[0][0] and "SyntaxError" in skipped[0][0]


def test_instance_records_its_variant(tmp_path, inst):
    """solve/check use the variant the instance file records; --variant must agree with it."""
    f = inst / "liu-zhao-2024.json"
    out = tmp_path / "r.json"
    r = run_cli("--plugins-dir", str(_reference_plugin(tmp_path)), "solve", "--instance", str(f), "--solver", "ref",
                "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "ref on liu-zhao-2024 3x2" in r.stdout
    assert json.loads(out.read_text())["provenance"]["variant"] == "liu-zhao-2024"
    r = run_cli("check", "--instance", str(f), str(out))
    assert r.returncode == 0 and "verdict: ok" in r.stdout, r.stdout + r.stderr
    for cmd in (["check", "--variant", "default", "--instance", str(f), str(out)],
                ["solve", "--variant", "default", "--instance", str(f), "--solver", "greedy"]):
        r = run_cli(*cmd)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
        assert f"{f}: field 'variant': instance is of variant 'liu-zhao-2024'" in r.stderr


def _reference_plugin(tmp_path):
    d = tmp_path / "refplug"
    d.mkdir(exist_ok=True)
    (d / "ref.py").write_text(TEST_PLUGIN)
    return d


WIDE_EQ = '[variant]\nextends = "default"\ndescription = "2 km cell"\n[generator]\nside_km = 2.0\n[blocks.edge_compute]\nbudget = "eq"\n'


def test_variant_by_path_from_anywhere(tmp_path):
    """The README's wide-eq example outside the clone: ./models/NAME.toml by name, any file by path;
    an instance of a variant that is not found by name says to pass its path."""
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    (work / "models").mkdir(parents=True)
    elsewhere.mkdir()
    (work / "models" / "wide-eq.toml").write_text(WIDE_EQ)
    r = run_cli("instance", "--variant", "wide-eq", "--users", "3", "--servers", "2", "-o", "i.json", cwd=work)
    assert r.returncode == 0, r.stderr
    plug = _reference_plugin(tmp_path)
    r = run_cli("--plugins-dir", str(plug), "solve", "--instance", str(work / "i.json"), "--solver", "ref", cwd=elsewhere)
    assert r.returncode == 2 and "the instance is of variant 'wide-eq', which is not found" in r.stderr
    assert "--variant PATH/TO/wide-eq.toml" in r.stderr
    r = run_cli("--plugins-dir", str(plug), "solve", "--variant", str(work / "models" / "wide-eq.toml"),
                "--instance", str(work / "i.json"), "--solver", "ref", cwd=elsewhere)
    assert r.returncode == 0 and "ref on wide-eq 3x2" in r.stdout, r.stderr


def test_suite_with_a_variant_by_path_runs_in_workers(tmp_path):
    """A suite naming its variant by a path relative to the suite file: the workers load that file
    (before, they reloaded the name and every cell failed)."""
    sdir, elsewhere = tmp_path / "suites", tmp_path / "elsewhere"
    (sdir / "mine").mkdir(parents=True)
    elsewhere.mkdir()
    (sdir / "mine" / "wide-eq.toml").write_text(WIDE_EQ)
    (sdir / "wide.toml").write_text('[defaults]\nvariants = ["mine/wide-eq.toml"]\nsizes = [[3, 2]]\nseeds = [1, 2]\n'
                                    'solvers = ["ref"]\nreference = "none"\ntime_limit_s = 20.0\n')
    db = tmp_path / "db.sqlite"
    r = run_cli("--plugins-dir", str(_reference_plugin(tmp_path)), "bench", "run", str(sdir / "wide.toml"), "--workers", "2",
                "--db", str(db), "--out", str(tmp_path / "rep"), "--no-progress", cwd=elsewhere)
    rows = sqlite3.connect(db).execute("SELECT variant, status, verdict FROM results").fetchall()
    assert rows == [("wide-eq", "feasible", "ok")] * 2, (rows, r.stdout[-500:], r.stderr[-500:])
    assert r.returncode == 0


# --- quiet -----------------------------------------------------------------------------------------
def _builtin_solvers():
    from mecsplit.plugins import get_manager

    mgr = get_manager(reload=True)
    return {n: s for n, s in mgr.solvers.items() if mgr.info[s.plugin]["source"].startswith("entry point")
            and not mgr.unavailable(s)}


def _instance_for(inst, name, spec):
    """An instance of the first shipped variant the solver takes (what its probe uses); 2x1 for brute force."""
    from mecsplit.probe import probe_variant

    variant = probe_variant(spec)
    size = ("2", "1") if name == "enumerate" else ("3", "2")
    f = inst / f"{variant}-{size[0]}x{size[1]}.json"
    if not f.exists():
        r = run_cli("instance", "--variant", variant, "--users", size[0], "--servers", size[1], "--seed", "1", "-o", str(f))
        assert r.returncode == 0, r.stderr
    return f


def _solve_output(inst, name, spec, verbose=False):
    limit = "20" if name == "mindtpy-oa" else "2"  # long enough for MindtPy to add cuts (HiGHS warns about them)
    return run_cli("solve", "--instance", str(_instance_for(inst, name, spec)), "--solver", name, "--time-limit", limit,
                   *(["--verbose"] if verbose else []), entry_points=True)


def test_no_solver_chatter_in_solve(inst):
    """No line from HiGHS, SCIP, Ipopt or Pyomo in `mecsplit solve` for any built-in solver."""
    solvers = _builtin_solvers()
    if not solvers:
        pytest.skip("no built-in solver plugin installed")
    for name, spec in solvers.items():  # the instance files first, one at a time
        _instance_for(inst, name, spec)
    with ThreadPoolExecutor(2) as ex:
        runs = dict(zip(solvers, ex.map(lambda n: _solve_output(inst, n, solvers[n]), solvers)))
    for name, r in runs.items():
        assert f"{name} on " in r.stdout, (name, r.stdout[-400:], r.stderr[-400:])
        assert not chatter(r), (name, chatter(r)[:5])
    # the pattern does catch the chatter when it is let through (HiGHS' banner and LP log)
    if "liu-zhao" in solvers:
        r = _solve_output(inst, "liu-zhao", solvers["liu-zhao"], verbose=True)
        assert chatter(r), r.stdout[-400:]


def test_no_solver_chatter_in_bench_run(tmp_path):
    solvers = _builtin_solvers()
    pick = [n for n in ("greedy", "liu-zhao", "exact", "mindtpy-oa", "scip") if n in solvers]
    if not pick:
        pytest.skip("no built-in solver plugin installed")
    suite = tmp_path / "quiet.toml"
    suite.write_text(f'[defaults]\nsizes = [[3, 2]]\nsolvers = {json.dumps(pick)}\nreference = "none"\ntime_limit_s = 10.0\n')
    r = run_cli("bench", "run", str(suite), "--workers", "2", "--db", str(tmp_path / "db.sqlite"),
                "--out", str(tmp_path / "rep"), entry_points=True)
    assert not chatter(r), chatter(r)[:5]
    n = sqlite3.connect(tmp_path / "db.sqlite").execute("SELECT COUNT(*) FROM results WHERE verdict='ok'").fetchone()[0]
    assert n == len(pick), r.stdout[-800:]


# --- human numbers ---------------------------------------------------------------------------------
def test_human_output_has_4_significant_digits_and_percent_gaps(tmp_path, inst):
    solvers = _builtin_solvers()
    if "exact" not in solvers:
        pytest.skip("exact plugin not installed")
    out = tmp_path / "r.json"
    r = run_cli("solve", "--instance", str(inst / "default.json"), "--solver", "exact", "-o", str(out), entry_points=True)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    line = r.stdout.splitlines()[0]
    assert f"objective {res['objective']:.4g}," in line and f"gap {100 * res['gap']:.4g} %" in line
    assert repr(res["objective"]) not in r.stdout  # the full-precision number only in the JSON
    assert len(repr(res["objective"])) > 8
    prov = res["provenance"]
    assert re.fullmatch(r"[0-9a-f]{40}", prov["git_commit"]) and isinstance(prov["git_dirty"], bool)


# --- benchmark harness messages --------------------------------------------------------------------
def test_ctrl_c_says_how_many_cells_are_stored_and_how_to_resume(tmp_path):
    plugs = tmp_path / "plugs"
    plugs.mkdir()
    (plugs / "ref.py").write_text(TEST_PLUGIN)
    suite = tmp_path / "slow.toml"
    suite.write_text('[defaults]\nsizes = [[2, 1]]\nseeds = [1, 2, 3, 4, 5, 6, 7, 8]\nsolvers = ["ref"]\n'
                     'reference = "none"\n')
    db = tmp_path / "db.sqlite"
    env = {**os.environ, "MECSPLIT_LOAD_PLUGINS": "", "PROBE_LOG": str(tmp_path / "calls.txt"), "PROBE_SLEEP": "1.5"}
    cmd = [sys.executable, "-m", "mecsplit", "--plugins-dir", str(plugs), "bench", "run", str(suite), "--workers", "1",
           "--db", str(db), "--out", str(tmp_path / "rep"), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,  # SIGINT
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # even if pytest ignores it
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if db.exists():
            try:
                if sqlite3.connect(db).execute("SELECT COUNT(*) FROM results").fetchone()[0] >= 1:
                    break
            except sqlite3.OperationalError:
                pass
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    stored = sqlite3.connect(db).execute("SELECT COUNT(*) FROM results").fetchone()[0]
    assert 1 <= stored < 8
    assert f"interrupted: {stored} cell(s) of suite slow stored" in err and "again to resume" in err, err
    r = subprocess.run(cmd, capture_output=True, text=True, env={**env, "PROBE_SLEEP": "0"}, timeout=300)
    assert r.returncode == 0 and f"({stored} already stored, {8 - stored} run" in r.stdout, r.stdout[-500:]


def test_missing_optional_extra_is_one_line_with_the_pip_command(tmp_path):
    db = tmp_path / "db.sqlite"
    db.write_bytes(b"")
    code = ("import sys; sys.modules['pyarrow'] = None; from mecsplit.cli import main; "
            f"sys.exit(main(['bench', 'export', '--parquet', 'x.parquet', '--db', {str(db)!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "field '--parquet': needs pyarrow>=15, which is not installed" in r.stderr
    assert "pip install 'mecsplit[parquet]'" in r.stderr


# --- installs like a package -----------------------------------------------------------------------
REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_non_editable_install_lists_and_runs_the_shipped_suites(tmp_path):
    """Build the core's wheel, install it (not editable) into a folder, and use it from a folder with
    no models/ or benchmarks/: variants and suites come from the package; a shipped suite runs."""
    wheels, site, work, src = tmp_path / "wheels", tmp_path / "site", tmp_path / "work", tmp_path / "src"
    work.mkdir()
    # what the core's build reads, copied (links kept as links) so that no stale build/ folder is reused
    for part in ("pyproject.toml", "README.md", "framework", "models", "benchmarks/suites"):
        (src / part).parent.mkdir(parents=True, exist_ok=True)
        if (REPO / part).is_dir():
            shutil.copytree(REPO / part, src / part, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(REPO / part, src / part)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    r = subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(src)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next(wheels.glob("mecsplit-*.whl"))
    r = subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    env = {**os.environ, "PYTHONPATH": str(site), "MECSPLIT_LOAD_PLUGINS": "baselines,exact"}

    def mecsplit(*args):
        return subprocess.run([sys.executable, "-m", "mecsplit", *args], capture_output=True, text=True, env=env,
                              cwd=work, timeout=600)

    where = subprocess.run([sys.executable, "-c", "import mecsplit; print(mecsplit.__file__)"], capture_output=True,
                           text=True, env=env, cwd=work).stdout
    assert where.startswith(str(site)), where  # the installed copy, not the checkout
    shipped = sorted(p.stem for p in (REPO / "benchmarks" / "suites").glob("*.toml"))
    r = mecsplit("bench", "list")
    assert r.returncode == 0 and shipped and all(f"\n{s} " in "\n" + r.stdout for s in shipped), r.stdout + r.stderr
    assert str(site) in r.stdout
    r = mecsplit("variants")
    assert all(v.stem in r.stdout for v in (REPO / "models").glob("*.toml")), r.stdout
    r = mecsplit("bench", "run", "default", "--workers", "2", "--no-progress")
    assert r.returncode == 0, r.stdout[-1500:] + r.stderr[-1500:]
    con = sqlite3.connect(work / "bench-results" / "results.sqlite")
    rows = con.execute("SELECT solver, verdict, result_json FROM results").fetchall()
    assert {s for s, _, _ in rows} == {"exact", "greedy", "random"} and all(v == "ok" for _, v, _ in rows)
    prov = json.loads(rows[0][2])["provenance"]
    assert prov["git_commit"] is None and prov["git_dirty"] is None  # not a checkout: no commit claimed
