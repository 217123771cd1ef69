"""Issue 21, one regression test per example: bad input is one line and exit 2, a wrong claim is
exit 1, an internal error is exit 3 with a saved traceback, no file is read that was not asked for,
and two ``bench run`` processes on one store compute each cell once.

Everything goes through the real entry point ``mecsplit.cli.main`` (in-process, for speed) or a
subprocess where processes are the point."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mecsplit.cli import main

SECRET = "TOPSECRET-4711"


def cli(*argv: str, cwd: Path | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as e:
                code = e.code
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue()


def refused(*argv: str, field: str = "", cwd: Path | None = None) -> str:
    """Exit 2 with exactly one line on stderr naming ``field``; returns that line."""
    code, out, err = cli(*argv, cwd=cwd)
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert field in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("hard")
    assert cli("instance", "--variant", "default", "--users", "4", "--servers", "2", "--seed", "1", "-o", str(d / "inst.json"))[0] == 0
    assert cli("solve", "--instance", str(d / "inst.json"), "--solver", "greedy", "-o", str(d / "greedy.json"))[0] == 0
    (d / "notvariant.toml").write_text(f'secret_key = "{SECRET}"\n')
    return d


def variant_file(d: Path, body: str, name: str = "v.toml") -> str:
    (d / name).write_text('[variant]\nextends = "default"\n' + body)
    return str(d / name)


# ------------------------------------------------------------------------------------ variant TOML
@pytest.mark.parametrize("body, field", [
    ("[generator]\nname = [1]\n", "generator.name"),                      # a list where a string is expected
    ("[blocks.llm]\ntokens = {dist = [1]}\n", "blocks.llm.tokens.dist"),  # ... inside a distribution
    ("[sizes]\nuser = 5\n", "sizes.user"),                                 # unknown key in [sizes]
    ("[sizes]\nusers = 10000000\n", "sizes.users"),                        # above the documented maximum
    ("[blocks.stability]\nenabled = false\nlipschitz = -1.0\n", "blocks.stability.lipschitz"),  # off, still checked
])
def test_variant_value_errors(work, body, field):
    refused("variants", "--show", variant_file(work, body), field=field)


def test_top_level_objective_5_and_unknown_variant_key(work):
    (work / "o.toml").write_text('objective = 5\n[variant]\nextends = "default"\n')
    refused("variants", "--show", str(work / "o.toml"), field="'objective'")
    (work / "u.toml").write_text('[variant]\nextends = "default"\nuser = 5\n')
    refused("variants", "--show", str(work / "u.toml"), field="variant.user")


def test_every_block_disabled_is_refused(work):
    from mecsplit.plugins import get_manager

    body = "".join(f"[blocks.{b}]\nenabled = false\n" for b in get_manager().blocks)
    refused("variants", "--show", variant_file(work, body), field="every block is disabled")


def test_deep_nesting_and_long_extends_chain(work):
    refused("variants", "--show", variant_file(work, "[generator]\nside_km = " + "[" * 500 + "]" * 500 + "\n"),
            field="nested")
    chain = work / "chain"
    chain.mkdir()
    (chain / "c0.toml").write_text('[variant]\nextends = "default"\n')
    for i in range(1, 1200):
        (chain / f"c{i}.toml").write_text(f'[variant]\nextends = "c{i - 1}"\n')
    code, out, err = cli("variants", "--show", str(chain / "c1199.toml"))
    assert code == 0, err
    assert "default -> c0 -> c1 -> c2" in out


@pytest.mark.parametrize("target", ["/etc/shadow", "/etc/passwd", "../default", "notvariant", "a/b"])
def test_extends_reads_only_variant_files(work, target):
    line = refused("variants", "--show", _write(work, f'[variant]\nextends = "{target}"\n'), field="variant.extends")
    assert SECRET not in line and "secret_key" not in line and "root:" not in line


def _write(d: Path, text: str, name: str = "x.toml") -> str:
    (d / name).write_text(text)
    return str(d / name)


def test_a_non_variant_toml_file_is_not_echoed(work):
    line = refused("variants", "--show", str(work / "notvariant.toml"), field="not a variant file")
    assert SECRET not in line and "secret_key" not in line


def test_non_utf8_files(work):
    (work / "bad.toml").write_bytes(b'[variant]\ndescription = "\xff"\nextends = "default"\n')
    refused("variants", "--show", str(work / "bad.toml"), field="not UTF-8")
    (work / "bad.json").write_bytes(b'{"schema": "\xff"}')
    refused("solve", "--instance", str(work / "bad.json"), "--solver", "greedy", field="not UTF-8")


# ----------------------------------------------------------------------------------- instance JSON
def _instance(work) -> dict:
    return json.loads((work / "inst.json").read_text())


def _solve_on(work, d: dict, text: str | None = None) -> str:
    p = work / "mut.json"
    p.write_text(text if text is not None else json.dumps(d))
    return str(p)


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["blocks"]["llm"]["layers"].update(value=33), "blocks.llm.layers.value"),        # a scalar changed
    (lambda d: d["blocks"]["llm"]["layers"].update(value=float("nan")), "blocks.llm.layers.value"),
    (lambda d: d["generator"]["params"].update(side_km=2.0), "generator.params.side_km"),
    (lambda d: d["normalisation"].update(delay_ref_s=d["normalisation"]["delay_ref_s"] * 1.001), "normalisation.delay_ref_s"),
    (lambda d: d["blocks"]["uplink"]["p_max_W"]["values"].__setitem__(0, True), "blocks.uplink.p_max_W.values"),
    (lambda d: d["blocks"]["uplink"]["p_max_W"]["values"].__setitem__(0, "1.5"), "blocks.uplink.p_max_W.values"),
    (lambda d: d["topology"]["gain"]["values"][0].__setitem__(1, False), "topology.gain.values"),
    (lambda d: d.update(comment=float("nan")), "comment"),                                       # NaN in an unknown field
    (lambda d: d["generator"].update(extra=1), "generator.extra"),
    (lambda d: d.update(n_users=10**9), "n_users"),
])
def test_instance_fields_are_checked_not_ignored(work, mutate, field):
    d = _instance(work)
    mutate(d)
    refused("solve", "--instance", _solve_on(work, d), "--solver", "greedy", field=field)


def test_a_variant_whose_reference_point_is_infinite_gives_no_instance(work):
    # found by the fuzz campaign: noise 0 dBm/Hz makes every rate underflow to 0, the reference energy
    # infinite, and the instance unwritable as JSON (ValueError in json.dumps before)
    v = variant_file(work, "[blocks.uplink]\nnoise_dBm_per_Hz = 0\n")
    refused("instance", "--variant", v, "--users", "3", "--servers", "2", "-o", str(work / "i.json"), field="normalisation")


def test_huge_instance_is_refused_before_allocating(work):
    t = time.perf_counter()
    refused("instance", "--users", "10000000", "--servers", "2", field="--users")
    refused("instance", "--users", "100000", "--servers", "100", "-o", str(work / "big.json"), field="users x servers")
    assert time.perf_counter() - t < 30  # generous: refused, not attempted (6.6 GB before)


# ----------------------------------------------------------------------------------- CLI arguments
@pytest.mark.parametrize("args, field", [
    (["solve", "--instance", "{inst}", "--solver", "greedy", "--seed", "-1"], "--seed"),
    (["solve", "--instance", "{inst}", "--solver", "greedy", "-o", "{dir}/nonexistent/x.json"], "-o/--output"),
    (["solve", "--instance", "{dir}", "--solver", "greedy"], "--instance"),
    (["instance", "--users", "18446744073709551616"], "--users"),
    (["solve", "--instance", "{inst}", "--solver", "greedy", "--time-limit", "nan"], "--time-limit"),
    (["solve", "--instance", "{inst}", "--solver", "greedy", "--time-limit", "-1"], "--time-limit"),
    (["solve", "--instance", "{inst}", "--solver", "greedy", "--time-limit", "0"], "--time-limit"),
    (["solve", "--instance", "{inst}", "--solver", "liu-zhao", "--option", "tol=NaN"], "--option"),
    (["bench", "report", "--db", "{inst}"], "--db"),
    (["bench", "report", "--db", "{dir}/x.sqlite", "--out", "{inst}"], "--out"),
])
def test_bad_arguments(work, args, field):
    argv = [a.format(inst=work / "inst.json", dir=work) for a in args]
    refused(*argv, field=field)


def test_not_a_database_is_left_untouched(work):
    p = work / "x.sqlite"
    p.write_bytes(b"x")
    refused("bench", "report", "--db", str(p), field="--db")
    assert p.read_bytes() == b"x"  # SQLite used to turn it into an empty database
    c = sqlite3.connect(work / "foreign.sqlite")
    c.execute("CREATE TABLE t(x)")
    c.commit()
    c.close()
    refused("bench", "report", "--db", str(work / "foreign.sqlite"), field="something else")


def test_internal_error_exits_3_with_one_line_and_a_saved_traceback(monkeypatch, work):
    import mecsplit.cli as cli_mod

    def boom(args):
        raise TypeError("unhashable type: 'list'")

    monkeypatch.setattr(cli_mod, "cmd_blocks", boom)
    code, out, err = cli("blocks")
    assert code == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "internal error" in lines[0] and "TypeError" in lines[0]
    path = Path(lines[0].rsplit("traceback saved to ", 1)[1])
    try:
        assert "Traceback (most recent call last)" in path.read_text() and "boom" in path.read_text()
    finally:
        path.unlink()


# ------------------------------------------------------------------------------------- suite TOML
@pytest.mark.parametrize("text, field", [
    ("[defaults]\ntime_limit_s = inf\n", "time_limit_s"),
    ("[defaults]\nseeds = {count = 1000000000}\n", "seeds.count"),
    ("name = '..'\n", "name"),
    ("[[group]]\nname = '../up'\n", "group[0].name"),
    ("[defaults]\nvariants = ['../../etc/passwd']\n", "variants"),
    ("[defaults]\nvariants = ['notvariant.toml']\n", "variants"),
    ("[defaults]\noverrides = {objective = {kind = 'x'}}\n", "variants[0]"),
    ("[defaults]\nsizes = [[100000, 100]]\n", "sizes"),
    ("description = [1]\n", "description"),
])
def test_bad_suites(work, text, field):
    p = work / "s.toml"
    p.write_text("[defaults]\nsolvers = ['greedy']\n" + text if not text.startswith("[defaults]") else
                 text.replace("[defaults]\n", "[defaults]\nsolvers = ['greedy']\n"))
    line = refused("bench", "run", str(p), "--db", str(work / "s.sqlite"), "--out", str(work / "rep"), "--no-progress",
                   field=field, cwd=work)
    assert SECRET not in line and "root:" not in line
    assert not (work / "rep").exists() and not (work.parent / "report.md").exists()


def test_report_folder_names_never_climb():
    from mecsplit.bench.report import _slug

    assert all(_slug(s) not in ("", ".", "..") and "/" not in _slug(s) for s in ["..", ".", "../..", "a/../b", "/"])


# ----------------------------------------------------------------------------------- check claims
def _check(work, res: dict, variant: str = "default", inst: str = "inst.json", text: str | None = None):
    p = work / "claim.json"
    p.write_text(text if text is not None else json.dumps(res))
    return cli("check", "--variant", variant, "--instance", str(work / inst), str(p))


def test_check_rejects_optimal_with_nan_or_string_bound(work):
    res = json.loads((work / "greedy.json").read_text())
    res.update(status="optimal", bound=float("nan"))
    code, _, err = _check(work, res, text=json.dumps(res))  # json.dumps writes the NaN token
    assert code == 2 and "bound" in err
    res["bound"] = "abc"
    code, _, err = _check(work, res)
    assert code == 2 and "bound" in err and len(err.strip().splitlines()) == 1


def test_check_rejects_a_heuristic_claiming_optimal(work):
    res = json.loads((work / "greedy.json").read_text())
    res["status"] = "optimal"
    code, out, _ = _check(work, res)
    assert code == 1 and "heuristic_claims_optimal" in out
    res["bound"] = res["objective"]  # even with a bound that matches
    code, out, _ = _check(work, res)
    assert code == 1 and "heuristic_claims_optimal" in out and "heuristic_claims_bound" in out
    res["provenance"]["solver"] = "some-other-tool"  # an unknown tool's optimum cannot be verified either
    code, out, _ = _check(work, res)
    assert code == 1 and "optimal_claim_unverifiable" in out


def test_check_tolerance_is_relative_for_a_tiny_objective(work):
    (work / "tiny.toml").write_text('[variant]\nextends = "default"\n[objective]\n'
                                    'weights = {delay = 1e-7, energy = 1e-7, stability = 1e-7}\n')
    assert cli("instance", "--variant", str(work / "tiny.toml"), "--users", "4", "--servers", "2", "--seed", "1",
               "-o", str(work / "tinst.json"))[0] == 0
    assert cli("solve", "--variant", str(work / "tiny.toml"), "--instance", str(work / "tinst.json"), "--solver", "greedy",
               "-o", str(work / "tres.json"))[0] == 0
    res = json.loads((work / "tres.json").read_text())
    obj = res["objective"]
    assert 1e-8 < obj < 1e-7  # the 6.3e-8
    assert _check(work, res, str(work / "tiny.toml"), "tinst.json")[0] == 0
    for wrong in (0.0, -obj, obj / 2, obj * (1 + 1e-5)):
        res["objective"] = wrong
        code, out, _ = _check(work, res, str(work / "tiny.toml"), "tinst.json")
        assert code == 1 and "objective_mismatch" in out, wrong
    res["objective"] = obj * (1 + 1e-9)  # within the documented 1e-6 relative
    assert _check(work, res, str(work / "tiny.toml"), "tinst.json")[0] == 0


def test_check_rederives_provenance_gap_metrics_and_solution_keys(work):
    base = json.loads((work / "greedy.json").read_text())
    for path, value, flag in [(("provenance", "instance_hash"), "0" * 16, "instance_hash_mismatch"),
                              (("provenance", "size"), [5, 2], "size_mismatch"),
                              (("provenance", "exact"), True, "provenance_exact_mismatch"),
                              (("metrics", "total_energy_J"), 1.0, "metrics_mismatch"),
                              (("gap",), 0.5, "gap_mismatch")]:
        res = json.loads(json.dumps(base))
        tgt = res
        for k in path[:-1]:
            tgt = tgt[k]
        tgt[path[-1]] = value
        code, out, _ = _check(work, res)
        assert code == 1 and flag in out, (path, out[-300:])
    res = json.loads(json.dumps(base))
    res["solution"]["rho"] = [1.0] * 4  # a variable of another variant
    code, _, err = _check(work, res)
    assert code == 2 and "solution.rho" in err
    for k, bad in (("server", True), ("alpha", "16")):  # numpy would read true as 1 and "16" as 16.0
        res = json.loads(json.dumps(base))
        res["solution"][k][0] = bad if k == "alpha" else bool(res["solution"]["server"][0] == 1)
        code, _, err = _check(work, res)
        assert code == 2 and f"solution.{k}" in err, err


def test_optimal_claims_need_a_closed_gap():
    from mecsplit.instance import generate
    from mecsplit.result import Status
    from mecsplit.solve import verify
    from mecsplit.variant import load_variant

    v = load_variant("default")
    inst = generate(v, 3, 2, 0)
    sol = {k: x.tolist() for k, x in inst.reference_solution().items()}
    from mecsplit.evaluate import evaluate

    obj = evaluate(v, inst, sol).objective
    ok, _ = verify(v, inst, None, Status.OPTIMAL, sol, obj, obj * (1 - 1e-6))
    assert ok["verdict"] == "ok"
    for bound, flag in [(None, "optimal_without_bound"), (obj * 0.9, "optimal_gap_open"), (float("nan"), "bound_not_a_number")]:
        ver, _ = verify(v, inst, None, Status.OPTIMAL, sol, obj, bound)
        assert flag in ver["flags"], (bound, ver["flags"])


# -------------------------------------------------------------------------------- the store's leases
def test_lease_busy_done_and_expiry(tmp_path):
    from mecsplit.bench import store as store_mod

    a, b = store_mod.Store(tmp_path / "s.sqlite"), store_mod.Store(tmp_path / "s.sqlite")
    assert a.claim("h1") == "run" and a.claim("h1") == "run"  # idempotent for its owner
    assert b.claim("h1") == "busy"
    # a dead owner on this host: its lease expires at once
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    a.db.execute("UPDATE claims SET pid=? WHERE cell_hash='h1'", (dead.pid,))
    a.db.commit()
    assert b.claim("h1") == "run" and a.claim("h1") == "busy"
    # an owner elsewhere whose heartbeat stopped: expires after LEASE_S
    b.db.execute("UPDATE claims SET host='elsewhere', heartbeat=? WHERE cell_hash='h1'", (time.time() - store_mod.LEASE_S - 1,))
    b.db.commit()
    assert a.claim("h1") == "run"
    b.db.execute("UPDATE claims SET owner='other', host='elsewhere', heartbeat=? WHERE cell_hash='h1'", (time.time(),))
    b.db.commit()
    assert a.claim("h1") == "busy"  # alive elsewhere: not taken
    a.put({"cell_hash": "h1", "variant": "v", "overrides": {}, "n_users": 1, "n_servers": 1, "seed": 0,
           "instance_hash": "i", "ref_key": "r", "solver": "s", "options": {}, "time_limit_s": 1.0},
          json.dumps({"status": "feasible", "objective": 1.0}))
    assert b.claim("h1") == "done"
    a.release_claims(), b.release_claims()
    a.close(), b.close()


SLOW = textwrap.dedent('''
    import os, time
    from mecsplit.plugins import hookimpl
    from mecsplit.result import Outcome, Status

    def slow(problem, options, tracer):
        sol = {k: v.tolist() for k, v in problem.instance.reference_solution().items()}
        time.sleep(options["sleep_s"])
        with open(os.environ["HARD_LOG"], "a") as fh:   # one line per computation: seed, supervisor pid
            fh.write(f"{problem.instance.seed} {os.getppid()}\\n")
        return Outcome(Status.FEASIBLE, sol, problem.evaluate(sol).objective)

    @hookimpl
    def register_solvers(registry):
        registry.add_solver(name="hard-slow", solve=slow, exact=False, options={"sleep_s": 0.4}, version="1")
''')


def _slow_suite(tmp_path, n_seeds):
    plug = tmp_path / "plugins"
    plug.mkdir()
    (plug / "hard_slow.py").write_text(SLOW)
    suite = tmp_path / "two.toml"
    suite.write_text(f"[defaults]\nvariants = ['default']\nsizes = [[2, 1]]\nseeds = {{count = {n_seeds}}}\n"
                     "solvers = ['hard-slow']\nreference = 'none'\ntime_limit_s = 30.0\n")
    env = {**os.environ, "MECSPLIT_PLUGINS_DIR": str(plug), "HARD_LOG": str(tmp_path / "log.txt")}
    return suite, env


def _cmd(suite, db, out):
    return [sys.executable, "-m", "mecsplit.cli", "bench", "run", str(suite), "--db", str(db), "--out", str(out),
            "--workers", "1", "--no-progress"]


def test_two_bench_runs_on_one_store_compute_each_cell_once(tmp_path):
    n = 16
    suite, env = _slow_suite(tmp_path, n)
    db = tmp_path / "one.sqlite"
    procs = [subprocess.Popen(_cmd(suite, db, tmp_path / f"out{i}"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    lines = (tmp_path / "log.txt").read_text().split()
    seeds, owners = lines[0::2], lines[1::2]
    assert sorted(map(int, seeds)) == list(range(1, n + 1))  # every cell computed, none twice
    assert set(owners) == {str(p.pid) for p in procs}        # and both runs did compute (they overlapped)
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM results").fetchone()[0] == n
    assert con.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0  # leases released
    ran = [r[0] for r in con.execute("SELECT n_run FROM runs ORDER BY run_id")]
    assert sum(ran) == n
    con.close()


def test_sigint_exits_130_releases_leases_and_resumes(tmp_path):
    n = 10
    suite, env = _slow_suite(tmp_path, n)
    db = tmp_path / "int.sqlite"
    proc = subprocess.Popen(_cmd(suite, db, tmp_path / "out"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while not (tmp_path / "log.txt").exists() or len((tmp_path / "log.txt").read_text().split()) < 4:
        assert proc.poll() is None and time.monotonic() - t0 < 120, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0
    done = con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    con.close()
    r = subprocess.run(_cmd(suite, db, tmp_path / "out"), env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{n} cells ({done} already stored, {n - done} run" in r.stdout


def test_html_report_escapes_every_name(tmp_path):
    label = "<script>alert(1)</script>"
    (tmp_path / "esc.toml").write_text(
        "description = '<img src=x onerror=alert(2)>'\n[defaults]\nvariants = ['default']\nsizes = [[2, 1]]\n"
        f"seeds = [1]\nreference = 'none'\nsolvers = [{{name = 'greedy', label = '{label}'}}]\n")
    code, out, err = cli("bench", "run", str(tmp_path / "esc.toml"), "--db", str(tmp_path / "e.sqlite"),
                         "--out", str(tmp_path / "rep"), "--no-progress", "--workers", "1")
    assert code == 0, err
    html = "".join(p.read_text() for p in (tmp_path / "rep").rglob("*.html"))
    assert "&lt;script&gt;" in html
    # the pages carry their own sorting <script>; the user's label must never appear unescaped
    assert label not in html and "<script>alert" not in html
    assert "<img src=x" not in html
