"""Generated CLI inputs for the hardening fuzz test (issue 21) and the campaign (``campaign.py``).

Five input classes — variant TOML, instance JSON, result JSON for ``check``, CLI arguments, suite
TOML — each a hypothesis strategy producing a :class:`Case`: the files to write into a fresh work
folder, the ``mecsplit`` arguments, and whether the input is *nonsense* (a mutation that makes it
wrong: an unknown key, a wrong type, NaN, a value out of range, a changed scalar, a false claim ...),
which the CLI must refuse (exit 1 or 2, never 0). Mutations that may or may not leave a valid input
(a truncated file, an in-range change) are not labelled nonsense; for them only the exit code is
checked. :func:`run_case` runs a case through ``mecsplit.cli.main`` in-process (or as a subprocess)
and :func:`classify` sorts the outcome into the columns of issue 21's table.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import strategies as st

SECRET = "TOPSECRET-4711"  # in a non-variant file next to the inputs: must never be echoed
NOT_VARIANT = f'secret_key = "{SECRET}"\n'.encode()


@dataclass
class Case:
    kind: str                      # variant | instance | result | cli | suite
    argv: list[str]
    files: dict[str, bytes]
    nonsense: bool                 # must be refused (exit 1 or 2)
    what: str                      # the mutation, for reports
    listed: str | None = None      # bench list: this suite must be listed as invalid when nonsense
    dirs: tuple[str, ...] = ()     # empty folders to create


@dataclass
class Outcome:
    code: int | str                # exit code, or "exception:<type>" if main raised
    out: str
    err: str
    verdict: str = ""              # see classify()
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ bases
@dataclass
class Bases:
    variants: dict[str, dict]      # name -> raw TOML table of a shipped variant file
    instance: dict                 # default, 4 x 2, seed 1 (JSON dict)
    results: dict[str, dict]       # greedy / exact on that instance, greedy on the 1e-7-weight variant
    tiny_variant: bytes
    tiny_instance: dict
    suite: dict
    params: dict[str, list]        # block -> its Params (from the registry)


TINY = b'[variant]\nextends = "default"\ndescription = "weights 1e-7"\n[objective]\nweights = {delay = 1e-7, energy = 1e-7, stability = 1e-7}\n'


@lru_cache(maxsize=1)
def bases() -> Bases:
    import tempfile

    from mecsplit.instance import generate
    from mecsplit.plugins import get_manager
    from mecsplit.solve import solve
    from mecsplit.variant import available_variants, load_variant

    variants = {n: tomllib.loads(p.read_text()) for n, p in available_variants().items()}
    v = load_variant("default")
    inst = generate(v, 4, 2, 1)
    results = {"greedy": solve(v, inst, "greedy").to_dict()}
    if "exact" in get_manager().solvers:
        results["exact"] = solve(v, inst, "exact", time_limit_s=60).to_dict()
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "tiny.toml").write_bytes(TINY)
        vt = load_variant(Path(d) / "tiny.toml")
        it = generate(vt, 4, 2, 1)
        results["tiny"] = solve(vt, it, "greedy").to_dict()
    suite = {"name": "fz", "description": "fuzz suite",
             "defaults": {"variants": ["default"], "sizes": [[2, 1]], "seeds": [1], "solvers": ["greedy"],
                          "time_limit_s": 5.0, "grace_s": 2.0, "reference": "none"},
             "group": [{"name": "g"}]}
    params = {n: list(cls.params) for n, cls in get_manager().blocks.items()}
    return Bases(variants, json.loads(inst.to_json()), {k: json.loads(json.dumps(r, default=str)) for k, r in results.items()},
                 TINY, json.loads(it.to_json()), suite, params)


# ------------------------------------------------------------------------------------ tree helpers
def paths(tree: Any, leaves: bool, prefix: tuple = ()) -> list[tuple]:
    """Paths to leaves (scalars, list elements) or to dicts, in a JSON/TOML tree."""
    out = []
    if isinstance(tree, dict):
        if not leaves:
            out.append(prefix)
        for k, v in tree.items():
            out += paths(v, leaves, prefix + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += paths(v, leaves, prefix + (i,))
    elif leaves:
        out.append(prefix)
    return out


def get(tree, path):
    for k in path:
        tree = tree[k]
    return tree


def put(tree, path, value):
    get(tree, path[:-1])[path[-1]] = value


def deep_toml(depth: int, kind: str) -> bytes:
    """A top-level key holding ``depth`` nested arrays or inline tables, as TOML text (a writer would
    recurse once per level)."""
    if kind == "list":
        return b"zz_deep = " + b"[" * depth + b"1" + b"]" * depth + b"\n"
    return b"zz_deep = " + b"{k = " * depth + b"1" + b"}" * depth + b"\n"


def deep_json(text: bytes, depth: int) -> bytes:
    """``text`` (a JSON object) with a first key holding ``depth`` nested arrays."""
    i = text.index(b"{")
    return text[:i + 1] + b'"zz_deep": ' + b"[" * depth + b"1" + b"]" * depth + b", " + text[i + 1:]


def wrong_kind(draw, v):
    """A value of another kind than ``v`` (never a valid replacement for a typed field; not ``[1]``:
    that is a valid per-server list when there is one server)."""
    pool: list[Any] = [["zz"], {"zz_unknown": 1}]
    if not isinstance(v, str):
        pool.append("str")
    if not isinstance(v, bool):
        pool.append(True)
    if isinstance(v, (str, bool)):
        pool.append(3)
    return draw(st.sampled_from(pool))


def toml_bytes(table: dict) -> bytes:
    return tomli_w.dumps(table).encode()


# ---------------------------------------------------------------------------------- variant TOML
VARIANT_OPS = ["none", "unknown_key", "wrong_type", "nonfinite", "out_of_range", "all_disabled", "top_scalar",
               "extends_bad", "deep", "non_utf8", "truncate", "sizes_bad", "chain", "in_range", "disable_one",
               "objective_bad"]
NONSENSE_VARIANT = {"unknown_key", "wrong_type", "nonfinite", "out_of_range", "all_disabled", "top_scalar",
                    "extends_bad", "deep", "non_utf8", "sizes_bad", "objective_bad"}


@st.composite
def variant_case(draw, max_depth: int = 80, max_chain: int = 30) -> Case:
    b = bases()
    base_name = draw(st.sampled_from(sorted(b.variants)))
    t = copy.deepcopy(b.variants[base_name])
    t.setdefault("variant", {}).pop("name", None)  # the copy is named after its file
    t.pop("notes", None)
    op = draw(st.sampled_from(VARIANT_OPS))
    files = {"notvariant.toml": NOT_VARIANT}
    text: bytes | None = None
    target = "v.toml"
    if op == "unknown_key":
        p = draw(st.sampled_from(paths(t, leaves=False)))
        get(t, p)["zz_unknown"] = draw(st.sampled_from([1, "x", [1], {"a": 1}]))
    elif op in ("wrong_type", "nonfinite"):
        leaves = [p for p in paths(t, leaves=True)
                  if op == "wrong_type" or (isinstance(get(t, p), (int, float)) and not isinstance(get(t, p), bool))]
        if not leaves:
            op = "none"
        else:
            p = draw(st.sampled_from(leaves))
            put(t, p, wrong_kind(draw, get(t, p)) if op == "wrong_type" else draw(st.sampled_from([float("nan"), float("inf"), -float("inf")])))
    elif op in ("out_of_range", "in_range"):
        choices = [(bn, prm) for bn, ps in b.params.items() for prm in ps
                   if not prm.choices and not isinstance(prm.default, bool) and (prm.min is not None or prm.max is not None)]
        bn, prm = draw(st.sampled_from(choices))
        if op == "out_of_range":
            lo_side = prm.min is not None and (prm.max is None or draw(st.booleans()))
            val = prm.min - abs(prm.min) - 1 if lo_side else prm.max + abs(prm.max) + 1
        else:
            lo = prm.min if prm.min is not None else prm.max - 10
            hi = prm.max if prm.max is not None else lo + 10
            val = draw(st.floats(lo, hi))
        if prm.integer:
            val = int(val)
        t.setdefault("blocks", {}).setdefault(bn, {})[prm.name] = val
    elif op == "all_disabled":
        t["blocks"] = {bn: {"enabled": False} for bn in b.params}
    elif op == "top_scalar":
        t[draw(st.sampled_from(["variant", "sizes", "generator", "blocks", "objective"]))] = draw(st.sampled_from([5, [1], "x"]))
    elif op == "extends_bad":
        t["variant"]["extends"] = draw(st.sampled_from(["nope", "../default", "/etc/passwd", "notvariant", "a/b", "",
                                                         "default.toml", "x" * 300, "..", 5, ["default"]]))
    elif op == "deep":
        text = deep_toml(draw(st.integers(33, max_depth)), draw(st.sampled_from(["list", "table"]))) + toml_bytes(t)
    elif op == "sizes_bad":
        t["sizes"] = {"users": draw(st.sampled_from([0, -1, 10**9, 1.5, "3", True, 10**30])), "servers": 2}
    elif op == "chain":
        k = draw(st.integers(2, max_chain))
        for i in range(k):
            parent = f"c{i - 1}" if i else "default"
            files[f"c{i}.toml"] = f'[variant]\nextends = "{parent}"\n'.encode()
        target = f"c{k - 1}.toml"
    elif op == "disable_one":
        t.setdefault("blocks", {})[draw(st.sampled_from(sorted(b.params)))] = {"enabled": False}
    elif op == "objective_bad":
        t["objective"] = draw(st.sampled_from([{"kind": "bogus"}, {"weights": {"delay": -1}}, {"normalise": 3},
                                               {"weights": {"latency": 1}}, {"weights": 5}]))
    if text is None:
        text = toml_bytes(t)
    if op == "non_utf8":
        text = b"# \xff\xfe not UTF-8\n" + text
    elif op == "truncate":
        text = text[:draw(st.integers(0, max(0, len(text) - 1)))]
    files.setdefault(target, text)
    if draw(st.booleans()):
        argv = ["variants", "--show", target]
    else:
        argv = ["instance", "--variant", target, "--users", "3", "--servers", "2", "-o", "i.json"]
    return Case("variant", argv, files, op in NONSENSE_VARIANT, f"{base_name}:{op}")


# ---------------------------------------------------------------------------------- instance JSON
INSTANCE_OPS = ["none", "unknown_key", "delete_key", "wrong_type", "nonfinite", "scalar_changed", "generator_changed",
                "norm_changed", "shape", "size_changed", "range", "deep", "non_utf8", "truncate", "data_changed",
                "seed_changed"]
NONSENSE_INSTANCE = set(INSTANCE_OPS) - {"none", "data_changed", "seed_changed"}


def _dump(d: Any) -> bytes:
    return json.dumps(d, indent=1, allow_nan=True).encode()


@st.composite
def instance_case(draw, max_depth: int = 80) -> Case:
    b = bases()
    d = copy.deepcopy(b.instance)
    op = draw(st.sampled_from(INSTANCE_OPS))
    text = None
    if op == "unknown_key":
        get(d, draw(st.sampled_from(paths(d, leaves=False))))["zz_unknown"] = draw(st.sampled_from([1, "x", None, [1]]))
    elif op == "delete_key":
        p = draw(st.sampled_from([p for p in paths(d, leaves=False) if p] + [(k,) for k in d]))
        del get(d, p[:-1])[p[-1]]
    elif op == "wrong_type":
        p = draw(st.sampled_from(paths(d, leaves=True)))
        v = get(d, p)
        put(d, p, draw(st.sampled_from([x for x in ("1", True, None, [1], {"a": 1}, 1, False)
                                        if type(x) is not type(v) and not (isinstance(v, float) and type(x) is int)])))
    elif op == "nonfinite":
        p = draw(st.sampled_from([p for p in paths(d, leaves=True) if isinstance(get(d, p), float)]))
        put(d, p, 1.2345e-300)
        token = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999"]))
        text = _dump(d).replace(b"1.2345e-300", token.encode(), 1)
    elif op == "scalar_changed":
        scal = [(bn, k) for bn, bt in d["blocks"].items() for k, e in bt.items() if "value" in e]
        bn, k = draw(st.sampled_from(scal))
        v = d["blocks"][bn][k]["value"]
        d["blocks"][bn][k]["value"] = (not v) if isinstance(v, bool) else (v + "x" if isinstance(v, str) else v * 2 + 1)
    elif op == "generator_changed":
        k = draw(st.sampled_from(sorted(d["generator"]["params"])))
        v = d["generator"]["params"][k]
        d["generator"]["params"][k] = (not v) if isinstance(v, bool) else v * 2 + 1
    elif op == "norm_changed":
        k = draw(st.sampled_from(sorted(d["normalisation"])))
        d["normalisation"][k] *= 1 + draw(st.sampled_from([1e-6, 1e-3, 1.0]))
    elif op == "shape":
        arrs = [p for p in paths(d, leaves=False) if isinstance(get(d, p), dict) and "values" in get(d, p)]
        e = get(d, draw(st.sampled_from(arrs)))
        e["values"] = e["values"][:-1] if draw(st.booleans()) else e["values"] + e["values"][:1]
    elif op == "size_changed":
        d[draw(st.sampled_from(["n_users", "n_servers"]))] = draw(st.sampled_from([3, 5, 0, -1, 10**12, 2.5]))
    elif op == "range":
        if draw(st.booleans()):
            d["topology"]["gain"]["values"][0][0] = draw(st.sampled_from([0.0, -1e-9]))
        else:
            choices = [(bn, prm) for bn, ps in b.params.items() if bn in d["blocks"] for prm in ps
                       if prm.per != "scalar" and prm.min is not None]
            bn, prm = draw(st.sampled_from(choices))
            vals = d["blocks"][bn][prm.name]["values"]
            bad = prm.min - abs(prm.min) - 1
            if isinstance(vals[0], list):
                vals[0][0] = bad
            else:
                vals[0] = bad
    elif op == "deep":
        text = deep_json(_dump(d), draw(st.integers(33, max_depth)))
    elif op == "data_changed":
        e = d["blocks"]["uplink"]["p_max_W"]["values"]
        e[0] *= draw(st.floats(0.9, 1.0))
    elif op == "seed_changed":
        d["seed"] = draw(st.integers(0, 10))
    if text is None:
        text = _dump(d)
    if op == "non_utf8":
        text = text.replace(b'"default"', b'"def\xffault"', 1)
    elif op == "truncate":
        text = text[:draw(st.integers(0, len(text) - 3))]
    argv = ["solve", "--variant", "default", "--instance", "inst.json", "--solver", "greedy"]
    return Case("instance", argv, {"inst.json": text}, op in NONSENSE_INSTANCE, op)


# ------------------------------------------------------------------------------------ result JSON
RESULT_OPS = ["none", "objective_wrong", "objective_close", "status_optimal", "bound_bad", "status_bad", "solution_elem",
              "solution_key", "solution_value", "provenance", "gap_bad", "metrics_bad", "unknown_key", "types",
              "nonfinite", "deep", "benign", "schema_bad", "null_solution"]


@st.composite
def result_case(draw, max_depth: int = 80) -> Case:
    b = bases()
    base = draw(st.sampled_from(sorted(b.results)))
    d = copy.deepcopy(b.results[base])
    exact = base == "exact"
    obj = d["objective"]
    op = draw(st.sampled_from(RESULT_OPS))
    nonsense = op not in ("none", "objective_close", "solution_value", "benign")
    text = None
    if op == "objective_wrong":
        d["objective"] = draw(st.sampled_from([0.0, -obj, obj / 2, obj * (1 + 1e-5), obj * (1 - 1e-5), 2 * obj,
                                               obj + 1e-3 * abs(obj)]))
    elif op == "objective_close":
        d["objective"] = obj * (1 + 1e-9)
    elif op == "status_optimal":
        d["status"] = "feasible" if exact else "optimal"
        nonsense = not exact  # an exact solver's result claiming less is fine
    elif op == "bound_bad":
        choice = draw(st.sampled_from(["nan", "str", "above", "low", "bool"]))
        if choice == "nan":
            d["bound"] = 1.2345e-300
            text = _dump(d).replace(b"1.2345e-300", b"NaN", 1)
        else:
            d["bound"] = {"str": "abc", "above": obj * 1.01 + 1e-9, "low": obj * 0.5, "bool": True}[choice]
    elif op == "status_bad":
        d["status"] = draw(st.sampled_from(["bogus", 3, None, "OPTIMAL"]))
    elif op == "solution_elem":
        k = draw(st.sampled_from(sorted(d["solution"])))
        d["solution"][k][0] = draw(st.sampled_from([True, "x", None, 1.2345e-300, [1]]
                                                   + ([4, 0.5, -1] if k == "server" else [])))
        if d["solution"][k][0] == 1.2345e-300:
            text = _dump(d).replace(b"1.2345e-300", draw(st.sampled_from([b"NaN", b"Infinity", b"1e999"])), 1)
    elif op == "solution_key":
        if draw(st.booleans()):
            del d["solution"][draw(st.sampled_from(sorted(d["solution"])))]
        else:
            d["solution"]["zz_unknown"] = [0.0] * len(d["solution"]["server"])
    elif op == "solution_value":
        k = draw(st.sampled_from([k for k in sorted(d["solution"]) if k != "server"]))
        d["solution"][k][0] *= draw(st.sampled_from([0.5, 0.999, 1.001]))
    elif op == "provenance":
        k = draw(st.sampled_from(["instance_hash", "variant_structure", "size", "objective_spec", "solver", "exact"]))
        prov = d["provenance"]
        if k == "solver":
            prov[k] = "my-own-tool"
            nonsense = exact  # claims optimal + bound: unverifiable without an installed exact solver
        elif k == "exact":
            prov[k] = not prov[k]
        else:
            prov[k] = {"instance_hash": "0" * 16, "variant_structure": "f" * 16, "size": [5, 2],
                       "objective_spec": {"kind": "max_delay", "weights": {}}}[k]
    elif op == "gap_bad":
        d["gap"] = draw(st.sampled_from([0.5, 0.25, -1, "x"]))
    elif op == "metrics_bad":
        k = draw(st.sampled_from([k for k, v in d["metrics"].items() if isinstance(v, float) and v]))
        d["metrics"][k] = d["metrics"][k] * 1.01 if draw(st.booleans()) else "x"
    elif op == "unknown_key":
        d["zz_unknown"] = 1
    elif op == "types":
        k, v = draw(st.sampled_from([("wall_time_s", -1), ("iterations", 1.5), ("message", 3), ("trace", {}),
                                     ("provenance", []), ("metrics", [1]), ("extra", "x"), ("verification", 5)]))
        d[k] = v
    elif op == "nonfinite":
        d["extra"] = {"diag": 1.2345e-300}
        text = _dump(d).replace(b"1.2345e-300", draw(st.sampled_from([b"NaN", b"-Infinity", b"1e999"])), 1)
    elif op == "deep":
        text = deep_json(_dump(d), draw(st.integers(33, max_depth)))
    elif op == "benign":
        k, v = draw(st.sampled_from([("message", "hello"), ("extra", {"k": 1}), ("trace", []),
                                     ("verification", {"verdict": "bogus"}), ("wall_time_s", 12.5)]))
        d[k] = v
    elif op == "schema_bad":
        d["schema"] = draw(st.sampled_from(["mecsplit.result/0", 1, None]))
    elif op == "null_solution":
        d["solution"] = None
        nonsense = d["status"] in ("optimal", "feasible")
    files = {"r.json": text if text is not None else _dump(d)}
    if base == "tiny":
        files["tiny.toml"] = b.tiny_variant
        files["inst.json"] = _dump(b.tiny_instance)
        variant = "tiny.toml"
    else:
        files["inst.json"] = _dump(b.instance)
        variant = "default"
    return Case("result", ["check", "--variant", variant, "--instance", "inst.json", "r.json"], files, nonsense, f"{base}:{op}")


# ---------------------------------------------------------------------------------- CLI arguments
GOOD = {
    "--variant": ["default", "v.toml", "liu-zhao-2024"],
    "--users": ["1", "3", "6"], "--servers": ["1", "2", "3"], "--seed": ["0", "5", str(2**63 - 1)],
    "-o": ["out.json"], "--instance": ["inst.json"], "--solver": ["greedy", "random"],
    "--time-limit": ["0.5", "5", "604800"], "result": ["greedy.json"], "--show": ["default", "v.toml"],
    "--db": ["store.sqlite"], "--out": ["rep"], "--parquet": ["x.parquet"], "--option": [],
}
BAD = {
    "--variant": ["nope", "../../etc/passwd", "/etc/passwd", "adir", "", "notvariant.toml", "v.toml/x", "x" * 300],
    "--users": ["0", "-3", "18446744073709551616", "10000000", "x", "1e3", "nan", "", "1.5", "100001"],
    "--servers": ["0", "-1", "10001", "abc"],
    "--seed": ["-1", "1.5", "abc", "18446744073709551616", "nan", ""],
    "-o": ["nosuchdir/x.json", "adir", "", "inst.json/x.json"],
    "--instance": ["missing.json", "adir", "notinst.json", "empty.json"],
    "--solver": ["nope", "", "../x"],
    "--time-limit": ["nan", "-1", "0", "inf", "abc", "1e10", "-0"],
    "--option": ["tol=NaN", "tol", "=3", "tol=Infinity", "x=[1e999]", "k=1"],
    "result": ["missing.json", "adir", "inst.json", "empty.json"],
    "--show": ["nope", "/etc/passwd", "notvariant.toml", "adir"],
    "--db": ["notdb.sqlite", "other.sqlite", "adir", "missing.sqlite"],
    "--out": ["inst.json"],
    "--parquet": ["nosuchdir/x.parquet", "adir"],
    "--plugins-dir": ["missing", "inst.json"],
}
COMMANDS = {  # command -> (argv prefix, [(option, required)])
    "instance": (["instance"], [("--variant", False), ("--users", False), ("--servers", False), ("--seed", False), ("-o", False)]),
    "solve": (["solve"], [("--variant", False), ("--instance", True), ("--solver", True), ("--time-limit", False),
                          ("--option", False), ("--seed", False), ("-o", False)]),
    "check": (["check"], [("--variant", False), ("--instance", True), ("result", True)]),
    "variants": (["variants"], [("--show", False)]),
    "blocks": (["blocks"], []),
    "plugins": (["plugins", "--no-probe"], []),
    "bench-list": (["bench", "list"], []),
    "bench-report": (["bench", "report"], [("--db", True), ("--out", False)]),
    "bench-export": (["bench", "export"], [("--parquet", True), ("--db", True)]),
}


def cli_files() -> tuple[dict[str, bytes], tuple[str, ...]]:
    b = bases()
    files = {"inst.json": _dump(b.instance), "greedy.json": _dump(b.results["greedy"]),
             "v.toml": b'[variant]\nextends = "default"\n[generator]\nside_km = 2.0\n',
             "notvariant.toml": NOT_VARIANT, "notinst.json": NOT_VARIANT, "empty.json": b"", "notdb.sqlite": b"x"}
    return files, ("adir",)


@st.composite
def cli_case(draw) -> Case:
    cmd = draw(st.sampled_from(sorted(COMMANDS)))
    prefix, opts = COMMANDS[cmd]
    argv: list[str] = []
    nonsense = False
    what = [cmd]
    if draw(st.integers(0, 9)) == 0:
        v = draw(st.sampled_from(BAD["--plugins-dir"]))
        argv += ["--plugins-dir", v]
        nonsense, what = True, what + ["--plugins-dir=bad"]
    argv += prefix
    positional = []
    for opt, required in opts:
        mode = draw(st.sampled_from(["good", "bad", "omit"] if not required else ["good", "good", "bad", "omit"]))
        if mode == "good" and not GOOD[opt]:
            mode = "omit"
        if mode == "omit":
            nonsense |= required
            if required:
                what.append(f"{opt}=missing")
            continue
        val = draw(st.sampled_from(GOOD[opt] if mode == "good" else BAD[opt]))
        if mode == "bad":
            nonsense = True
            what.append(f"{opt}={val[:20]!r}")
        if opt == "result":
            positional.append(val)
        else:
            argv += [opt, val]
    if draw(st.integers(0, 9)) == 0:
        argv.append(draw(st.sampled_from(["--frobnicate", "-z", "extra-arg"])))
        nonsense, what = True, what + ["unknown-arg"]
    files, dirs = cli_files()
    return Case("cli", argv + positional, files, nonsense, " ".join(what), dirs=dirs)


# ------------------------------------------------------------------------------------ suite TOML
SUITE_OPS = ["none", "unknown_key", "wrong_type", "nonfinite", "negative", "seeds_bad", "sizes_bad", "name_bad",
             "group_name_bad", "variants_bad", "deep", "non_utf8", "solvers_bad", "figure_bad", "reference_bad",
             "sweep_bad", "overrides_bad", "truncate", "valid_change"]
NONSENSE_SUITE = set(SUITE_OPS) - {"none", "truncate", "valid_change"}


@st.composite
def suite_case(draw, max_depth: int = 80) -> Case:
    t = copy.deepcopy(bases().suite)
    op = draw(st.sampled_from(SUITE_OPS))
    where = draw(st.sampled_from(["defaults", "group"]))
    tbl = t["defaults"] if where == "defaults" else t["group"][0]
    if op == "unknown_key":
        get(t, draw(st.sampled_from(paths(t, leaves=False))))["zz_unknown"] = 1
    elif op == "wrong_type":
        p = draw(st.sampled_from([p for p in paths(t, leaves=True) if p[0] != "description"]))
        put(t, p, wrong_kind(draw, get(t, p)))
    elif op in ("nonfinite", "negative"):
        k = draw(st.sampled_from(["time_limit_s", "grace_s", "reference_time_limit_s", "epsilon"]))
        if op == "nonfinite":
            tbl[k] = draw(st.sampled_from([float("nan"), float("inf"), -float("inf")]))
        else:
            tbl[k] = draw(st.sampled_from([-1.0, -1e-9] + ([0.0] if k.endswith("time_limit_s") else [])))
    elif op == "seeds_bad":
        tbl["seeds"] = draw(st.sampled_from([{"count": 10**9}, {"count": -1}, [1.5], [-1], [2**64 - 1], [], {"n": 3}, "1"]))
    elif op == "sizes_bad":
        tbl["sizes"] = draw(st.sampled_from([[[0, 1]], [[10**9, 1]], [[2]], [["a", 1]], [], [[2, 1.5]], [[100000, 100]]]))
    elif op == "name_bad":
        t["name"] = draw(st.sampled_from(["..", "a/b", "", ".hidden", "x" * 200, "../../up", 5]))
    elif op == "group_name_bad":
        t["group"][0]["name"] = draw(st.sampled_from(["..", "a/b", "", "x" * 200]))
    elif op == "variants_bad":
        tbl["variants"] = draw(st.sampled_from([["../../etc/passwd"], ["/etc/passwd"], ["notvariant.toml"], ["nope"],
                                                [1], [], ["notvariant"]]))
    elif op == "deep":
        deep = deep_toml(draw(st.integers(33, max_depth)), draw(st.sampled_from(["list", "table"])))
    elif op == "solvers_bad":
        tbl["solvers"] = draw(st.sampled_from([[], [{"name": 1}], [{"name": "greedy", "options": {"tol": float("nan")}}],
                                               [{"name": "greedy", "bogus": 1}], ["greedy", "greedy"], 5, [{"name": "greedy", "options": 3}]]))
    elif op == "figure_bad":
        tbl["figure"] = draw(st.sampled_from([{"kind": "bogus"}, {"kind": "weights"}, {"kind": "users", "title": 5},
                                              {"kind": "bars", "log": "yes"}, {"kind": "users", "metrics": [1]}]))
    elif op == "reference_bad":
        tbl["reference"] = draw(st.sampled_from(["oracle", 1, ""]))
    elif op == "sweep_bad":
        tbl["sweep"] = draw(st.sampled_from([{"power": [1.0]}, {"energy": [-1.0]}, {"energy": []}, {"energy": 1.0}]))
    elif op == "overrides_bad":
        tbl["overrides"] = draw(st.sampled_from([{"bogus": 1}, {"objective": {"kind": "x"}}, {"variant": {"name": "y"}},
                                                 {"blocks": {"uplink": {"p_max_W": -1.0}}}]))
    elif op == "valid_change":
        k, v = draw(st.sampled_from([("sweep", {"energy": [0.5, 1.0]}), ("seeds", {"count": 2}), ("time_limit_s", 3.0),
                                     ("description", "x")]))
        (t if k == "description" else tbl)[k] = v
    text = toml_bytes(t)
    if op == "deep":
        text = deep + text
    if op == "non_utf8":
        text = b"# \xff\n" + text
    elif op == "truncate":  # cut after the solvers line: a cut suite must not fall back to every installed solver
        keep = text.index(b"solvers") + text[text.index(b"solvers"):].index(b"\n") + 1
        text = text[:draw(st.integers(keep, len(text) - 1))]
    files = {"notvariant.toml": NOT_VARIANT}
    if draw(st.integers(0, 2)) == 0:
        files["benchmarks/suites/fzsuite.toml"] = text
        return Case("suite", ["bench", "list"], files, op in NONSENSE_SUITE, op, listed="fzsuite")
    files["s.toml"] = text
    return Case("suite", ["bench", "run", "s.toml", "--db", "s.sqlite", "--out", "rep", "--no-progress", "--workers", "1"],
                files, op in NONSENSE_SUITE, op)


STRATEGIES = {"variant": variant_case, "instance": instance_case, "result": result_case, "cli": cli_case,
              "suite": suite_case}


# --------------------------------------------------------------------------------------- running
def prepare(case: Case, workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    for rel, data in case.files.items():
        p = workdir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    for d in case.dirs:
        (workdir / d).mkdir(exist_ok=True)
    if case.kind == "cli":
        _stores(workdir)


def _stores(workdir: Path) -> None:
    import sqlite3

    from mecsplit.bench.store import Store

    if not (workdir / "store.sqlite").exists():
        Store(workdir / "store.sqlite").close()
    if not (workdir / "other.sqlite").exists():
        c = sqlite3.connect(str(workdir / "other.sqlite"))
        c.execute("CREATE TABLE t(x)")
        c.commit()
        c.close()


def run_case(case: Case, workdir: Path, subprocess_run: bool = False) -> Outcome:
    """Run ``mecsplit ARGV`` with ``workdir`` as the working folder."""
    prepare(case, workdir)
    if subprocess_run:
        r = subprocess.run([sys.executable, "-m", "mecsplit.cli", *case.argv], capture_output=True, text=True,
                           cwd=workdir, timeout=600)
        return classify(case, Outcome(r.returncode, r.stdout, r.stderr))
    from mecsplit.cli import main
    from mecsplit.plugins import get_manager

    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(workdir)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code: int | str = main(case.argv)
            except SystemExit as e:  # argparse
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
            except Exception as e:  # noqa: BLE001 - that is what is being looked for
                import traceback

                code = f"exception:{type(e).__name__}"
                err.write(traceback.format_exc())
    finally:
        os.chdir(old)
        if "--plugins-dir" in case.argv:
            get_manager(reload=True)
    return classify(case, Outcome(code, out.getvalue(), err.getvalue()))


VERDICTS = ("ok", "exit2_one_line", "exit2_not_one_line", "traceback", "nonsense_accepted", "echoed_other_file",
            "other_exit_code")


def classify(case: Case, o: Outcome) -> Outcome:
    text = o.out + o.err
    if isinstance(o.code, str) or o.code == 3 or "Traceback (most recent call last)" in o.err:
        o.verdict = "traceback"
    elif SECRET in text or "secret_key" in text:
        o.verdict = "echoed_other_file"
    elif o.code not in (0, 1, 2):
        o.verdict = "other_exit_code"
    elif o.code == 2 and len(o.err.strip().splitlines()) != 1:
        o.verdict = "exit2_not_one_line"
    elif case.nonsense and case.listed is not None:
        line = next((ln for ln in o.out.splitlines() if ln.startswith(case.listed + " ")), "")
        o.verdict = "ok" if "(invalid:" in line else "nonsense_accepted"
    elif case.nonsense and o.code == 0:
        o.verdict = "nonsense_accepted"
    else:
        o.verdict = "exit2_one_line" if o.code == 2 else "ok"
    return o
