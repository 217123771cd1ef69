"""Execute cells: a persistent pool of worker processes with a hard wall-clock kill per cell.

Each worker (a ``spawn``-ed process) imports mecsplit and the plugins once, then runs cells sent to
it over a pipe. While a cell runs, the worker streams every incumbent and bound through the
solve-event hooks (``incumbent_found`` / ``bound_improved``, a hookimpl object registered in the
worker). The supervisor (this process) kills a worker whose cell passed ``time_limit_s + grace_s``
(SIGKILL), records the cell as ``time_limit`` with ``killed = true`` and the last streamed incumbent
and bound, and starts a replacement worker. A worker that dies (segfault, ``os._exit``) is recorded
as ``error``. Results go to the caller's ``on_result`` as soon as each cell ends (the store commits it).

``DaskExecutor`` sends the same cells to a Dask distributed scheduler; each task runs its cell in a
one-cell pool (its own process, same hard kill) on the Dask worker.

Keep this module's top-level imports light: workers import it before setting thread variables.
"""

from __future__ import annotations

import json
import math
import os
import platform
import signal
import time
import traceback
from collections import deque
from typing import Any, Callable

CLAIM_RETRY_S = 1.0  # how often cells held by another run on the same store are asked for again
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")
RESULT_SCHEMA = "mecsplit.result/1"


def worker_env(timing: bool = False) -> dict[str, str]:
    """Environment for workers: one BLAS/OpenMP thread each (always in timing mode; otherwise unless
    the user set the variable), plus the plugin folders of this process's manager."""
    env = {}
    for k in THREAD_VARS:
        env[k] = "1" if timing or k not in os.environ else os.environ[k]
    try:
        from pathlib import Path

        from ..plugins import get_manager

        dirs = sorted({str(Path(i["source"]).parent) for n, i in get_manager().info.items() if n.startswith("dir:")})
        old = [d for d in os.environ.get("MECSPLIT_PLUGINS_DIR", "").split(os.pathsep) if d]
        env["MECSPLIT_PLUGINS_DIR"] = os.pathsep.join(dict.fromkeys([*old, *dirs]))
    except Exception:  # pragma: no cover - defensive
        pass
    return env


# ----------------------------------------------------------------------------------------- worker side
class _Cache:
    def __init__(self):
        self.variants: dict[str, Any] = {}
        self.instances: dict[tuple, Any] = {}

    def get(self, p: dict[str, Any]):
        from ..instance import generate
        from ..variant import load_variant

        # by its file when this machine has it (a variant named by path), else by name
        ref = p["variant_path"] if p.get("variant_path") and os.path.isfile(p["variant_path"]) else p["variant"]
        vk = json.dumps([ref, p["overrides"]], sort_keys=True)
        if vk not in self.variants:
            self.variants[vk] = load_variant(ref, overrides=p["overrides"] or None)
        v = self.variants[vk]
        ik = (vk, p["n_users"], p["n_servers"], p["seed"])
        if ik not in self.instances:
            if len(self.instances) > 256:
                self.instances.clear()
            self.instances[ik] = generate(v, p["n_users"], p["n_servers"], p["seed"])
        return v, self.instances[ik]


def execute_cell(p: dict[str, Any], cache: _Cache | None = None) -> str:
    """Run one cell in this process; the verified Result as JSON (an ``error`` result if anything
    outside the solver goes wrong, e.g. an instance that no longer matches its recorded hash)."""
    from ..solve import solve

    t0 = time.perf_counter()
    try:
        v, inst = (cache or _Cache()).get(p)
        if p.get("instance_hash") and inst.hash != p["instance_hash"]:
            raise RuntimeError(f"instance hash {inst.hash} != expected {p['instance_hash']} (generator not deterministic?)")
        res = solve(v, inst, p["solver"], p["options"], p["time_limit_s"], seed=p["seed"])
        res.extra = {**(res.extra or {}), "killed": False, "worker_pid": os.getpid(),
                     "threads": {k: os.environ.get(k, "") for k in THREAD_VARS[:3]}}
        return res.to_json(indent=None)
    except Exception as e:
        return json.dumps(failed_result(p, time.perf_counter() - t0, "error", f"{type(e).__name__}: {e}",
                                        extra={"traceback": traceback.format_exc(limit=8), "killed": False}))


