"""Solver options are checked by the framework before any solve (mecsplit.solve.check_option): the
type of the default, the domain a plugin declares (choices or a numeric range), and ≥ 0 for numbers
without one. Checked over every registered solver, so a plugin cannot ship a default its own domain
refuses, and a value outside a domain never reaches a solver."""

from __future__ import annotations

import pytest

from mecsplit.errors import InputError
from mecsplit.plugins import get_manager
from mecsplit.solve import check_option, resolve_options

from test_hardening import refused, work  # noqa: F401  (fixture)

SPECS = sorted(get_manager().solvers.values(), key=lambda s: s.name)
OPTIONS = [(s, k) for s in SPECS for k in s.options]


def _numeric(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@pytest.mark.parametrize("spec,key", OPTIONS, ids=[f"{s.name}.{k}" for s, k in OPTIONS])
def test_every_default_is_in_its_domain(spec, key):
    assert check_option(spec, key, spec.options[key]) == spec.options[key]


def test_every_domain_names_an_option():
    for s in SPECS:
        assert set(s.domains) <= set(s.options), (s.name, set(s.domains) - set(s.options))


# numbers whose domain does not say otherwise (only scip's watchdog_grace_s, a test hook, takes any sign)
NONNEG = [(s, k) for s, k in OPTIONS if _numeric(s.options[k]) and s.domains.get(k) != {}]


@pytest.mark.parametrize("spec,key", NONNEG, ids=[f"{s.name}.{k}" for s, k in NONNEG])
def test_negative_numbers_are_refused(spec, key):
    with pytest.raises(InputError) as e:
        resolve_options(spec, {key: -1})
    assert e.value.field == f"{spec.name}.{key}" and "got -1" in e.value.problem


CHOICES = [(s, k) for s, k in OPTIONS if isinstance(s.domains.get(k), tuple)]


@pytest.mark.parametrize("spec,key", CHOICES, ids=[f"{s.name}.{k}" for s, k in CHOICES])
def test_a_value_outside_the_choices_is_refused(spec, key):
    bad = "not-a-choice" if isinstance(spec.options[key], str) else 99
    with pytest.raises(InputError) as e:
        resolve_options(spec, {key: bad})
    assert e.value.field == f"{spec.name}.{key}" and all(repr(c) in e.value.allowed for c in spec.domains[key])


def test_declared_ranges_hold_at_their_ends():
    exact = get_manager().solvers["exact"]
    assert resolve_options(exact, {"colgen_share": 1})["colgen_share"] == 1.0    # (0, 1]: 1 is in
    with pytest.raises(InputError, match="exact.colgen_share"):
        resolve_options(exact, {"colgen_share": 0})                                # and 0 is not
    assert resolve_options(exact, {"node_limit": 1e3})["node_limit"] == 1000        # a whole float is an int
    with pytest.raises(InputError, match="not a whole number"):
        resolve_options(exact, {"node_limit": 2.5})
    with pytest.raises(InputError, match="exact.verbose"):
        resolve_options(exact, {"verbose": 1})                                      # a bool option takes bools


@pytest.mark.parametrize("option", ["rel_gap=-1", "node_limit=-5", "method=simplex", "rel_gap=2"])
def test_the_cli_refuses_an_out_of_range_option_in_one_line(work, option):  # noqa: F811
    line = refused("solve", "--instance", str(work / "inst.json"), "--solver", "exact", "--option", option,
                   field="exact." + option.split("=")[0])
    assert "allowed:" in line
