"""Bad input gets one clear line naming the file, the field and the fix — never a traceback.

The fuzz tests (hypothesis, > 1,000 generated cases in all) feed mutated variant files, instance
files and solutions to the loaders: each must either load or raise InputError; nothing else."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mecsplit.errors import InputError
from mecsplit.evaluate import coerce_solution, evaluate
from mecsplit.instance import from_dict, generate
from mecsplit.variant import load_variant

from conftest import random_feasible_point

BASE_VARIANT = """
[variant]
name = "t"
extends = "default"
"""


def write(tmp_path, text, name="v.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, field", [
    ("[variant\nname=", "<toml>"),
    (BASE_VARIANT + "[blocks.warp_drive]\nx = 1\n", "blocks.warp_drive"),
    (BASE_VARIANT + "[blocks.uplink]\npower = 3\n", "blocks.uplink.power"),
    (BASE_VARIANT + "[blocks.uplink]\np_min_W = -1.0\n", "blocks.uplink.p_min_W"),
    (BASE_VARIANT + "[blocks.uplink]\np_min_W = nan\n", "blocks.uplink.p_min_W"),
    (BASE_VARIANT + "[blocks.uplink]\np_min_W = inf\n", "blocks.uplink.p_min_W"),
    (BASE_VARIANT + "[blocks.uplink]\np_min_W = \"low\"\n", "blocks.uplink.p_min_W"),
    (BASE_VARIANT + "[blocks.uplink]\nbudget = \"maybe\"\n", "blocks.uplink.budget"),
    (BASE_VARIANT + "[blocks.uplink]\np_max_W = { dist = \"gaussian\", low = 1, high = 2 }\n", "blocks.uplink.p_max_W.dist"),
    (BASE_VARIANT + "[blocks.uplink]\np_max_W = { dist = \"uniform\", low = 3, high = 2 }\n", "blocks.uplink.p_max_W.low"),
    (BASE_VARIANT + "[blocks.uplink]\np_max_W = { dist = \"uniform\", low = 1 }\n", "blocks.uplink.p_max_W.high"),
    (BASE_VARIANT + "[blocks.uplink]\np_max_W = { dist = \"uniform\", low = 1, high = 2, unit = \"mW\" }\n", "blocks.uplink.p_max_W.unit"),
    (BASE_VARIANT + "[blocks.llm]\nlayers = 31.5\n", "blocks.llm.layers"),
    (BASE_VARIANT + "[blocks.llm]\nlayers = { dist = \"uniform\", low = 1, high = 2 }\n", "blocks.llm.layers"),
    (BASE_VARIANT + "[blocks.llm]\nenabled = false\n", "blocks.user_compute"),
    (BASE_VARIANT + "[objective]\nkind = \"max_profit\"\n", "objective.kind"),
    (BASE_VARIANT + "[objective]\nweights = { delay = -1 }\n", "objective.weights.delay"),
    (BASE_VARIANT + "[objective]\nweights = { latency = 1 }\n", "objective.weights.latency"),
    (BASE_VARIANT + "[sizes]\nusers = 0\n", "sizes.users"),
    (BASE_VARIANT + "[generator]\nname = \"hexagonal\"\n", "generator.name"),
    (BASE_VARIANT + "[generator]\nside_km = -1\n", "generator.side_km"),
    (BASE_VARIANT + "[colour]\nx = 1\n", "colour"),
    (BASE_VARIANT + "[blocks.uplink]\np_min_W = 1.5\n", "blocks.uplink.p_min_W"),
    (BASE_VARIANT + "[blocks.llm]\nalpha_min = 40\n", "blocks.llm.alpha_min"),
    ("[variant]\nextends = \"nope\"\n[blocks.llm]\n", "variant.extends"),
])
def test_bad_variant_file_names_the_field(tmp_path, text, field):
    p = write(tmp_path, text)
    with pytest.raises(InputError) as e:
        load_variant(p)
    assert e.value.field == field
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_circular_extends(tmp_path):
    write(tmp_path, "[variant]\nextends = \"b\"\n[blocks.llm]\n", "a.toml")
    write(tmp_path, "[variant]\nextends = \"a\"\n[blocks.llm]\n", "b.toml")
    with pytest.raises(InputError, match="circular"):
        load_variant(tmp_path / "a.toml")


@pytest.fixture(scope="module")
def inst_dict():
    v = load_variant("default")
    return v, json.loads(generate(v, 4, 2, 1).to_json())


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["blocks"]["uplink"]["p_max_W"].update(values=[1.0, -2.0, 1.5, 1.2]), "blocks.uplink.p_max_W.values"),
    (lambda d: d["blocks"]["uplink"]["p_max_W"].update(values=[1.0, 2.0]), "blocks.uplink.p_max_W.values"),
    (lambda d: d["blocks"]["llm"]["tokens"].update(values=[512, 600.5, 700, 800]), "blocks.llm.tokens.values"),
    (lambda d: d["blocks"]["uplink"].pop("p_max_W"), "blocks.uplink.p_max_W"),
    (lambda d: d["blocks"]["uplink"]["p_max_W"].update(unit="mW"), "blocks.uplink.p_max_W.unit"),
    (lambda d: d["topology"]["gain"].update(values=[[1e-10, 1e-9]] * 3), "topology.gain.values"),
    (lambda d: d["topology"]["gain"].update(values=[[0.0, 1e-9]] * 4), "topology.gain.values"),
    (lambda d: d.update(n_users=-4), "n_users"),
    (lambda d: d.update(variant="liu-zhao-2024"), "variant"),
    (lambda d: d.update(schema="v0"), "schema"),
    (lambda d: d["normalisation"].update(delay_ref_s=None), "normalisation.delay_ref_s"),
])
def test_bad_instance_names_the_field(inst_dict, mutate, field):
    v, d = inst_dict
    d = copy.deepcopy(d)
    mutate(d)
    with pytest.raises(InputError) as e:
        from_dict(d, v, "inst.json")
    assert e.value.field == field


def test_nan_and_infinity_in_instance_json_are_rejected(inst_dict, tmp_path):
    v, d = inst_dict
    from mecsplit.instance import load

    for bad in ("NaN", "Infinity"):
        text = json.dumps(d).replace(json.dumps(d["blocks"]["uplink"]["p_max_W"]["values"][0]), bad, 1)
        (tmp_path / "i.json").write_text(text)
        with pytest.raises(InputError, match="NaN or infinite"):
            load(tmp_path / "i.json", v)


# ----------------------------------------------------------------------------------- fuzzing
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5))
json_value = st.recursive(json_leaf, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=4), c, max_size=3)), max_leaves=8)


def _paths(d, prefix=()):
    if isinstance(d, dict):
        for k, v in d.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(d, list) and d and not isinstance(d[0], list):
        yield from (prefix + (i,) for i in range(len(d)))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_instance_loader(inst_dict, data):
    v, base = inst_dict
    d = copy.deepcopy(base)
    paths = list(_paths(d))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent = d
        try:
            for k in path[:-1]:
                parent = parent[k]
            if data.draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = data.draw(json_value)
        except (KeyError, IndexError, TypeError):
            continue
    try:
        inst = from_dict(d, v, "fuzz.json")
    except InputError as e:
        assert "\n" not in str(e) and e.field
        return
    # anything accepted must be a usable instance: finite data, an evaluable reference point
    assert all(np.all(np.isfinite(a)) for a in inst.topology.values())
    evaluate(v, inst, {k: x.tolist() for k, x in inst.reference_solution().items()})


toml_scalar = st.one_of(st.integers(-5, 2000), st.floats(-1e3, 1e3, allow_nan=False), st.booleans(),
                        st.sampled_from(["eq", "le", "tokens", "x", "integer"]),
                        st.just(float("nan")), st.just(float("inf")))
block_names = st.sampled_from(["llm", "uplink", "edge_compute", "user_compute", "stability", "association", "warp"])
param_names = st.sampled_from(["layers", "p_min_W", "p_max_W", "budget", "delay", "tokens", "kappa", "cores", "F_max_GHz",
                               "split", "samples", "bogus", "enabled", "upload", "alpha_min"])


def _toml_value(x):
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float):
        return "nan" if math.isnan(x) else ("inf" if math.isinf(x) else repr(x))
    if isinstance(x, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in x.items()) + " }"
    return json.dumps(x) if isinstance(x, str) else str(x)


dist_value = st.fixed_dictionaries({"dist": st.sampled_from(["uniform", "uniform_int", "choice", "bad"]),
                                    "low": st.integers(-3, 50), "high": st.integers(-3, 50)})


@settings(max_examples=450, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(block_names, param_names, st.one_of(toml_scalar, dist_value)), min_size=1, max_size=4, unique_by=lambda t: t[:2]))
def test_fuzz_variant_loader(tmp_path, edits):
    tables: dict[str, dict] = {}
    for b, p, val in edits:
        tables.setdefault(b, {})[p] = val
    text = BASE_VARIANT + "".join(f"[blocks.{b}]\n" + "".join(f"{k} = {_toml_value(x)}\n" for k, x in kv.items()) for b, kv in tables.items())
    path = write(tmp_path, text)
    try:
        v = load_variant(path)
    except InputError as e:
        assert "\n" not in str(e)
        return
    try:
        inst = generate(v, 3, 2, 0)
    except InputError:
        return
    ev = evaluate(v, inst, {k: x.tolist() for k, x in inst.reference_solution().items()})
    assert isinstance(ev.objective, float)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["server", "alpha", "f_GHz", "fe_GHz", "p_W", "b_MHz", "extra"]), value=json_value)
def test_fuzz_solution_coercion(inst_dict, key, value):
    v, d = inst_dict
    inst = from_dict(d, v)
    sol = random_feasible_point(v, inst, np.random.default_rng(0))
    sol[key] = value
    try:
        coerce_solution(v, inst, sol)
    except InputError as e:
        assert e.field.startswith("solution")
