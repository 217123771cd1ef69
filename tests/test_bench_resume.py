"""kill -9 of a running ``mecsplit bench run`` loses no finished cell, and resuming runs only the rest.

The runner is a real subprocess on a suite of slow fake cells; it is SIGKILLed after some cells were
committed; the store is checked (integrity, every committed cell still there), then the suite is
resumed and must end with every cell exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

FAKE = textwrap.dedent('''
    import time
    from mecsplit.plugins import hookimpl
    from mecsplit.result import Outcome, Status

    def slow(problem, options, tracer):
        inst = problem.instance
        import numpy as np
        N, M = inst.N, inst.M
        llm, uc, ec, up = (inst.block(k) for k in ("llm", "user_compute", "edge_compute", "uplink"))
        server = np.arange(N) % M
        cnt = np.bincount(server, minlength=M)
        sol = {"server": server.tolist(), "alpha": [float(llm["layers"] // 2)] * N,
               "f_GHz": [float(x) for x in uc["f_max_GHz"]], "fe_GHz": (ec["F_max_GHz"][server] / cnt[server]).tolist(),
               "p_W": [float(x) for x in up["p_max_W"]], "b_MHz": (up["b_max_MHz"][server] / cnt[server]).tolist()}
        time.sleep(options["sleep_s"])
        return Outcome(Status.FEASIBLE, sol, problem.evaluate(sol).objective)

    @hookimpl
    def register_solvers(registry):
        registry.add_solver(name="resume-slow", solve=slow, exact=False, options={"sleep_s": 0.3}, version="1")
''')

N_SEEDS = 24


def _count(db) -> int:
    try:
        con = sqlite3.connect(db, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_kill_9_then_resume_loses_nothing(tmp_path):
    plugdir = tmp_path / "plugins"
    plugdir.mkdir()
    (plugdir / "resume_fake.py").write_text(FAKE)
    suite = tmp_path / "resume.toml"
    suite.write_text(f"[defaults]\nvariants = ['default']\nsizes = [[3, 2]]\nseeds = {{count = {N_SEEDS}}}\n"
                     "solvers = ['resume-slow']\ntime_limit_s = 5.0\n")
    db = tmp_path / "r.sqlite"
    env = {**os.environ, "MECSPLIT_PLUGINS_DIR": str(plugdir)}
    cmd = [sys.executable, "-m", "mecsplit.cli", "bench", "run", str(suite), "--db", str(db), "--out", str(tmp_path / "out"),
           "--workers", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    while _count(db) < 6:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < 60, "runner too slow to commit cells"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    before = {h for (h,) in con.execute("SELECT cell_hash FROM results")}
    con.close()
    assert 6 <= len(before) < N_SEEDS  # killed in the middle
    time.sleep(1.2)  # orphaned workers notice the dead supervisor and exit
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"{N_SEEDS} cells ({len(before)} already stored, {N_SEEDS - len(before)} run" in out.stdout
    con = sqlite3.connect(db)
    rows = con.execute("SELECT cell_hash, seed, status, verdict FROM results").fetchall()
    assert len(rows) == N_SEEDS and len({r[0] for r in rows}) == N_SEEDS
    assert sorted(r[1] for r in rows) == list(range(1, N_SEEDS + 1))
    assert before <= {r[0] for r in rows} and all(r[2] == "feasible" and r[3] == "ok" for r in rows)
    runs = con.execute("SELECT n_run, n_done_before, finished_at FROM runs ORDER BY run_id").fetchall()
    assert runs[0][2] is None and runs[1][:2] == (N_SEEDS - len(before), len(before))  # the killed run never finished
    con.close()
