"""Property-based fuzzing of the five input classes through the real CLI entry point (issue 21).

Generators: ``tests/fuzz/generators.py`` (shared with the larger campaign, ``tests/fuzz/campaign.py``).
For every generated input the exit code is 0, 1 or 2 — never 3 (an internal error) or an escaped
exception — exit 2 prints exactly one line on stderr, an input labelled nonsense is never accepted
(exit 0), and no other file's contents are echoed. Budget: about 40 examples per class in-process
plus a few real subprocess runs (well under 60 s in all on the 2-core CI machine).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("tomli_w")

from fuzz.generators import STRATEGIES, run_case  # noqa: E402

BUDGET = {"variant": 40, "instance": 40, "result": 40, "cli": 40, "suite": 25}
ACCEPTABLE = ("ok", "exit2_one_line")


def _report(case, o) -> str:
    return f"{case.kind}:{case.what} argv={case.argv} -> exit {o.code} [{o.verdict}]\n{o.err[-1500:]}{o.out[-500:]}"


@pytest.mark.parametrize("kind", sorted(STRATEGIES))
def test_fuzz_cli_in_process(kind, tmp_path_factory):
    n = [0]

    @settings(max_examples=BUDGET[kind], deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=STRATEGIES[kind]())
    def check(case):
        n[0] += 1
        o = run_case(case, tmp_path_factory.mktemp(f"{kind}{n[0]}"))
        assert o.verdict in ACCEPTABLE, _report(case, o)
        assert o.code in (0, 1, 2)

    check()


@settings(max_examples=3, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(case=st.one_of(*(STRATEGIES[k]() for k in ("variant", "instance", "result", "cli"))))
def test_fuzz_cli_subprocess(case, tmp_path_factory):
    """The same property for the installed entry point in a fresh interpreter."""
    o = run_case(case, tmp_path_factory.mktemp("sub"), subprocess_run=True)
    assert o.verdict in ACCEPTABLE, _report(case, o)
