"""The benchmark harness (mecsplit.bench): suite validation, cell hashes, the worker pool's hard
kill, crash and infeasible-point handling, the SQLite store, references, reports, parquet export,
profiles, the Dask executor. Fake solvers are loaded from a plugins folder written here, so these
tests need no solver plugin (``greedy`` is used only if installed)."""

from __future__ import annotations

import json
import math
import sqlite3
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mecsplit.errors import InputError

FAKES = textwrap.dedent('''
    import os, time
    from mecsplit.plugins import hookimpl
    from mecsplit.result import Outcome, Status

    def point(inst):
        """A simple feasible point: round-robin servers, half the layers on the device, full power,
        equal shares of every server's budgets."""
        import numpy as np
        N, M = inst.N, inst.M
        llm, uc, ec, up = (inst.block(k) for k in ("llm", "user_compute", "edge_compute", "uplink"))
        server = np.arange(N) % M
        cnt = np.bincount(server, minlength=M)
        return {"server": server.tolist(), "alpha": [float(llm["layers"] // 2)] * N,
                "f_GHz": [float(x) for x in uc["f_max_GHz"]], "fe_GHz": (ec["F_max_GHz"][server] / cnt[server]).tolist(),
                "p_W": [float(x) for x in up["p_max_W"]], "b_MHz": (up["b_max_MHz"][server] / cnt[server]).tolist()}

    def slow(problem, options, tracer):
        sol = point(problem.instance)
        obj = problem.evaluate(sol).objective
        tracer.iteration(); tracer.incumbent(obj * 1.5 + 1.0, sol)
        tracer.iteration(); tracer.incumbent(obj, sol)
        time.sleep(options["sleep_s"])
        return Outcome(Status.FEASIBLE, sol, obj, iterations=2)

    def hang(problem, options, tracer):   # ignores its time limit, like SCIP did here
        sol = point(problem.instance)
        obj = problem.evaluate(sol).objective
        tracer.incumbent(obj * 2.0, sol)
        tracer.incumbent(obj, sol)
        while True:
            time.sleep(0.05)

    def crash(problem, options, tracer):
        raise RuntimeError("fake crash")

    def die(problem, options, tracer):    # takes its worker process down
        os._exit(3)

    def infeasible(problem, options, tracer):
        sol = point(problem.instance)
        sol["p_W"] = [10.0 * x for x in sol["p_W"]]   # 10x the power limit
        return Outcome(Status.FEASIBLE, sol, problem.evaluate(sol).objective)

    def fake_exact(problem, options, tracer):   # "certifies" the simple point (a wrong certificate)
        sol = point(problem.instance)
        obj = problem.evaluate(sol).objective
        tracer.bound(obj * 0.5); tracer.incumbent(obj, sol); tracer.bound(obj)
        return Outcome(Status.OPTIMAL, sol, obj, bound=obj, iterations=1)

    def threads(problem, options, tracer):
        sol = point(problem.instance)
        return Outcome(Status.FEASIBLE, sol, problem.evaluate(sol).objective,
                       extra={"omp": os.environ.get("OMP_NUM_THREADS")})

    @hookimpl
    def register_solvers(registry):
        registry.add_solver(name="fake-slow", solve=slow, exact=False, options={"sleep_s": 0.0}, version="1")
        registry.add_solver(name="fake-hang", solve=hang, exact=False, version="1")
        registry.add_solver(name="fake-crash", solve=crash, exact=False, version="1")
        registry.add_solver(name="fake-die", solve=die, exact=False, version="1")
        registry.add_solver(name="fake-infeasible", solve=infeasible, exact=False, version="1")
        registry.add_solver(name="fake-exact", solve=fake_exact, exact=True, version="1")
        registry.add_solver(name="fake-threads", solve=threads, exact=False, version="1")
''')

SUITE = '''
name = "fakes"
[defaults]
variants = ["default"]
sizes = [[4, 2]]
seeds = [1, 2]
time_limit_s = 0.5
grace_s = 1.0
reference = "exact"
reference_solver = "fake-exact"

[[group]]
name = "fakes"
solvers = ["fake-slow", "fake-hang", "fake-crash", "fake-die", "fake-infeasible", "not-there",
           {name = "fake-slow", label = "fake-slow-sleepy", options = {sleep_s = 0.05}}]

[[group]]
name = "sweep"
seeds = [1, 2, 3]
reference = "best-known"
sweep = {energy = [1, 4], stability = [1, 4]}
solvers = ["fake-slow", "fake-infeasible"]
figure = {kind = "weights", title = "energy sweep"}
'''


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    d = tmp_path_factory.mktemp("fakeplugins")
    (d / "bench_fakes.py").write_text(FAKES)
    mp = pytest.MonkeyPatch()
    mp.setenv("MECSPLIT_PLUGINS_DIR", str(d))
    from mecsplit.plugins import get_manager

    get_manager(reload=True)
    yield d
    mp.undo()
    get_manager(reload=True)


