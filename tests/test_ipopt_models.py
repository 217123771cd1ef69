"""Exact derivatives of every variant in models/ (3 users x 2 servers, or as many servers as its
per-server lists fix; integers relaxed) against central finite differences, and a solve of each
relaxed NLP."""

from __future__ import annotations

from pathlib import Path

import pyomo.environ as pyo
import pytest

from mecsplit.instance import generate
from mecsplit.ipopt import solve_nlp
from mecsplit.ipopt.check import derivative_errors
from mecsplit.model import build_model
from mecsplit.servers import fixed_server_count
from mecsplit.variant import load_variant

MODELS = sorted((Path(__file__).resolve().parents[1] / "models").glob("*.toml"))


def test_models_directory_is_not_empty():
    assert MODELS, "no variant files found in models/"


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_variant_derivatives_match_finite_differences(path):
    variant = load_variant(path)
    inst = generate(variant, n_users=3, n_servers=fixed_server_count(variant) or 2, seed=0)
    m = build_model(variant, inst, relax_integers=True)
    err = derivative_errors(m, n_points=3, seed=0, relax_integers=True)
    assert err["value"] < 1e-12, err
    assert err["grad"] < 1e-6 and err["jac"] < 1e-6 and err["hess"] < 1e-5, err


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_variant_relaxed_nlp_solves(path):
    variant = load_variant(path)
    m = build_model(variant, generate(variant, n_users=3, n_servers=fixed_server_count(variant) or 2, seed=0), relax_integers=True)
    r = solve_nlp(m, relax_integers=True)
    assert r.status == "optimal", r.message
    # the loaded point satisfies every active constraint
    for c in m.component_data_objects(pyo.Constraint, active=True):
        body = pyo.value(c.body)
        assert (c.lb is None or body >= c.lb - 1e-6) and (c.ub is None or body <= c.ub + 1e-6), c.name
