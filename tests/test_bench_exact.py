"""benchmarks/bench_exact.py over several solver seeds (issue 22): each seed's run is a row, and the summary
gives per instance how many certified and the median and slowest time to the certificate — the rows' own
t(gap ≤ rel_gap) values; a bad seed is one line and exit 2."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mecsplit_exact")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_exact.py"


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_solver_seeds_repeat_each_run_and_summarise_them():
    r = _run("--sizes", "6x2", "--seeds", "1", "--solver-seeds", "0", "5", "9", "--limit", "30", "--rel-gap", "1e-6",
             "--scip-sizes")
    assert r.returncode == 0, r.stderr[-800:]
    rows = [line.split("|") for line in r.stdout.splitlines() if line.startswith("| exact | 6×2 |")]
    assert [c[3].strip() for c in rows] == ["1 (solver 0)", "1 (solver 5)", "1 (solver 9)"]
    assert all(c[4].strip() == "optimal" and c[14].strip() == "ok" for c in rows)
    objs = [float(c[7]) for c in rows]
    assert max(objs) <= min(objs) * (1 + 2e-6)                       # the same optimum, each within 1e-6
    t6 = [float(c[12]) for c in rows]                                # t(≤ 1e-6) of each run
    summary = [line for line in r.stdout.splitlines() if re.match(r"\| 6×2 \| 1 \| ", line)]
    assert len(summary) == 1
    cells = [c.strip() for c in summary[0].split("|")[1:-1]]
    assert cells[2] == "3/3"
    assert float(cells[3]) == pytest.approx(statistics.median(t6), abs=0.006)
    assert float(cells[4]) == pytest.approx(max(t6), abs=0.006)
    assert [float(x) for x in cells[5].split(" / ")] == pytest.approx(t6, abs=0.006)


@pytest.mark.parametrize("args, field", [
    (("--solver-seeds", "-1"), "--solver-seeds"), (("--solver-seeds", "x"), "--solver-seeds"),
    (("--solver-seeds", "1.5"), "--solver-seeds"), (("--solver-seeds", "nan"), "--solver-seeds"),
    (("--highs-threads", "-1"), "--highs-threads"),
    (("--highs-threads", "300"), "exact.highs_threads"),      # refused by the option's domain, not argparse
    (("--node-limit", "-1"), "exact.node_limit"),
])
def test_a_bad_argument_is_one_line(args, field):
    r = _run("--sizes", "2x1", *args, "--scip-sizes")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and "whole number" in lines[0], r.stderr


def test_time_to_gap_trusts_trace_bounds_only_up_to_the_final_one():
    import importlib.util
    from types import SimpleNamespace

    spec = importlib.util.spec_from_file_location("bench_exact", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    trace = [{"t_s": 1.0, "incumbent": 1.0, "bound": 0.5}, {"t_s": 2.0, "incumbent": 1.0, "bound": 1.0 - 1e-7 + 1e-11},
             {"t_s": 3.0, "incumbent": 1.0, "bound": 1.0 - 1e-7}]
    at = lambda final: mod.time_to_gap(SimpleNamespace(bound=final, trace=trace), 1e-6)
    assert at(1.0 - 1e-7) == 2.0     # 1e-11 above the final bound: rounding, counted as the final bound
    assert at(0.99) is None           # a trace bound far above the final one is not trusted (withdrawn)
    assert at(1.0) == 2.0
