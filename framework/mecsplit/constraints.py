"""Constraints and objective terms that a variant file adds (``[[constraints]]``, ``[[objective.terms]]``).

::

    [[constraints]]
    name = "deadline"
    for_each = "user"            # "user" | "server" | omitted (one constraint over everything)
    expr = "delay_s <= 12000"

    [[objective.terms]]
    name = "peak-power"
    expr = "0.01 * max_over_users(p_W)"

Expressions are in the language of :mod:`mecsplit.expr` over the quantities the variant's blocks
publish (:meth:`mecsplit.variant.Variant.symbols`). Each constraint is classified so that solvers can
declare what they handle (:class:`mecsplit.plugins.Capabilities`):

* ``user:<quantity><op>`` — a per-user bound of one published quantity by a number, e.g.
  ``user:delay_s<=`` (a deadline), ``user:rate_Mbps>=`` (a rate floor), ``user:memory_GB<=``;
* ``server:n_users<=`` — a cap on the number of users per server;
* ``general`` — anything else (handled by the generic MINLP solvers through the Pyomo model).

Objective terms are added, as they are written, to the objective value of every kind (their
number is the weight that converts their unit into the objective's); their class is ``general``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .errors import InputError
from .expr import Expr, PyomoValue, Symbol, evaluate, parse, to_pyomo

FOR_EACH = ("user", "server", "all")
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
CONSTRAINT_KEYS = {"name", "for_each", "expr", "enabled", "description"}
TERM_KEYS = {"name", "expr", "enabled", "description"}


@dataclass(frozen=True)
class Constraint:
    name: str
    for_each: str
    expr: Expr
    description: str = ""
    kind: str = "general"     # user_bound | server_count | general
    quantity: str = ""        # user_bound / server_count: the bounded quantity
    sense: str = ""           # "<=" | ">=" | "==" with the quantity on the left
    value: float = math.nan   # the bound, in the quantity's unit

    @property
    def cls(self) -> str:
        """The capability class a solver must declare to take this constraint."""
        if self.kind == "user_bound":
            return f"user:{self.quantity}{self.sense}"
        if self.kind == "server_count":
            return f"server:n_users{self.sense}"
        return "general"


@dataclass(frozen=True)
class Term:
    name: str
    expr: Expr
    description: str = ""
    cls: str = "general"


def _tables(raw: Any, where: str, key: str, keys: set[str]) -> list[dict]:
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise InputError(where, key, f"got {type(raw).__name__}", f"an array of tables [[{key}]] with {', '.join(sorted(keys))}")
    out, seen = [], set()
    for i, t in enumerate(raw):
        f = f"{key}[{i}]"
        extra = set(t) - keys
        if extra:
            raise InputError(where, f"{f}.{sorted(extra)[0]}", "unknown key", ", ".join(sorted(keys)))
        name = t.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise InputError(where, f"{f}.name", f"got {name!r}", "a name of letters, digits, '-' and '_' (≤ 64)")
        if name in seen:
            raise InputError(where, f"{f}.name", f"duplicate name {name!r}", "unique names (extends merges by name)")
        seen.add(name)
        enabled = t.get("enabled", True)
        if not isinstance(enabled, bool):
            raise InputError(where, f"{f}.enabled", f"got {enabled!r}", "true | false")
        desc = t.get("description", "")
        if not isinstance(desc, str):
            raise InputError(where, f"{f}.description", f"got {desc!r}", "a string")
        if enabled:
            out.append((f, t))
    return out


def _classify(name: str, for_each: str, e: Expr, desc: str) -> Constraint:
    lhs, rhs = e.root.args
    op = e.root.op
    if lhs.kind == "num" and rhs.kind == "name":      # 12000 >= delay_s  ->  delay_s <= 12000
        lhs, rhs = rhs, lhs
        op = {"<=": ">=", ">=": "<=", "==": "=="}[op]
    if lhs.kind == "name" and rhs.kind == "num":
        if for_each == "user" and lhs.scope == "user":
            return Constraint(name, for_each, e, desc, "user_bound", lhs.op, op, rhs.value)
        if for_each == "server" and lhs.op == "n_users":
            return Constraint(name, for_each, e, desc, "server_count", "n_users", op, rhs.value)
    return Constraint(name, for_each, e, desc)


def parse_constraints(raw: Any, symbols: Mapping[str, Symbol], where: str) -> tuple[Constraint, ...]:
    out = []
    for f, t in _tables(raw, where, "constraints", CONSTRAINT_KEYS):
        for_each = t.get("for_each", "all")
        if for_each not in FOR_EACH:
            raise InputError(where, f"{f}.for_each", f"got {for_each!r}", "'user' | 'server' | omitted (one constraint)")
        e = parse(t.get("expr"), symbols, where, f"{f}.expr", compare=True)
        want = {"user": "user", "server": "server", "all": "global"}[for_each]
        if e.scope != want:
            if e.scope == "const":
                raise InputError(where, f"{f}.expr", f"{e.text!r} depends on no decision", "an expression over quantities")
            fix = {"user": "for_each = \"user\"", "server": "for_each = \"server\"",
                   "global": "omit for_each (it is one number)"}[e.scope]
            raise InputError(where, f"{f}.expr", f"{e.text!r} is {'one number' if e.scope == 'global' else 'per ' + e.scope} "
                             f"but for_each = {for_each!r}", fix + " — or aggregate with sum_over_users(...) / max_over_users(...)")
        out.append(_classify(t["name"], for_each, e, t.get("description", "")))
    return tuple(out)


def parse_terms(raw: Any, symbols: Mapping[str, Symbol], where: str) -> tuple[Term, ...]:
    out = []
    for f, t in _tables(raw, where, "objective.terms", TERM_KEYS):
        e = parse(t.get("expr"), symbols, where, f"{f}.expr")
        if e.scope != "global":
            raise InputError(where, f"{f}.expr", f"{e.text!r} is {'a constant' if e.scope == 'const' else 'per ' + e.scope}",
                             "one number: aggregate with sum_over_users(...), mean_over_users(...), max_over_users(...)")
        out.append(Term(t["name"], e, t.get("description", "")))
    return tuple(out)


def merge_by_name(base: list, over: list) -> list:
    """``extends`` for arrays of named tables: a table replaces the inherited one of the same name
    (``enabled = false`` drops it), new names are appended."""
    if not isinstance(base, list) or not isinstance(over, list):
        return over
    out = list(base)
    index = {t.get("name"): i for i, t in enumerate(out) if isinstance(t, dict)}
    for t in over:
        if isinstance(t, dict) and t.get("name") in index:
            out[index[t["name"]]] = t
        else:
            out.append(t)
    return out


# --- numpy (the evaluator) --------------------------------------------------------------------------

def check_constraints(constraints, values: Mapping[str, Any], server, n_servers: int, viol) -> None:
    """Add each constraint's violation (relative to its right-hand side) to ``viol`` as
    ``constraints.<name>``."""
    for c in constraints:
        lhs, rhs = evaluate(c.expr, values, server, n_servers)
        shape = (len(server),) if c.for_each == "user" else (n_servers,) if c.for_each == "server" else ()
        lhs, rhs = np.broadcast_to(np.asarray(lhs, float), shape), np.broadcast_to(np.asarray(rhs, float), shape)
        op = c.expr.root.op
        if op == "<=":
            viol.leq(f"constraints.{c.name}", lhs, rhs)
        elif op == ">=":
            viol.leq(f"constraints.{c.name}", rhs, lhs)
        else:
            viol.eq(f"constraints.{c.name}", lhs, rhs)


def term_values(terms, values: Mapping[str, Any], server, n_servers: int) -> dict[str, float]:
    return {t.name: float(evaluate(t.expr, values, server, n_servers)) for t in terms}


# --- Pyomo (the model) ---------------------------------------------------------------------------------

def build_pyomo(constraints, terms, values: Mapping[str, PyomoValue], m, suffix: str = ""):
    """Add the constraints to ``m`` (``m.constraint_<name><suffix>``) and return the sum of the terms
    (0 if none). ``suffix`` keeps the components of several calls apart (one call per slot)."""
    import pyomo.environ as pyo

    count = [0]

    def add(component):
        count[0] += 1
        name = f"_expr_aux{suffix}_{count[0]}"
        m.add_component(name, component)
        return getattr(m, name)

    for c in constraints:
        pairs = to_pyomo(c.expr, values, m, add)
        op = c.expr.root.op
        rel = (lambda a, b: a <= b) if op == "<=" else (lambda a, b: a >= b) if op == ">=" else (lambda a, b: a == b)
        cname = "constraint_" + re.sub(r"[^A-Za-z0-9_]", "_", c.name) + suffix
        if pairs.scope in ("user", "server"):
            index = m.U if pairs.scope == "user" else m.S
            m.add_component(cname, pyo.Constraint(index, rule=lambda _m, i, p=pairs, r=rel: r(*p.v[i])))
        else:
            m.add_component(cname, pyo.Constraint(expr=rel(*pairs.v)))
    return sum(to_pyomo(t.expr, values, m, add).v for t in terms) if terms else 0.0
