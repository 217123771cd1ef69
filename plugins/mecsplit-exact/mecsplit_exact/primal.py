"""Incumbents from a second core (docs/exact.md §2e).

HiGHS' branch-and-cut on the assignment MILP runs on one core with its own primal heuristics off (oa.SEARCH),
so its incumbents come from the local search (§2d), which can stop at a poor local optimum: at default
200×20 seeds 2, 3 and 7 HiGHS' heuristics (feasibility jump, RENS, RINS) run from scratch on the same MILP,
their answer then polished by the local search, gave assignments 2.6e-7 to 1.4e-6 (relative) below the
solver's incumbent. While the main process bounds, a worker process on another core does exactly that
and sends every assignment that improves on its last one; the main
process costs each one exactly (fixed.py) before it becomes an incumbent and is handed to HiGHS. A
heuristic only: nothing it sends is trusted, and it changes no bound.
"""

from __future__ import annotations

import json
import os
import pickle
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np


def available():
    """A worker needs a second core."""
    try:
        return len(os.sched_getaffinity(0)) >= 2
    except AttributeError:  # pragma: no cover - not Linux
        return (os.cpu_count() or 1) >= 2


class PrimalWorker:
    """The worker over ``milp`` (oa.AssignmentMILP) for at most ``time_limit_s``: a child process
    (``python -m mecsplit_exact.primal DIR``; a plain subprocess, so that no caller's main module is
    re-imported and a daemonic caller may start it) reading the MILP (MPS) and the data from a temporary
    directory and writing one JSON line per assignment it sends. ``poll()`` returns the assignments
    (server, k) sent since the last call; ``close()`` ends the process and removes the directory."""

    def __init__(self, D, milp, time_limit_s, seed=0, threads=0):
        self.dir = tempfile.mkdtemp(prefix="mecsplit-primal-")
        prepare(self.dir, D, milp)
        self.q: queue.Queue = queue.Queue()
        self.sent = 0
        self.proc = subprocess.Popen([sys.executable, "-m", "mecsplit_exact.primal", self.dir, repr(float(time_limit_s)),
                                      str(int(seed)), str(os.getpid()), str(int(threads))],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                server, k = json.loads(line)
            except ValueError:
                continue
            self.q.put((np.asarray(server, int), np.asarray(k, int)))

    def poll(self):
        out = []
        while True:
            try:
                out.append(self.q.get_nowait())
            except queue.Empty:
                self.sent += len(out)
                return out

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(2.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - terminate is honoured between HiGHS calls
            self.proc.kill()
            self.proc.wait()
        self.reader.join(2.0)
        self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def prepare(folder, D, milp):
    """The worker's input in ``folder``: the MILP as HiGHS holds it (MPS) and the data with the options'
    (user, server, split) per MILP column."""
    milp.h.writeModel(os.path.join(folder, "milp.mps"))
    with open(os.path.join(folder, "data.pkl"), "wb") as f:
        pickle.dump((D, milp.on, milp.om, milp.ok), f)


def work(folder, time_limit_s, seed, parent, threads=0, out=sys.stdout):
    """HiGHS with its heuristics on (and no cutoff, so that they explore freely) on the MILP in ``folder``,
    with random seed ``seed`` (mod 2³¹) on ``threads`` threads (0: HiGHS' choice); each solution it finds
    is polished by the local search, and every assignment better than the last one written is written
    to ``out`` as a JSON line [server, k]. Ends at the time
    limit, once HiGHS has solved the MILP or when the parent process is gone; the parent ends it earlier
    (PrimalWorker.close). Quiet: HiGHS' output is off and nothing else is printed."""
    from mecsplit import quiet

    from .fixed import solve_fixed
    from .local import LocalSearch
    from .oa import NUMERICS, assignment_of

    with open(os.path.join(folder, "data.pkl"), "rb") as f:
        D, on, om, ok = pickle.load(f)
    clock = time.perf_counter
    end = clock() + time_limit_s
    best = [np.inf]

    def offer(server, k):
        r = solve_fixed(D, server, k, improve_alpha=False)
        if r is not None and r["obj"] < best[0]:
            best[0] = r["obj"]
            out.write(json.dumps([r["server"].tolist(), r["k"].tolist()]) + "\n")
            out.flush()
        return r

    local = LocalSearch(D)

    def found(ev):   # every improving MILP solution HiGHS finds: costed, polished (on this core), sent if better
        server, k = assignment_of(ev.data_out.mip_solution, on, om, ok, D.N)
        if np.all(server >= 0) and (r := offer(server, k)) is not None:
            local.improve(r, end, clock, offer)

    def orphaned(ev):   # the parent is gone (killed): stop, whatever the time limit
        if os.getppid() != parent:
            ev.data_in.user_interrupt = True

    with quiet.highs_options(random_seed=seed, threads=threads):
        h = quiet.highs({**NUMERICS, "time_limit": max(end - clock(), 0.01)})
        h.readModel(os.path.join(folder, "milp.mps"))
        h.cbMipImprovingSolution.subscribe(found)
        h.cbMipInterrupt.subscribe(orphaned)
        h.run()


if __name__ == "__main__":
    work(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
