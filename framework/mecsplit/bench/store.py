"""The results store: one SQLite file (default ``bench-results/results.sqlite``).

Every finished cell is committed at once (WAL journal, ``synchronous=NORMAL``: a killed runner —
even ``kill -9`` — loses no committed cell; only an OS crash or power loss can drop the last ones).
Tables (docs/benchmarks.md has the full schema):

* ``results``    one row per cell content hash: indexed columns + the full Result JSON;
* ``membership`` which suite/group/role/label/sweep point each cell belongs to;
* ``skipped``    cells a suite could not run (solver not installed, variant unsupported), with why;
* ``refs``       certified optima (an exact solver's verified ``optimal`` result) with provenance;
* ``runs``       one row per ``bench run`` (timing, workers, executor, counts);
* ``claims``     leases: the cell a running ``bench run`` is computing, with the owner's host, pid and
  heartbeat. Runs sharing a store claim each cell before computing it (:meth:`Store.claim`), so a
  cell is computed once; a lease expires when its owner's heartbeat is older than ``LEASE_S`` or
  (same host) its pid is gone — a killed run's cells are taken over by the next run.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import InputError

DEFAULT_DB = Path("bench-results") / "results.sqlite"
SCHEMA_VERSION = 1
LEASE_S = 30.0        # a claim whose heartbeat is older than this is expired
HEARTBEAT_S = 5.0     # how often a running ``bench run`` renews its claims
STORE_WHAT = "a results store written by 'mecsplit bench run' (SQLite), or a path for a new one"

DDL = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS results(
  cell_hash TEXT PRIMARY KEY, variant TEXT, overrides TEXT, n_users INTEGER, n_servers INTEGER, seed INTEGER,
  instance_hash TEXT, ref_key TEXT, solver TEXT, options TEXT, time_limit_s REAL, grace_s REAL,
  status TEXT, killed INTEGER, objective REAL, bound REAL, gap REAL, wall_time_s REAL, iterations INTEGER,
  verdict TEXT, flags TEXT, exact INTEGER, versions TEXT, result_json TEXT, finished_at TEXT, host TEXT);
CREATE INDEX IF NOT EXISTS results_ref ON results(ref_key);
CREATE INDEX IF NOT EXISTS results_solver ON results(solver);
CREATE TABLE IF NOT EXISTS membership(
  suite TEXT, grp TEXT, role TEXT, cell_hash TEXT, label TEXT, sweep_param TEXT, sweep_value REAL,
  PRIMARY KEY(suite, grp, role, cell_hash, label));
CREATE INDEX IF NOT EXISTS membership_suite ON membership(suite);
CREATE TABLE IF NOT EXISTS skipped(suite TEXT, grp TEXT, cell_hash TEXT, solver TEXT, label TEXT, variant TEXT,
  n_users INTEGER, n_servers INTEGER, seed INTEGER, reason TEXT, PRIMARY KEY(suite, grp, cell_hash, label));
CREATE TABLE IF NOT EXISTS groups(suite TEXT, grp TEXT, spec TEXT, PRIMARY KEY(suite, grp));
CREATE TABLE IF NOT EXISTS refs(
  ref_key TEXT PRIMARY KEY, instance_hash TEXT, variant TEXT, overrides TEXT, value REAL, bound REAL,
  gap REAL, solver TEXT, cell_hash TEXT, wall_time_s REAL, provenance TEXT, created_at TEXT);
CREATE TABLE IF NOT EXISTS runs(
  run_id INTEGER PRIMARY KEY AUTOINCREMENT, suite TEXT, started_at TEXT, finished_at TEXT, wall_s REAL,
  n_cells INTEGER, n_done_before INTEGER, n_run INTEGER, n_skipped INTEGER, n_killed INTEGER,
  workers INTEGER, executor TEXT, timing INTEGER, host TEXT, cores INTEGER, solve_s REAL, load_avg TEXT);
CREATE TABLE IF NOT EXISTS claims(cell_hash TEXT PRIMARY KEY, owner TEXT, host TEXT, pid INTEGER, heartbeat REAL,
  claimed_at TEXT);
"""


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