def _watch_parent(ppid: int) -> None:
    """Exit if the supervisor dies (even by kill -9) instead of running on as an orphan."""
    import threading

    def loop():
        while True:
            time.sleep(0.5)
            if os.getppid() != ppid:
                os._exit(0)

    threading.Thread(target=loop, daemon=True, name="mecsplit-bench-parent-watch").start()


def _worker_main(conn, env: dict[str, str], ppid: int, inherited=()) -> None:
    for c in inherited:  # forked: close the other workers' pipe ends copied from the supervisor
        try:
            c.close()
        except OSError:
            pass
    os.environ.update(env)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor handles Ctrl-C
    try:  # own process group: a hard kill also takes down solver subprocesses (external binaries)
        os.setpgid(0, 0)
    except OSError:  # pragma: no cover
        pass
    _watch_parent(ppid)
    from ..plugins import get_manager, hookimpl

    class Streamer:
        """Forwards the solve events of the running cell to the supervisor."""

        @hookimpl
        def incumbent_found(self, run, t_s, objective):
            conn.send(("inc", float(t_s), float(objective)))

        @hookimpl
        def bound_improved(self, run, t_s, bound):
            conn.send(("bnd", float(t_s), float(bound)))

    get_manager().pm.register(Streamer(), name="mecsplit-bench-streamer")
    cache = _Cache()
    conn.send(("ready", os.getpid()))
    while True:
        try:
            p = conn.recv()
        except (EOFError, OSError):
            break
        if p is None:
            break
        out = execute_cell(p, cache)
        conn.send(("done", p["cell_hash"], out))


# ------------------------------------------------------------------------------------- supervisor side
def failed_result(p: dict[str, Any], elapsed: float, status: str, message: str, incumbent=None, bound=None,
                  trace=None, extra=None, flag: str = "") -> dict[str, Any]:
    """A Result dict for a cell that produced none itself (killed, worker died, setup error)."""
    from ..solve import code_revision

    gap = None
    if incumbent is not None and bound is not None:
        gap = max(0.0, incumbent - bound) / max(abs(incumbent), 1e-10)
    return {"schema": RESULT_SCHEMA, "status": status, "objective": incumbent, "bound": bound, "gap": gap,
            "wall_time_s": elapsed, "iterations": 0, "solution": None, "metrics": {}, "trace": trace or [],
            "provenance": {"solver": p["solver"], "options": p["options"], "seed": p["seed"],
                           "instance_hash": p.get("instance_hash"), "variant": p["variant"],
                           "size": [p["n_users"], p["n_servers"]], **{f"{k}_version": v for k, v in p.get("versions", {}).items()},
                           **code_revision(), "python": platform.python_version(), "platform": platform.platform()},
            "verification": {"feasible": None, "max_violation": None, "objective_evaluated": None,
                             "objective_agrees": None, "violations": {}, "flags": [flag] if flag else [],
                             "verdict": "unverified"},
            "message": message, "extra": extra or {}}


class _Slot:
    def __init__(self):
        self.proc = self.conn = None
        self.ready = False
        self.payload: dict[str, Any] | None = None
        self.t0 = self.deadline = 0.0
        self.trace: list[dict[str, Any]] = []
        self.inc = self.bnd = None

    def reset_cell(self):
        self.payload, self.trace, self.inc, self.bnd = None, [], None, None


