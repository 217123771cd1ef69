"""Wall time of the CLI's quick commands, as a ratio to `python -c "import numpy"` measured in the same run.

    python benchmarks/cli_startup.py [--runs 15]

Each command and the yardstick run in turn (A B A B ...), so that a machine that speeds up or slows
down during the run moves both; the ratio is taken pair by pair and the median is reported. Goals
(issue 20): `mecsplit --help` <= 0.2 s, `mecsplit variants` and `mecsplit plugins` <= 1 s on 2 cores.
Every installed plugin is loaded, as a user has them.
"""

from __future__ import annotations

import argparse
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


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    runs = ap.parse_args().runs
    print(f"{'command':22s} {'median s':>9s} {'numpy s':>9s} {'ratio':>7s}  goal")
    for name, args in COMMANDS.items():
        cmd = [sys.executable, "-m", "mecsplit", *args]
        wall(cmd), wall(YARDSTICK)  # warm the file cache
        pairs = [(wall(cmd), wall(YARDSTICK)) for _ in range(runs)]
        a = statistics.median(p[0] for p in pairs)
        b = statistics.median(p[1] for p in pairs)
        ratio = statistics.median(p[0] / p[1] for p in pairs)
        goal = f"<= {GOALS_S[name]:g} s: {'met' if a <= GOALS_S[name] else 'NOT met'}" if name in GOALS_S else ""
        print(f"{name:22s} {a:9.3f} {b:9.3f} {ratio:7.2f}  {goal}")


if __name__ == "__main__":
    main()
