"""Wall time of the CLI's quick commands, as a ratio to `python -c "import numpy"` measured in the same run.

    python benchmarks/cli_startup.py [--runs 15]

Each command and the yardstick run in turn (A B A B ...), so that a machine that speeds up or slows
down during the run moves both; the ratio is taken pair by pair and the median is reported, for wall
time and for CPU time (user + system of the child, which other load on the machine inflates far less
than wall time). Goals (issue 20): `mecsplit --help` <= 0.2 s, `mecsplit variants` and `mecsplit
plugins` <= 1 s on 2 cores; the verdict printed uses CPU time, as a loaded machine's wall time says
more about the other load than about the command. Every installed plugin is loaded, as a user has them.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

YARDSTICK = [sys.executable, "-c", "import numpy"]
COMMANDS = {
    "mecsplit --help": ["--help"],
    "mecsplit --version": ["--version"],
    "mecsplit variants": ["variants"],
    "mecsplit blocks": ["blocks"],
    "mecsplit plugins": ["plugins"],
}
GOALS_S = {"mecsplit --help": 0.2, "mecsplit variants": 1.0, "mecsplit plugins": 1.0}


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall s, cpu s) of one run of ``cmd``."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    runs = ap.parse_args().runs
    print(f"{'command':20s} {'wall s':>7s} {'numpy':>7s} {'ratio':>6s}   {'cpu s':>7s} {'numpy':>7s} {'ratio':>6s}  goal (cpu)")
    for name, args in COMMANDS.items():
        cmd = [sys.executable, "-m", "mecsplit", *args]
        timed(cmd), timed(YARDSTICK)  # warm the file cache
        pairs = [(timed(cmd), timed(YARDSTICK)) for _ in range(runs)]
        med = [statistics.median(p[i][k] for p in pairs) for k in (0, 1) for i in (0, 1)]
        ratio = [statistics.median(p[0][k] / p[1][k] for p in pairs) for k in (0, 1)]
        goal = f"<= {GOALS_S[name]:g} s: {'met' if med[2] <= GOALS_S[name] else 'NOT met'}" if name in GOALS_S else ""
        print(f"{name:20s} {med[0]:7.3f} {med[1]:7.3f} {ratio[0]:6.2f}   {med[2]:7.3f} {med[3]:7.3f} {ratio[1]:6.2f}  {goal}")


if __name__ == "__main__":
    main()
