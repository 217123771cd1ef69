"""The CLI as a user runs it, and plugin discovery (entry points, plugins dir, allow/block lists)."""

from __future__ import annotations

import json
import textwrap

import pytest

from conftest import run_cli

PLUGIN_SRC = '''
"""A throwaway research plugin: every user on server 0 of the reference point, a solver that
claims optimality (which the framework must flag, since it is registered as a heuristic)."""
from mecsplit.plugins import hookimpl
from mecsplit.result import Outcome, Status

__version__ = "9.9"

def solve(problem, options, tracer):
    sol = {k: v.tolist() for k, v in problem.instance.reference_solution().items()}
    ev = problem.evaluate(sol)
    tracer.incumbent(ev.objective, sol)
    return Outcome(Status.OPTIMAL if options["lie"] else Status.FEASIBLE, sol, ev.objective)

@hookimpl
def register_solvers(registry):
    registry.add_solver(name="NAME-solver", solve=solve, exact=False, options={"lie": False},
                        description="reference point", version=__version__)
'''


@pytest.fixture(scope="module")
def inst_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    r = run_cli("instance", "--variant", "default", "--users", "5", "--servers", "2", "--seed", "3", "-o", str(d / "i.json"))
    assert r.returncode == 0, r.stderr
    return d / "i.json"


def test_instance_command_is_deterministic(tmp_path, inst_file):
    r = run_cli("instance", "--variant", "default", "--users", "5", "--servers", "2", "--seed", "3", "-o", str(tmp_path / "j.json"))
    assert r.returncode == 0
    assert (tmp_path / "j.json").read_bytes() == inst_file.read_bytes()
    d = json.loads(inst_file.read_text())
    assert d["n_users"] == 5 and d["blocks"]["uplink"]["p_max_W"]["unit"] == "W"


