"""Pyomo expression trees -> a flat SSA program -> CasADi SX.

The walk is iterative (no recursion limit on deep sums) and emits one op per distinct Pyomo node,
so named Expressions and any node object shared between constraints are computed once. Leaves become
``("x", i)`` (free variable i), ``("p", k)`` (fixed Var / mutable Param k, read at solve time) or
``("c", value)``. The op list plus root slots is the *structure* of the NLP: two models that differ
only in fixed values or Param values give equal programs, which is what the compile cache keys on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import casadi as ca
from pyomo.common.numeric_types import native_numeric_types
from pyomo.core.expr import numeric_expr as ne
from pyomo.core.expr import relational_expr as re_
from pyomo.core.expr.numvalue import value

from mecsplit.errors import InputError

# Pyomo unary-function names we translate (derivatives are CasADi's own).
UNARY = frozenset({"log", "log10", "exp", "sqrt", "abs", "sin", "cos", "tan", "asin", "acos",
                   "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "ceil", "floor"})
SUPPORTED = ("sum, linear, monomial, product, division, pow, negation, max, min, Expr_if with "
             "relational tests, named Expression, " + ", ".join(sorted(UNARY)))

# Class -> op kind. Order matters: subclasses before their bases (Monomial < Product, Abs < Unary).
_KINDS = (
    (ne.ExternalFunctionExpression, None),
    (ne.SumExpression, "+"),
    (ne.ProductExpression, "*"),
    (ne.DivisionExpression, "/"),
    (ne.PowExpression, "^"),
    (ne.NegationExpression, "neg"),
    (ne.UnaryFunctionExpression, "unary"),
    (ne.MaxExpression, "max"),
    (ne.MinExpression, "min"),
    (ne.Expr_ifExpression, "if"),
    (re_.InequalityExpression, "ineq"),
    (re_.EqualityExpression, "=="),
    (re_.RangedExpression, "range"),
)


_KIND_CACHE: dict = {}


def _kind_of(cls):
    kind = _KIND_CACHE.get(cls, 0)
    if kind == 0:
        kind = _KIND_CACHE[cls] = next((k for base, k in _KINDS if issubclass(cls, base)), None)
    return kind


@dataclass
class Program:
    """SSA program of one NLP: ``ops[s]`` defines slot s from earlier slots."""

    ops: list = field(default_factory=list)
    has_x: list = field(default_factory=list)  # slot depends on a free variable
    variables: list = field(default_factory=list)  # VarData per x index
    params: list = field(default_factory=list)  # fixed VarData / ParamData per p index

    def key(self, roots) -> tuple:
        return (len(self.variables), len(self.params), tuple(roots), tuple(self.ops))


class Walker:
    """Translate Pyomo expressions of one model into a shared :class:`Program`."""

    def __init__(self, relax_integers: bool = False, where: str = "model"):
        self.relax_integers = relax_integers
        self.where = where
        self.prog = Program()
        self._memo: dict[int, int] = {}  # id(node) -> slot
        self._keep: list = []  # keep walked nodes alive so their ids stay unique
        self._consts: dict[float, int] = {}

    # -- slots -------------------------------------------------------------------------------
    def _emit(self, op, has_x: bool) -> int:
        self.prog.ops.append(op)
        self.prog.has_x.append(has_x)
        return len(self.prog.ops) - 1

    def const(self, value) -> int:
        value = float(value)
        s = self._consts.get(value)
        if s is None:
            s = self._consts[value] = self._emit(("c", value), False)
        return s

    def _leaf(self, node, component: str):
        """Slot of a leaf or already-walked node, or None if ``node`` must be expanded."""
        if node.__class__ in native_numeric_types:
            return self.const(node)
        s = self._memo.get(id(node))
        if s is not None:
            return s
        if node.is_expression_type():
            return None
        if node.is_variable_type():
            if node.fixed:
                if node.value is None:
                    raise InputError(self.where, node.name, "fixed variable has no value",
                                     "give it a value before solving")
                return self._remember(node, ("p", len(self.prog.params)), False, self.prog.params)
            if not self.relax_integers and not node.is_continuous():
                raise InputError(self.where, node.name,
                                 f"integer variable is free in {component}",
                                 "fix it, or pass relax_integers=True")
            return self._remember(node, ("x", len(self.prog.variables)), True, self.prog.variables)
        if node.is_constant():
            return self.const(value(node))
        # mutable Param (or another fixed leaf): a CasADi parameter, value read at solve time
        return self._remember(node, ("p", len(self.prog.params)), False, self.prog.params)

    def _remember(self, node, op, has_x, bucket) -> int:
        bucket.append(node)
        s = self._emit(op, has_x)
        self._memo[id(node)] = s
        self._keep.append(node)
        return s

    # -- walk --------------------------------------------------------------------------------
    def walk(self, expr, component: str) -> int:
        """Slot of ``expr`` (an objective or constraint body); ``component`` names it in errors."""
        s = self._leaf(expr, component)
        if s is not None:
            return s
        stack = [(expr, expr.args, [])]
        while True:
            node, args, slots = stack[-1]
            if len(slots) < len(args):
                child = args[len(slots)]
                s = self._leaf(child, component)
                if s is None:
                    stack.append((child, child.args, []))
                else:
                    slots.append(s)
                continue
            stack.pop()
            s = self._node(node, slots, component)
            self._memo[id(node)] = s
            self._keep.append(node)
            if not stack:
                return s
            stack[-1][2].append(s)

    def _node(self, node, slots, component: str) -> int:
        if node.is_named_expression_type():
            return slots[0]  # reuse: the named Expression's body has its own slot
        kind = _kind_of(node.__class__)
        if kind == "unary":
            kind = node.getname()
            if kind not in UNARY:
                kind = None
        elif kind == "ineq":
            kind = "<" if node.strict else "<="
        elif kind == "range":
            kind = "range" + "".join("1" if st else "0" for st in node.strict)
        if kind is None:
            raise InputError(self.where, component,
                             f"unsupported expression {type(node).__name__} "
                             f"({node.getname()}) in '{node}'", SUPPORTED)
        has_x = any(self.prog.has_x[s] for s in slots)
        return self._emit((kind, *slots), has_x)


# Pyomo unary-function name -> CasADi opcode (log10 is log(x) / ln 10, as in CasADi itself).
_UNARY_OP = {
    "log": ca.OP_LOG, "exp": ca.OP_EXP, "sqrt": ca.OP_SQRT, "abs": ca.OP_FABS, "sin": ca.OP_SIN,
    "cos": ca.OP_COS, "tan": ca.OP_TAN, "asin": ca.OP_ASIN, "acos": ca.OP_ACOS,
    "atan": ca.OP_ATAN, "sinh": ca.OP_SINH, "cosh": ca.OP_COSH, "tanh": ca.OP_TANH,
    "asinh": ca.OP_ASINH, "acosh": ca.OP_ACOSH, "atanh": ca.OP_ATANH, "ceil": ca.OP_CEIL,
    "floor": ca.OP_FLOOR,
}
_BINARY_OP = {"*": ca.OP_MUL, "/": ca.OP_DIV, "<=": ca.OP_LE, "<": ca.OP_LT, "==": ca.OP_EQ}


def to_sx(prog: Program, roots, x: ca.SX, p: ca.SX) -> list:
    """Evaluate ``prog`` symbolically; returns the SX of each root slot (compile time only).

    Uses ``SX.binary``/``SX.unary`` with CasADi opcodes: about 1.5 us per node against about 10 us
    through the Python operators (which re-check shapes on every call)."""
    binary, unary = ca.SX.binary, ca.SX.unary
    add, inv_ln10 = ca.OP_ADD, ca.SX(1.0 / math.log(10.0))
    xs, ps = ca.vertsplit(x), ca.vertsplit(p)
    vals: list = []
    for op in prog.ops:
        k = op[0]
        if k == "x":
            v = xs[op[1]]
        elif k == "p":
            v = ps[op[1]]
        elif k == "c":
            v = ca.SX(op[1])
        elif k == "+":
            v = vals[op[1]]
            for s in op[2:]:
                v = binary(add, v, vals[s])
        elif k in _BINARY_OP:
            v = binary(_BINARY_OP[k], vals[op[1]], vals[op[2]])
        elif k == "^":
            # an exponent that does not depend on x: no log(base) term in the derivative
            code = ca.OP_POW if prog.has_x[op[2]] else ca.OP_CONSTPOW
            v = binary(code, vals[op[1]], vals[op[2]])
        elif k == "neg":
            v = unary(ca.OP_NEG, vals[op[1]])
        elif k in _UNARY_OP:
            v = unary(_UNARY_OP[k], vals[op[1]])
        elif k == "log10":
            v = binary(ca.OP_MUL, unary(ca.OP_LOG, vals[op[1]]), inv_ln10)
        elif k == "max" or k == "min":
            code = ca.OP_FMAX if k == "max" else ca.OP_FMIN
            v = vals[op[1]]
            for s in op[2:]:
                v = binary(code, v, vals[s])
        elif k == "if":
            v = ca.if_else(vals[op[1]], vals[op[2]], vals[op[3]])
        elif k.startswith("range"):  # "range" + strict flags of (lower, upper), e.g. "range01"
            lo, mid, hi = (vals[s] for s in op[1:])
            a = binary(ca.OP_LT if k[5] == "1" else ca.OP_LE, lo, mid)
            b = binary(ca.OP_LT if k[6] == "1" else ca.OP_LE, mid, hi)
            v = binary(ca.OP_AND, a, b)
        else:  # pragma: no cover - the walker only emits the kinds above
            raise AssertionError(f"unknown op {k!r}")
        vals.append(v)
    return [vals[r] for r in roots]