class Store:
    def __init__(self, path: str | os.PathLike = DEFAULT_DB):
        self.path = Path(path)
        self.owner = f"{platform.node()}:{os.getpid()}:{secrets.token_hex(4)}"
        try:
            if self.path.is_file() and self.path.stat().st_size:
                with open(self.path, "rb") as fh:
                    if fh.read(16) != b"SQLite format 3\x00":  # SQLite would take a tiny file for an empty one
                        raise InputError(str(path), "--db", "not a SQLite file", STORE_WHAT)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), timeout=60)
            self._open()
        except sqlite3.DatabaseError as e:
            raise InputError(str(path), "--db", f"not a usable SQLite results store ({e})", STORE_WHAT) from None
        except OSError as e:
            raise InputError(str(path), "--db", f"cannot be opened ({e.strerror or type(e).__name__})", STORE_WHAT) from None

    def _open(self) -> None:
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:  # never add our tables to another application's database
            raise InputError(str(self.path), "--db", "a SQLite database of something else (no 'meta' table)", STORE_WHAT)
        if "meta" in tables:
            row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None or row[0] != str(SCHEMA_VERSION):
                raise InputError(str(self.path), "--db", f"store schema version {row[0] if row else None!r}",
                                 f"a store of schema version {SCHEMA_VERSION}")
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(DDL)
        cols = {r[1] for r in self.db.execute("PRAGMA table_info(runs)")}
        for c, t in (("solve_s", "REAL"), ("load_avg", "TEXT")):  # stores from before these columns
            if c not in cols:
                self.db.execute(f"ALTER TABLE runs ADD COLUMN {c} {t}")
        self.db.execute("INSERT OR IGNORE INTO meta VALUES('schema_version', ?)", (str(SCHEMA_VERSION),))
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    # ----------------------------------------------------------------------------------- writing
    def register(self, suite: str, cells, groups=()) -> None:
        """Record which cells belong to the suite (and which are skipped, with why) and each group's
        report settings (reference policy, epsilon, figure)."""
        # the suite's current definition replaces the old one (results stay, reusable by hash)
        for t in ("skipped", "membership", "groups"):
            self.db.execute(f"DELETE FROM {t} WHERE suite=?", (suite,))
        for g in groups:
            spec = {"reference": g.reference, "reference_solver": g.reference_solver, "epsilon": g.epsilon,
                    "figure": g.figure, "sweep": g.sweep, "time_limit_s": g.time_limit_s, "grace_s": g.grace_s,
                    "reference_time_limit_s": g.reference_time_limit_s}
            self.db.execute("INSERT OR REPLACE INTO groups VALUES(?,?,?)", (suite, g.name, json.dumps(spec)))
        for c in cells:
            if c.skip_reason:
                self.db.execute("INSERT OR REPLACE INTO skipped VALUES(?,?,?,?,?,?,?,?,?,?)",
                                (suite, c.group, c.cell_hash, c.solver, c.label, c.variant, c.n_users, c.n_servers,
                                 c.seed, c.skip_reason))
            else:
                self.db.execute("INSERT OR IGNORE INTO membership VALUES(?,?,?,?,?,?,?)",
                                (suite, c.group, c.role, c.cell_hash, c.label, c.sweep_param, c.sweep_value))
        self.db.commit()

    # ------------------------------------------------------------------------------------ leases
    def claim(self, cell_hash: str) -> str:
        """Claim a cell before computing it: "run" (claimed: compute it), "done" (already stored),
        or "busy" (another live run holds it; ask again later — its lease may expire)."""
        self.db.commit()
        self.db.execute("BEGIN IMMEDIATE")  # the write lock: check-and-claim is atomic across processes
        try:
            if self.db.execute("SELECT 1 FROM results WHERE cell_hash=?", (cell_hash,)).fetchone():
                return "done"
            row = self.db.execute("SELECT owner, host, pid, heartbeat FROM claims WHERE cell_hash=?", (cell_hash,)).fetchone()
            t = time.time()
            if row is not None and row["owner"] != self.owner and not self._expired(row, t):
                return "busy"
            self.db.execute("INSERT OR REPLACE INTO claims VALUES(?,?,?,?,?,?)",
                            (cell_hash, self.owner, platform.node(), os.getpid(), t, now()))
            return "run"
        finally:
            self.db.commit()

    @staticmethod
    def _expired(row, t: float) -> bool:
        if t - float(row["heartbeat"] or 0.0) > LEASE_S:
            return True
        return row["host"] == platform.node() and not _pid_alive(int(row["pid"]))

    def release_claims(self) -> None:
        self.db.execute("DELETE FROM claims WHERE owner=?", (self.owner,))
        self.db.commit()

    @contextlib.contextmanager
    def leases(self):
        """While the block runs, a thread renews this store's claims every HEARTBEAT_S (on its own
        connection); on exit (normal, error or Ctrl-C) the claims still held are released."""
        stop = threading.Event()

        def beat():
            db = sqlite3.connect(str(self.path), timeout=60)
            try:
                while not stop.wait(HEARTBEAT_S):
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("UPDATE claims SET heartbeat=? WHERE owner=?", (time.time(), self.owner))
                        db.commit()
            finally:
                db.close()

        th = threading.Thread(target=beat, daemon=True, name="mecsplit-store-heartbeat")
        th.start()
        try:
            yield self
        finally:
            stop.set()
            th.join()
            self.release_claims()

    def done_hashes(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT cell_hash FROM results")}

    def put(self, p: dict[str, Any], result_json: str) -> dict[str, Any]:
        """Store one finished cell and commit (plus a certified reference if it is one)."""
        r = json.loads(result_json)
        ver = r.get("verification") or {}
        prov = r.get("provenance") or {}
        killed = bool((r.get("extra") or {}).get("killed"))
        self.db.execute(
            "INSERT OR REPLACE INTO results VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (p["cell_hash"], p["variant"], json.dumps(p["overrides"], sort_keys=True), p["n_users"], p["n_servers"],
             p["seed"], p["instance_hash"], p["ref_key"], p["solver"], json.dumps(p["options"], sort_keys=True),
             p["time_limit_s"], p.get("grace_s"), r["status"], int(killed), r.get("objective"), r.get("bound"),
             r.get("gap"), r.get("wall_time_s"), r.get("iterations"), ver.get("verdict"),
             json.dumps(ver.get("flags", [])), int(bool(prov.get("exact"))), json.dumps(p.get("versions", {})),
             result_json, now(), platform.node()))
        self.db.execute("DELETE FROM claims WHERE cell_hash=? AND owner=?", (p["cell_hash"], self.owner))
        if prov.get("exact") and r["status"] == "optimal" and ver.get("verdict") == "ok" and r.get("objective") is not None:
            old = self.db.execute("SELECT value FROM refs WHERE ref_key=?", (p["ref_key"],)).fetchone()
            if old is None or r["objective"] < old[0]:
                self.db.execute("INSERT OR REPLACE INTO refs VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
                                (p["ref_key"], p["instance_hash"], p["variant"], json.dumps(p["overrides"], sort_keys=True),
                                 r["objective"], r.get("bound"), r.get("gap"), p["solver"], p["cell_hash"],
                                 r.get("wall_time_s"), json.dumps(prov, sort_keys=True), now()))
        self.db.commit()
        return r

    def start_run(self, suite: str, **kw) -> int:
        cur = self.db.execute("INSERT INTO runs(suite, started_at, host, cores, workers, executor, timing) VALUES(?,?,?,?,?,?,?)",
                              (suite, now(), platform.node(), os.cpu_count(), kw.get("workers"), kw.get("executor"),
                               int(bool(kw.get("timing")))))
        self.db.commit()
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, **kw) -> None:
        try:
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        except OSError:  # pragma: no cover
            load = ""
        self.db.execute("UPDATE runs SET finished_at=?, wall_s=?, n_cells=?, n_done_before=?, n_run=?, n_skipped=?, "
                        "n_killed=?, solve_s=?, load_avg=? WHERE run_id=?",
                        (now(), kw["wall_s"], kw["n_cells"], kw["n_done_before"], kw["n_run"], kw["n_skipped"],
                         kw["n_killed"], kw.get("solve_s"), load, run_id))
        self.db.commit()

    # ----------------------------------------------------------------------------------- reading
    def suites(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT suite FROM membership ORDER BY suite")]

    def rows(self, suite: str | None = None) -> list[dict[str, Any]]:
        """One dict per (membership, result) pair of the suite (all suites if None), with the parsed
        Result under ``result``."""
        q = ("SELECT m.suite, m.grp, m.role, m.label, m.sweep_param, m.sweep_value, r.* FROM membership m "
             "JOIN results r ON r.cell_hash = m.cell_hash")
        args: tuple = ()
        if suite is not None:
            q += " WHERE m.suite = ?"
            args = (suite,)
        out = []
        for row in self.db.execute(q + " ORDER BY m.suite, m.grp, m.label, r.n_users, r.seed", args):
            d = dict(row)
            d["result"] = json.loads(d.pop("result_json"))
            d["overrides"] = json.loads(d["overrides"])
            d["flags"] = json.loads(d["flags"] or "[]")
            out.append(d)
        return out

    def skipped(self, suite: str | None = None) -> list[dict[str, Any]]:
        q, a = "SELECT * FROM skipped", ()
        if suite is not None:
            q, a = q + " WHERE suite=?", (suite,)
        return [dict(r) for r in self.db.execute(q, a)]

    def groups(self, suite: str) -> dict[str, dict[str, Any]]:
        return {r["grp"]: json.loads(r["spec"]) for r in self.db.execute("SELECT * FROM groups WHERE suite=?", (suite,))}

    def best_known(self) -> dict[str, tuple[float, str, str]]:
        """ref_key -> (lowest verified objective of any stored run, solver, cell_hash); a point the
        evaluator found infeasible (a solver saying "no feasible point" keeps verdict ok) never counts."""
        out: dict[str, tuple[float, str, str]] = {}
        for k, obj, solver, h in self.db.execute(
                "SELECT ref_key, objective, solver, cell_hash FROM results WHERE verdict='ok' AND objective IS NOT NULL "
                "AND json_extract(result_json, '$.verification.feasible') = 1"):
            if k not in out or obj < out[k][0]:
                out[k] = (obj, solver, h)
        return out

    def refs(self) -> dict[str, dict[str, Any]]:
        return {r["ref_key"]: dict(r) for r in self.db.execute("SELECT * FROM refs")}

    def runs(self, suite: str | None = None) -> list[dict[str, Any]]:
        q, a = "SELECT * FROM runs", ()
        if suite is not None:
            q, a = q + " WHERE suite=?", (suite,)
        return [dict(r) for r in self.db.execute(q + " ORDER BY run_id", a)]

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0])