def test_plugins_dir_file_is_listed_and_solves(tmp_path, inst_file):
    pdir = tmp_path / "plugs"
    pdir.mkdir()
    (pdir / "mine.py").write_text(PLUGIN_SRC.replace("NAME", "dir"))
    r = run_cli("--plugins-dir", str(pdir), "plugins", "--probe")
    assert r.returncode == 0, r.stderr
    assert "dir:mine 9.9" in r.stdout and "dir-solver" in r.stdout and "ok (default 2x1" in r.stdout
    out = tmp_path / "r.json"
    r = run_cli("--plugins-dir", str(pdir), "solve", "--instance", str(inst_file), "--solver", "dir-solver", "-o", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(out.read_text())
    assert res["status"] == "feasible" and res["verification"]["verdict"] == "ok"
    assert res["provenance"]["instance_hash"] and res["provenance"]["plugin"] == "dir:mine"
    # a heuristic that claims optimality is flagged, and the exit code says so
    r = run_cli("--plugins-dir", str(pdir), "solve", "--instance", str(inst_file), "--solver", "dir-solver",
                "--option", "lie=true", "-o", str(out))
    assert r.returncode == 1
    assert "heuristic_claims_optimal" in json.loads(out.read_text())["verification"]["flags"]
    # check re-derives the claim: the heuristic's "optimal" exits 1 there too (issue 21)
    r = run_cli("--plugins-dir", str(pdir), "check", "--instance", str(inst_file), str(out))
    assert r.returncode == 1 and "heuristic_claims_optimal" in r.stdout
    # without the claim check agrees with the file and exits 0; a tampered objective exits 1
    res = json.loads(out.read_text())
    res["status"] = "feasible"
    out.write_text(json.dumps(res))
    assert run_cli("check", "--instance", str(inst_file), str(out)).returncode == 0
    res["objective"] *= 0.9
    out.write_text(json.dumps(res))
    r = run_cli("check", "--instance", str(inst_file), str(out))
    assert r.returncode == 1 and "objective_mismatch" in r.stdout


def _entry_point_package(root, name):
    """A real installed distribution (dist-info + entry point), as pip would leave it."""
    (root / f"{name}_pkg.py").write_text(PLUGIN_SRC.replace("NAME", name))
    di = root / f"{name}_pkg-1.2.3.dist-info"
    di.mkdir()
    (di / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-pkg\nVersion: 1.2.3\n")
    (di / "entry_points.txt").write_text(f"[mecsplit]\n{name} = {name}_pkg\n")


def test_third_party_entry_point_plugin_allow_and_block(tmp_path):
    _entry_point_package(tmp_path, "thirdparty")
    env = {"PYTHONPATH": str(tmp_path), "MECSPLIT_LOAD_PLUGINS": "thirdparty"}
    r = run_cli("plugins", "--probe", env=env)
    assert "thirdparty 1.2.3" in r.stdout and "thirdparty-solver" in r.stdout and "ok (default 2x1" in r.stdout
    r = run_cli("plugins", "--no-probe", env={**env, "MECSPLIT_BLOCK_PLUGINS": "thirdparty"})
    assert "thirdparty-solver" not in r.stdout
    r = run_cli("--block-plugin", "thirdparty", "plugins", "--no-probe", env=env)
    assert "thirdparty-solver" not in r.stdout
    r = run_cli("plugins", "--no-probe", env={**env, "MECSPLIT_LOAD_PLUGINS": "nothing-else"})
    assert "thirdparty-solver" not in r.stdout and "mecsplit-builtin" in r.stdout
    r = run_cli("plugins", "--no-probe", env={**env, "MECSPLIT_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert "thirdparty" not in r.stdout


def test_builtin_plugins_register_like_third_party_ones():
    """The shipped solver plugins come in through entry points, exactly as a third-party one."""
    r = run_cli("plugins", "--no-probe", entry_points=True)
    assert "baselines 0.1.0  [entry point mecsplit_baselines.plugin]" in r.stdout
    assert "solver greedy" in r.stdout and "solver random" in r.stdout


def test_broken_plugin_is_reported_not_fatal(tmp_path):
    (tmp_path / "broken.py").write_text("raise RuntimeError('oops')\n")
    r = run_cli("--plugins-dir", str(tmp_path), "plugins", "--no-probe")
    assert r.returncode == 0 and "FAILED TO LOAD" in r.stdout and "oops" in r.stdout


@pytest.mark.parametrize("args, needle", [
    (["instance", "--variant", "nope"], "field 'variant'"),
    (["solve", "--instance", "/nonexistent.json", "--solver", "x"], "no such file"),
    (["instance", "--users", "0"], "argument --users"),
    (["instance", "--seed", "-1"], "argument --seed"),
])
def test_bad_cli_input_is_one_line_exit_2(args, needle):
    r = run_cli(*args)
    assert r.returncode == 2
    assert needle in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_unknown_solver_and_option_and_wrong_variant(inst_file, tmp_path):
    r = run_cli("solve", "--instance", str(inst_file), "--solver", "nope")
    assert r.returncode == 2 and "unknown solver" in r.stderr
    pdir = tmp_path / "p"
    pdir.mkdir()
    (pdir / "mine.py").write_text(PLUGIN_SRC.replace("NAME", "dir"))
    r = run_cli("--plugins-dir", str(pdir), "solve", "--instance", str(inst_file), "--solver", "dir-solver", "--option", "speed=3")
    assert r.returncode == 2 and "lie=False" in r.stderr
    r = run_cli("--plugins-dir", str(pdir), "solve", "--instance", str(inst_file), "--solver", "dir-solver", "--option", "lie=3")
    assert r.returncode == 2 and "dir-solver.lie" in r.stderr
    r = run_cli("solve", "--variant", "liu-zhao-2024", "--instance", str(inst_file), "--solver", "nope")
    assert r.returncode == 2 and "--variant default" in r.stderr


def test_variants_and_blocks_listing():
    r = run_cli("variants")
    assert r.returncode == 0 and "liu-zhao-2024" in r.stdout and "default" in r.stdout
    r = run_cli("variants", "--show", "default")
    assert "liu-zhao-2024 -> default" in r.stdout and "delay=True" in r.stdout
    r = run_cli("blocks")
    assert "[blocks.uplink]" in r.stdout and "p_max_W" in r.stdout and "W " in r.stdout


def test_solver_crash_is_reported_with_incumbent(tmp_path, inst_file):
    (tmp_path / "crash.py").write_text(textwrap.dedent('''
        from mecsplit.plugins import hookimpl
        def solve(problem, options, tracer):
            sol = {k: v.tolist() for k, v in problem.instance.reference_solution().items()}
            tracer.incumbent(problem.evaluate(sol).objective, sol)
            raise ZeroDivisionError("boom")
        @hookimpl
        def register_solvers(registry):
            registry.add_solver(name="crasher", solve=solve, exact=False)
    '''))
    out = tmp_path / "r.json"
    r = run_cli("--plugins-dir", str(tmp_path), "solve", "--instance", str(inst_file), "--solver", "crasher", "-o", str(out))
    assert r.returncode == 1
    res = json.loads(out.read_text())
    assert res["status"] == "error" and "boom" in res["message"]
    assert res["solution"] is not None and res["verification"]["objective_agrees"] is True
