"""The larger fuzzing campaign of issue 21 (outside CI): the generators of ``tests/test_fuzz_cli.py``,
thousands of inputs, counts in the issue's table form.

    python tests/fuzz/campaign.py                       # the issue's sizes: 7,020 inputs
    python tests/fuzz/campaign.py --scale 0.1 --json out.json

Every input runs through ``mecsplit.cli.main`` in-process; every ``--subprocess-every``-th one also
runs as ``python -m mecsplit.cli`` in a fresh interpreter. Columns: tried / one-line exit 2 /
traceback (exit 3 or an escaped exception) / silently accepted nonsense (an input labelled nonsense
that exited 0) / exit 2 not on one line / another file's contents echoed / other exit codes.
Inputs that fail any of these are written to ``--json`` with their files and output.
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (for `fuzz.generators`)

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hseed  # noqa: E402

from fuzz.generators import STRATEGIES, VERDICTS, run_case  # noqa: E402

SIZES = {"variant": 1800, "instance": 1600, "result": 1600, "cli": 700, "suite": 1320}  # the run
LABELS = {"variant": "variant TOML", "instance": "instance JSON", "result": "result JSON for `check`",
          "cli": "CLI arguments", "suite": "suite TOML (`bench list`, `bench run PATH`)"}


def run_class(kind: str, n: int, every: int, failures: list, seed: int) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    strategy = STRATEGIES[kind](max_depth=600, max_chain=1200) if kind == "variant" else \
        STRATEGIES[kind](max_depth=600) if kind in ("instance", "result", "suite") else STRATEGIES[kind]()

    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def one(case):
        counts["tried"] += 1
        with tempfile.TemporaryDirectory(prefix=f"mecsplit-fuzz-{kind}-") as d:
            sub = every > 0 and counts["tried"] % every == 0
            o = run_case(case, Path(d), subprocess_run=sub)
        counts[o.verdict] += 1
        counts["subprocess"] += sub
        if o.verdict not in ("ok", "exit2_one_line"):
            failures.append({"kind": kind, "what": case.what, "argv": case.argv, "code": o.code, "verdict": o.verdict,
                             "stderr": o.err[-3000:], "stdout": o.out[-1000:],
                             "files": {k: base64.b64encode(v[:20000]).decode() for k, v in case.files.items()}})

    hseed(seed)(one)()
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the issue's per-class counts")
    ap.add_argument("--classes", default=",".join(SIZES), help="comma-separated subset of " + ",".join(SIZES))
    ap.add_argument("--subprocess-every", type=int, default=50, help="every K-th input also as a subprocess (0: never)")
    ap.add_argument("--json", default="", help="write the counts and every failing input here")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    failures: list = []
    rows = {}
    t0 = time.perf_counter()
    for kind in a.classes.split(","):
        t = time.perf_counter()
        rows[kind] = run_class(kind, max(1, round(SIZES[kind] * a.scale)), a.subprocess_every, failures, a.seed)
        print(f"# {kind}: {dict(rows[kind])} in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    cols = ["tried", "exit2_one_line", "traceback", "nonsense_accepted", "exit2_not_one_line", "echoed_other_file",
            "other_exit_code"]
    print("| input | tried | one-line exit 2 | traceback | silently accepted nonsense | exit 2, not one line "
          "| other file echoed | other exit code | (of which subprocess) |")
    print("|---|" + "---|" * 8)
    total = collections.Counter()
    for kind, c in rows.items():
        total.update(c)
        print(f"| {LABELS[kind]} | " + " | ".join(str(c.get(k, 0)) for k in cols) + f" | {c.get('subprocess', 0)} |")
    print("| **all** | " + " | ".join(str(total.get(k, 0)) for k in cols) + f" | {total.get('subprocess', 0)} |")
    print(f"\n{total['tried']} inputs in {time.perf_counter() - t0:.0f} s; verdicts: "
          + ", ".join(f"{k}={total.get(k, 0)}" for k in VERDICTS))
    if a.json:
        Path(a.json).write_text(json.dumps({"counts": {k: dict(v) for k, v in rows.items()}, "failures": failures}, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