class LocalPool:
    """``workers`` persistent worker processes; ``run(payloads, on_result)`` blocks until all ran.

    ``on_result(payload, result_json)`` is called in this process as each cell ends."""

    def __init__(self, workers: int, env: dict[str, str] | None = None, poll_s: float = 0.2,
                 start_method: str | None = None):
        import multiprocessing as mp

        # fork (Linux): a worker starts in milliseconds with mecsplit and the plugins already imported
        # (spawn re-imports them: ~1-4 s per worker). MECSPLIT_BENCH_START=spawn|forkserver overrides.
        method = start_method or os.environ.get("MECSPLIT_BENCH_START") or \
            ("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self.ctx = mp.get_context(method)
        self.workers = max(1, int(workers))
        self.env = env if env is not None else worker_env()
        self.poll_s = poll_s
        self.slots: list[_Slot] = []
        self.kills = 0
        self.spawned = 0
        self.startup_failures = 0

    def _spawn(self, s: _Slot) -> None:
        parent, child = self.ctx.Pipe(duplex=True)
        others = [o.conn for o in self.slots if o is not s and o.conn is not None] \
            if self.ctx.get_start_method() == "fork" else []
        s.proc = self.ctx.Process(target=_worker_main, args=(child, self.env, os.getpid(), others), daemon=True,
                                  name="mecsplit-bench-worker")
        s.proc.start()
        child.close()
        s.conn, s.ready = parent, False
        self.spawned += 1

    def _stop(self, s: _Slot, kill: bool) -> None:
        if s.proc is None:
            return
        if kill and s.proc.is_alive():
            try:
                if os.getpgid(s.proc.pid) == s.proc.pid:
                    os.killpg(s.proc.pid, signal.SIGKILL)
                else:
                    s.proc.kill()
            except (OSError, AttributeError):
                s.proc.kill()
        s.proc.join(5)
        try:
            s.conn.close()
        except OSError:
            pass
        s.proc = s.conn = None
        s.ready = False

    def close(self) -> None:
        for s in self.slots:
            if s.proc is not None and s.proc.is_alive() and s.payload is None and s.ready:
                try:
                    s.conn.send(None)
                except OSError:
                    pass
        for s in self.slots:
            if s.proc is not None:
                s.proc.join(2)
                self._stop(s, kill=True)

    def run(self, payloads: list[dict[str, Any]], on_result: Callable[[dict, str], None],
            claim: Callable[[dict], str] | None = None) -> None:
        """``claim(payload)`` (the store's lease, :meth:`Store.claim`) is asked just before a cell is
        sent: "run" sends it, "done" drops it (stored by another run), "busy" retries it later."""
        from multiprocessing.connection import wait

        pending = deque(payloads)
        waiting: list[dict[str, Any]] = []  # held by another run: asked for again every CLAIM_RETRY_S
        retry_at = 0.0
        if not self.slots:
            self.slots = [_Slot() for _ in range(min(self.workers, max(1, len(pending))))]
        try:
            while pending or waiting or any(s.payload is not None for s in self.slots):
                if waiting and not pending and time.monotonic() >= retry_at:
                    pending.extend(waiting)
                    waiting.clear()
                    retry_at = time.monotonic() + CLAIM_RETRY_S
                for s in self.slots:
                    if s.proc is None and pending:
                        self._spawn(s)
                    while s.ready and s.payload is None and pending:
                        p = pending.popleft()
                        verdict = claim(p) if claim is not None else "run"
                        if verdict != "run":
                            if verdict == "busy":
                                waiting.append(p)
                            continue
                        s.payload, s.t0 = p, time.monotonic()
                        s.deadline = s.t0 + float(p["time_limit_s"]) + float(p.get("grace_s", 0.0))
                        try:
                            s.conn.send(p)
                        except OSError:  # the worker just died: reported below as worker_died
                            pass
                        break
                live = [s for s in self.slots if s.proc is not None]
                wait([s.conn for s in live] + [s.proc.sentinel for s in live], timeout=self.poll_s)
                for s in live:
                    self._drain(s, on_result)
                    if s.proc is not None and not s.proc.is_alive():
                        self._drain(s, on_result)
                        if not s.ready and s.payload is None:
                            self.startup_failures += 1
                            if self.startup_failures > 3:
                                raise RuntimeError(f"bench workers die at start-up (exit code {s.proc.exitcode}); "
                                                   "try MECSPLIT_BENCH_START=spawn or check `mecsplit plugins`")
                        if s.payload is not None:
                            p, code = s.payload, s.proc.exitcode
                            res = failed_result(p, time.monotonic() - s.t0, "error",
                                                f"worker process died (exit code {code}) while running the cell",
                                                s.inc, s.bnd, s.trace, {"killed": False, "exitcode": code}, "worker_died")
                            s.reset_cell()
                            on_result(p, json.dumps(res))
                        self._stop(s, kill=True)
                    elif s.payload is not None and time.monotonic() > s.deadline:
                        p, el = s.payload, time.monotonic() - s.t0
                        self._stop(s, kill=True)
                        self.kills += 1
                        res = failed_result(p, el, "time_limit",
                                            f"killed after {el:.1f} s (time limit {p['time_limit_s']:g} s + grace "
                                            f"{p.get('grace_s', 0):g} s); objective/bound are the last streamed values",
                                            s.inc, s.bnd, s.trace, {"killed": True}, "killed_at_hard_limit")
                        s.reset_cell()
                        on_result(p, json.dumps(res))
        except BaseException:
            for s in self.slots:
                self._stop(s, kill=True)
            raise

    def _drain(self, s: _Slot, on_result) -> None:
        while s.conn is not None:
            try:
                if not s.conn.poll():
                    return
                msg = s.conn.recv()
            except (EOFError, OSError):
                return
            kind = msg[0]
            if kind == "ready":
                s.ready = True
            elif kind == "inc" and s.payload is not None:
                s.inc = msg[2]
                s.trace.append({"t_s": msg[1], "incumbent": msg[2], "bound": s.bnd, "iteration": None})
            elif kind == "bnd" and s.payload is not None:
                s.bnd = msg[2]
                s.trace.append({"t_s": msg[1], "incumbent": s.inc, "bound": msg[2], "iteration": None})
            elif kind == "done" and s.payload is not None and msg[1] == s.payload["cell_hash"]:
                p = s.payload
                s.reset_cell()
                on_result(p, msg[2])


_TLS = None
_ISOLATED_POOLS: list = []


def close_isolated_pools() -> None:
    """Stop the per-thread pools of :func:`run_cell_isolated` living in this process."""
    while _ISOLATED_POOLS:
        _ISOLATED_POOLS.pop().close()


def run_cell_isolated(payload: dict[str, Any], env: dict[str, str] | None = None) -> str:
    """One cell in a separate worker process with the hard kill (what a Dask task runs). Each calling
    thread keeps its own one-worker pool, so a Dask worker thread pays the process start once, not
    per cell; a killed worker is replaced as in the local pool."""
    import atexit
    import multiprocessing as mp
    import threading

    global _TLS
    if _TLS is None:
        _TLS = threading.local()
    proc = mp.current_process()
    was_daemon = proc.daemon if proc.name != "MainProcess" else False
    if was_daemon:  # Dask worker processes are daemonic; they may still supervise one child here
        proc._config["daemon"] = False  # type: ignore[attr-defined]
    pool = getattr(_TLS, "pool", None)
    if pool is None or pool.env != (env if env is not None else pool.env):
        if pool is not None:
            pool.close()
        pool = _TLS.pool = LocalPool(1, env, start_method="spawn")  # Dask workers run threads: do not fork
        _ISOLATED_POOLS.append(pool)
        atexit.register(pool.close)
    out: list[str] = []
    try:
        pool.run([payload], lambda p, r: out.append(r))
    finally:
        if was_daemon:
            proc._config["daemon"] = True  # type: ignore[attr-defined]
    return out[0]


class DaskExecutor:
    """Cells as tasks on a Dask distributed cluster (``scheduler``: an address, or a Client)."""

    def __init__(self, scheduler, env: dict[str, str] | None = None):
        try:
            from dask.distributed import Client
        except ImportError as e:  # pragma: no cover
            from ..errors import InputError

            raise InputError("<option>", "--executor", "dask is not installed", "pip install 'dask[distributed]'") from e
        self.client = scheduler if hasattr(scheduler, "submit") else Client(scheduler)
        self.own = not hasattr(scheduler, "submit")
        self.env = env if env is not None else worker_env()
        self.kills = 0

    def run(self, payloads, on_result, claim: Callable[[dict], str] | None = None) -> None:
        """As :meth:`LocalPool.run`; cells are claimed when submitted, busy ones retried after."""
        from dask.distributed import as_completed

        while payloads:
            verdicts = [(p, claim(p) if claim is not None else "run") for p in payloads]
            futs = {self.client.submit(run_cell_isolated, p, self.env, key=f"mecsplit-cell-{p['cell_hash']}-{time.time_ns()}",
                                       pure=False): p for p, v in verdicts if v == "run"}
            for f in as_completed(list(futs)):
                p = futs[f]
                try:
                    r = f.result()
                except Exception as e:
                    r = json.dumps(failed_result(p, 0.0, "error", f"dask task failed: {type(e).__name__}: {e}",
                                                 extra={"killed": False}, flag="executor_error"))
                if json.loads(r).get("extra", {}).get("killed"):
                    self.kills += 1
                on_result(p, r)
            payloads = [p for p, v in verdicts if v == "busy"]
            if payloads and not futs:
                time.sleep(CLAIM_RETRY_S)

    def close(self) -> None:
        close_isolated_pools()  # an in-process cluster (LocalCluster(processes=False)) ran them here
        if self.own:
            self.client.close()


def run_suite(suite, store, workers: int | None = None, executor: str = "local", scheduler=None,
              timing: bool = False, progress: bool = True) -> dict[str, Any]:
    """Expand ``suite``, skip cells already in ``store``, run the rest, commit each as it ends."""
    from .cells import expand

    t0 = time.monotonic()
    cells = expand(suite)
    store.register(suite.name, cells, suite.groups)
    done = store.done_hashes()
    uniq: dict[str, Any] = {}
    for c in cells:
        if not c.skip_reason:
            uniq.setdefault(c.cell_hash, c)
    todo = [c.payload() for h, c in uniq.items() if h not in done]
    n_skipped = len({(c.group, c.cell_hash, c.label) for c in cells if c.skip_reason})
    workers = 1 if timing else int(workers or os.cpu_count() or 1)
    env = worker_env(timing)
    run_id = store.start_run(suite.name, workers=workers, executor=executor, timing=timing)
    counts: dict[str, int] = {}
    solve_s = [0.0]
    elsewhere = [0]  # cells another run on this store finished while this one ran
    try:
        import tqdm as _tqdm
        from tqdm import tqdm

        _tqdm.tqdm.monitor_interval = 0  # no monitor thread in a process that forks workers
        bar = tqdm(total=len(todo), disable=not progress, unit="cell", desc=f"bench {suite.name}", dynamic_ncols=True)
    except ImportError:  # pragma: no cover
        bar = None

    def on_result(p, rj):
        r = store.put(p, rj)
        solve_s[0] += float(r.get("wall_time_s") or 0.0)
        key = r["status"] + ("/killed" if (r.get("extra") or {}).get("killed") else "")
        counts[key] = counts.get(key, 0) + 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(" ".join(f"{k}={v}" for k, v in sorted(counts.items())), refresh=False)

    def claim(p):
        verdict = store.claim(p["cell_hash"])
        if verdict == "done":
            elsewhere[0] += 1
            if bar is not None:
                bar.update(1)
        return verdict

    if executor == "dask":
        ex = DaskExecutor(scheduler, env)
    else:
        from ..plugins import get_manager

        get_manager().preload({p["solver"] for p in todo})  # imported once here, not in each forked worker
        ex = LocalPool(min(workers, max(1, len(todo))), env)
    try:
        if todo:
            with store.leases():
                ex.run(todo, on_result, claim)
    finally:
        ex.close()
        if bar is not None:
            bar.close()
    wall = time.monotonic() - t0
    n_run = len(todo) - elsewhere[0]
    n_killed = sum(v for k, v in counts.items() if k.endswith("/killed"))
    store.finish_run(run_id, wall_s=wall, n_cells=len(uniq), n_done_before=len(uniq) - n_run, n_run=n_run,
                     n_skipped=n_skipped, n_killed=n_killed, solve_s=solve_s[0])
    return {"solve_s": solve_s[0], "suite": suite.name, "cells": len(uniq), "done_before": len(uniq) - n_run, "ran": n_run,
            "skipped": n_skipped, "killed": n_killed, "counts": counts, "wall_s": wall, "workers": workers,
            "executor": executor}