def _point_objective(variant_name, n, m, seed, overrides=None):
    """Independent objective of the fakes' point: rebuilt here, evaluated by the evaluator."""
    from mecsplit.evaluate import evaluate
    from mecsplit.instance import generate
    from mecsplit.variant import load_variant

    v = load_variant(variant_name, overrides=overrides)
    inst = generate(v, n, m, seed)
    llm, uc, ec, up = (inst.block(k) for k in ("llm", "user_compute", "edge_compute", "uplink"))
    server = np.arange(n) % m
    cnt = np.bincount(server, minlength=m)
    sol = {"server": server.tolist(), "alpha": [float(llm["layers"] // 2)] * n, "f_GHz": list(uc["f_max_GHz"]),
           "fe_GHz": (ec["F_max_GHz"][server] / cnt[server]).tolist(), "p_W": list(up["p_max_W"]),
           "b_MHz": (up["b_max_MHz"][server] / cnt[server]).tolist()}
    ev = evaluate(v, inst, sol)
    assert ev.feasible
    return ev.objective


@pytest.fixture(scope="module")
def ran(fakes, tmp_path_factory):
    """Run the fake suite once through the CLI entry point (in-process, 2 workers)."""
    from mecsplit.cli import main

    d = tmp_path_factory.mktemp("bench")
    (d / "fakes.toml").write_text(SUITE)
    db, out = d / "r.sqlite", d / "out"
    code = main(["bench", "run", str(d / "fakes.toml"), "--db", str(db), "--out", str(out), "--workers", "2", "--no-progress"])
    return {"dir": d, "db": db, "out": out, "code": code}


def _rows(db, suite="fakes"):
    from mecsplit.bench.report import attach_references
    from mecsplit.bench.store import Store

    s = Store(db)
    rows = s.rows(suite)
    attach_references(s, rows, s.groups(suite))
    s.close()
    return rows


# ------------------------------------------------------------------------------------------- suites
def _parse(text, tmp_path):
    from mecsplit.bench.suite import load_suite

    p = tmp_path / "s.toml"
    p.write_text(text)
    return load_suite(p)


@pytest.mark.parametrize("text,field", [
    ("[defaults]\nsizes = [[4]]", "sizes"),
    ("[defaults]\nreference = 'oracle'", "reference"),
    ("[defaults]\nsweep = {power = [1]}", "sweep.power"),
    ("[defaults]\ntime_limit_s = -1", "time_limit_s"),
    ("[defaults]\nwhatever = 1", "whatever"),
    ("[[group]]\nsolvers = ['a', 'a']", "solvers"),
    ("[[group]]\nfigure = {kind = 'weights'}", "figure.kind"),
    ("[defaults]\nseeds = [1.5]", "seeds"),
    ("name = 'x'\n[[group]\n", "<toml>"),
])
def test_bad_suite_is_one_clear_input_error(tmp_path, text, field):
    with pytest.raises(InputError) as e:
        _parse(text, tmp_path)
    assert field in e.value.field and e.value.allowed


def test_suite_defaults_seeds_count_and_solver_tables(tmp_path):
    s = _parse("[defaults]\nseeds = {count = 3}\n[[group]]\nname = 'g'\n"
               "solvers = ['greedy', {name = 'random', label = 'rnd'}]", tmp_path)
    g = s.groups[0]
    assert s.name == "s" and g.seeds == [1, 2, 3] and [e.label for e in g.solvers] == ["greedy", "rnd"]


def test_shipped_suites_load_and_expand():
    from mecsplit.bench.suite import available_suites, load_suite

    names = set(available_suites())
    assert {"default", "seed-002-figures", "exact-gap", "scaling"} <= names
    fig = load_suite("seed-002-figures")
    g = {x.name: x for x in fig.groups}["fig3-weights"]
    n = sum(len(v) for v in g.sweep.values()) * len(g.seeds) * len(g.solvers) * len(g.sizes)
    assert n == 3 * 10 * 10 * 4


def test_cli_bad_suite_exit_2(tmp_path):
    from mecsplit.cli import main

    assert main(["bench", "run", "no-such-suite", "--db", str(tmp_path / "x.sqlite")]) == 2
    assert main(["bench", "report", "--db", str(tmp_path / "missing.sqlite")]) == 2


# -------------------------------------------------------------------------------------------- cells
def test_cell_hashes(fakes, tmp_path):
    from mecsplit.bench.cells import expand

    base = "[defaults]\nsizes = [[4, 2]]\nseeds = [1]\nsolvers = ['fake-slow', 'not-there']\n"
    a = expand(_parse(base, tmp_path))
    b = expand(_parse(base, tmp_path))
    assert [c.cell_hash for c in a] == [c.cell_hash for c in b]
    assert a[1].skip_reason and "not installed" in a[1].skip_reason
    t = expand(_parse(base + "time_limit_s = 3.0\n", tmp_path))
    o = expand(_parse(base.replace("'fake-slow'", "{name = 'fake-slow', options = {sleep_s = 0.1}}"), tmp_path))
    assert t[0].cell_hash != a[0].cell_hash and o[0].cell_hash != a[0].cell_hash
    w = expand(_parse(base + "sweep = {energy = [1, 2]}\n", tmp_path))
    assert w[0].instance_hash == w[2].instance_hash == a[0].instance_hash  # same instance ...
    assert w[0].sweep_value == 1 and w[2].sweep_value == 2
    assert w[0].ref_key != w[2].ref_key                                     # ... different optimisation problem
    with pytest.raises(InputError):
        expand(_parse(base.replace("'fake-slow'", "{name = 'fake-slow', options = {nope = 1}}"), tmp_path))
    star = expand(_parse("[defaults]\nsizes = [[4, 2]]\nseeds = [1]\nsolvers = '*'\nexclude = ['fake-die']\n", tmp_path))
    names = {c.solver for c in star}
    assert {"fake-slow", "fake-exact"} <= names and "fake-die" not in names


# ------------------------------------------------------------------------------- running the fakes
def test_run_statuses_kill_crash_and_flags(ran):
    assert ran["code"] == 1  # some cells failed or were flagged
    rows = {(r["grp"], r["label"], r["seed"]): r for r in _rows(ran["db"])}
    for seed in (1, 2):
        exp = _point_objective("default", 4, 2, seed)
        hang = rows[("fakes", "fake-hang", seed)]
        assert hang["status"] == "time_limit" and hang["killed"] == 1
        assert hang["objective"] == pytest.approx(exp, rel=1e-12)         # the last streamed incumbent
        assert [p["incumbent"] for p in hang["result"]["trace"]] == pytest.approx([2 * exp, exp], rel=1e-12)
        assert 1.5 <= hang["wall_time_s"] < 6.0                          # killed at 0.5 s + 1.0 s grace
        assert hang["verdict"] == "unverified" and "killed_at_hard_limit" in hang["flags"]
        crash = rows[("fakes", "fake-crash", seed)]
        assert crash["status"] == "error" and "fake crash" in crash["result"]["message"]
        die = rows[("fakes", "fake-die", seed)]
        assert die["status"] == "error" and "worker_died" in die["flags"] and "exit code 3" in die["result"]["message"]
        bad = rows[("fakes", "fake-infeasible", seed)]
        assert bad["verdict"] == "flagged" and "infeasible_solution" in bad["flags"]
        ok = rows[("fakes", "fake-slow", seed)]
        assert ok["status"] == "feasible" and ok["verdict"] == "ok" and ok["objective"] == pytest.approx(exp, rel=1e-12)
        assert ok["reference_kind"] == "certified" and ok["gap_to_reference"] == pytest.approx(0.0, abs=1e-12)
        assert [p["iteration"] for p in ok["result"]["trace"]][:2] == [1, 2]
        assert rows[("fakes", "fake-slow-sleepy", seed)]["options"] == json.dumps({"sleep_s": 0.05})


def test_certified_reference_and_skips_stored(ran):
    con = sqlite3.connect(ran["db"])
    refs = con.execute("SELECT value, solver, provenance FROM refs").fetchall()
    assert len(refs) == 2 and all(r[1] == "fake-exact" for r in refs)
    assert sorted(r[0] for r in refs) == pytest.approx(sorted(_point_objective("default", 4, 2, s) for s in (1, 2)))
    assert json.loads(refs[0][2])["exact"] is True
    sk = con.execute("SELECT solver, reason FROM skipped WHERE suite='fakes'").fetchall()
    assert len(sk) == 2 and all(s[0] == "not-there" and "not installed" in s[1] for s in sk)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_best_known_reference_and_sweep(ran):
    rows = [r for r in _rows(ran["db"]) if r["grp"] == "sweep"]
    assert len(rows) == 4 * 3 * 2  # (2 energy + 2 stability weights) x 3 seeds x 2 solvers
    for r in rows:
        if r["label"] == "fake-slow":
            ov = {"objective": {"weights": {r["sweep_param"]: r["sweep_value"]}}}
            assert r["objective"] == pytest.approx(_point_objective("default", 4, 2, r["seed"], ov), rel=1e-12)
            assert r["reference_kind"] == "best-known" and r["gap_to_reference"] == 0.0
        else:
            assert r["gap_to_reference"] is None  # a flagged point is never a reference nor compared


def test_rerun_skips_finished_cells(ran):
    from mecsplit.bench.runner import run_suite
    from mecsplit.bench.store import Store
    from mecsplit.bench.suite import load_suite

    s = Store(ran["db"])
    n = s.count()
    summary = run_suite(load_suite(ran["dir"] / "fakes.toml"), s, workers=2, progress=False)
    assert summary["ran"] == 0 and summary["done_before"] == summary["cells"] == n and s.count() == n
    s.close()


def test_report_files_and_tables(ran):
    md = (ran["out"] / "fakes" / "report.md").read_text()
    assert "## Group fakes" in md and "certified" in md and "beats" not in md.split("## Group sweep")[1]
    assert "| fake-hang | 4x2 | 2 |" in md and "time_limit*:2" in md
    assert "not-there (2 cell(s)): solver 'not-there' is not installed" in md
    html = (ran["out"] / "fakes" / "report.html").read_text()
    assert "<table class='sortable'>" in html and "profiles_fakes.png" in html
    for f in ("profiles_fakes.png", "convergence_fakes.png", "gaps.png", "figure_sweep.png"):
        p = ran["out"] / "fakes" / f
        assert p.stat().st_size > 5000 and p.read_bytes()[:4] == b"\x89PNG"


def test_parquet_export(ran, tmp_path):
    import pyarrow.parquet as pq

    from mecsplit.cli import main

    f = tmp_path / "x.parquet"
    assert main(["bench", "export", "--parquet", str(f), "--db", str(ran["db"])]) == 0
    t = pq.read_table(f).to_pylist()
    need = {"solver_name", "data_name", "objective_value", "time", "stop_val", "bound", "gap", "status", "verdict",
            "seed", "reference", "gap_to_reference", "provenance"}
    assert need <= set(t[0])
    assert len(t) == len(_rows(ran["db"]))
    hang = [r for r in t if r["solver_name"] == "fake-hang"]
    assert len(hang) == 2 and all(r["killed"] and r["status"] == "time_limit" for r in hang)


def test_timing_mode_one_worker_one_thread(fakes, tmp_path):
    from mecsplit.bench.runner import run_suite
    from mecsplit.bench.store import Store

    suite = _parse("[defaults]\nsizes = [[3, 2]]\nseeds = [1, 2]\nsolvers = ['fake-threads']\n", tmp_path)
    s = Store(tmp_path / "t.sqlite")
    summary = run_suite(suite, s, workers=4, timing=True, progress=False)
    assert summary["workers"] == 1 and summary["ran"] == 2
    rows = s.rows("s")
    assert {r["result"]["extra"]["omp"] for r in rows} == {"1"}
    assert len({r["result"]["extra"]["worker_pid"] for r in rows}) == 1  # one persistent worker
    s.close()


def test_dask_executor_local_cluster(fakes, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    from mecsplit.bench.runner import run_suite
    from mecsplit.bench.store import Store

    suite = _parse("[defaults]\nsizes = [[3, 2]]\nseeds = [1]\ntime_limit_s = 0.3\ngrace_s = 0.5\n"
                   "solvers = ['fake-slow', 'fake-hang']\n", tmp_path)
    s = Store(tmp_path / "d.sqlite")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cl, \
            distributed.Client(cl) as client:
        summary = run_suite(suite, s, executor="dask", scheduler=client, progress=False)
    rows = {r["label"]: r for r in s.rows("s")}
    assert summary["ran"] == 2 and summary["killed"] == 1
    assert rows["fake-hang"]["killed"] == 1 and rows["fake-hang"]["objective"] == pytest.approx(_point_objective("default", 3, 2, 1))
    assert rows["fake-slow"]["status"] == "feasible" and rows["fake-slow"]["verdict"] == "ok"
    s.close()


def test_greedy_if_installed(tmp_path):
    """The real baseline plugin through the harness, checked against a direct solve."""
    from mecsplit.plugins import get_manager

    if "greedy" not in get_manager().solvers:
        pytest.skip("plugins/mecsplit-baselines not installed")
    from mecsplit.bench.runner import run_suite
    from mecsplit.bench.store import Store
    from mecsplit.instance import generate
    from mecsplit.solve import solve
    from mecsplit.variant import load_variant

    suite = _parse("[defaults]\nsizes = [[6, 2]]\nseeds = [4]\nsolvers = ['greedy']\n", tmp_path)
    s = Store(tmp_path / "g.sqlite")
    run_suite(suite, s, workers=1, progress=False)
    (r,) = s.rows("s")
    v = load_variant("default")
    direct = solve(v, generate(v, 6, 2, 4), "greedy", seed=4)
    assert r["objective"] == pytest.approx(direct.objective, rel=1e-12) and r["verdict"] == "ok"
    s.close()


# ----------------------------------------------------------------------------------------- profiles
def test_performance_profile_hand_example():
    from mecsplit.bench.profiles import performance_profile, shifted_geometric_mean

    costs = {"p1": {"A": 1.0, "B": 2.0}, "p2": {"A": 4.0, "B": 1.0}, "p3": {"A": 3.0}}  # B failed p3
    taus, rho = performance_profile(costs, ["A", "B"])
    at = lambda s, t: rho[s][np.searchsorted(taus, t, side="right") - 1]
    assert at("A", 1.0) == pytest.approx(2 / 3) and at("B", 1.0) == pytest.approx(1 / 3)
    assert at("B", 2.0) == pytest.approx(2 / 3) and at("A", 3.99) == pytest.approx(2 / 3) and at("A", 4.0) == 1.0
    assert rho["B"][-1] == pytest.approx(2 / 3)  # never solves p3
    assert shifted_geometric_mean([1.0, 3.0], 1.0) == pytest.approx(math.sqrt(2 * 4) - 1)
    assert shifted_geometric_mean([0.0, 0.0, 0.0], 10.0) == pytest.approx(0.0, abs=1e-12)


def test_reference_solver_missing_falls_back_to_best_known(fakes, tmp_path):
    from mecsplit.bench.report import build_report
    from mecsplit.bench.runner import run_suite
    from mecsplit.bench.store import Store

    suite = _parse("[defaults]\nsizes = [[3, 2]]\nseeds = [1]\nreference = 'exact'\nreference_solver = 'no-such-exact'\n"
                   "solvers = ['fake-slow', 'fake-infeasible']\n", tmp_path)
    s = Store(tmp_path / "f.sqlite")
    run_suite(suite, s, workers=1, progress=False)
    md = build_report(s, "s", tmp_path / "out").read_text()
    assert "'no-such-exact' is not available here" in md and "best-known" in md
    s.close()
    rows = {r["label"]: r for r in _rows(tmp_path / "f.sqlite", "s")}
    assert rows["fake-slow"]["reference_kind"] == "best-known"
    assert rows["fake-slow"]["reference"] == pytest.approx(_point_objective("default", 3, 2, 1))


def test_exit_status_counts_a_kill_as_a_time_out_not_a_failure(fakes, tmp_path):
    from mecsplit.bench.report import exit_status
    from mecsplit.bench.runner import run_suite
    from mecsplit.bench.store import Store

    s = Store(tmp_path / "k.sqlite")
    hang = _parse("[defaults]\nsizes = [[3, 2]]\nseeds = [1]\ntime_limit_s = 0.3\ngrace_s = 0.5\n"
                  "solvers = ['fake-slow', 'fake-hang']\n", tmp_path)
    assert run_suite(hang, s, progress=False)["killed"] == 1
    assert exit_status(s, "s") == 0
    # a verifier flag on any cell still fails the run
    with s.db:
        s.db.execute("UPDATE results SET verdict = 'flagged', flags = ? WHERE solver = 'fake-slow'",
                     (json.dumps(["objective_disagrees"]),))
    assert exit_status(s, "s") == 1
    s.close()
