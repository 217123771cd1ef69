"""The expression language of variant files: constraints, objective terms and generator formulas.

An expression is Python-syntax arithmetic over named quantities, parsed with :mod:`ast` against a
whitelist (no ``eval``)::

    delay_s <= 12000                      # a per-user constraint (for_each = "user")
    n_users <= 3                          # a per-server constraint (for_each = "server")
    0.01 * max_over_users(p_W)            # an objective term
    128.1 + 37.6 * log10(d_km)            # a generator formula (path loss in dB)

Allowed: numbers, quantity names, ``+ - * / **`` (exponent: a number), unary ``-``, parentheses,
one comparison ``<=``, ``>=`` or ``==`` at the top of a constraint, the elementwise functions
``log, log2, log10, exp, sqrt, abs``, and the aggregates ``sum_over_users, mean_over_users,
max_over_users, min_over_users`` (per-user → one number) and ``sum_users`` (per-user → per-server,
the sum over the server's users).

**Units.** Every quantity has a unit (``mecsplit blocks`` lists them). Units multiply and divide;
adding or comparing two different units is an error — unless a side carries a numeric weight
(``delay_s + 0.5 * energy_J``): a number multiplying a quantity is a weight and converts its unit
into the other side's (here 0.5 s/J). A bare number takes the unit of what it is added to or compared
with (``delay_s <= 12000`` means 12000 s).

**Scopes.** A value is a constant, one number (``global``), one per user (``user``) or one per server
(``server``); per-user and per-server values cannot be mixed without an aggregate.

**Where max/min may stand.** ``max_over_users`` is modelled by an epigraph variable, which is exact
only where the value is minimised or bounded above (a term with a positive weight, the left side of
``<=``); ``min_over_users`` mirrors it. Elsewhere it is refused at load time with the reason.

Two independent backends read a checked tree: :func:`evaluate` (numpy, used by the evaluator and the
generators) and :func:`to_pyomo` (Pyomo expressions for the model).
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Mapping

import numpy as np

from .errors import InputError

# ------------------------------------------------------------------------------------------------
# units


@dataclass(frozen=True)
class Unit:
    """A product of named unit symbols with rational exponents (no prefix conversions: MHz ≠ Hz)."""

    dims: tuple[tuple[str, Fraction], ...] = ()

    def __mul__(self, other: "Unit") -> "Unit":
        d = dict(self.dims)
        for k, v in other.dims:
            d[k] = d.get(k, Fraction(0)) + v
        return Unit(tuple(sorted((k, v) for k, v in d.items() if v != 0)))

    def __truediv__(self, other: "Unit") -> "Unit":
        return self * other ** -1

    def __pow__(self, k) -> "Unit":
        k = Fraction(k)
        return Unit(tuple((s, v * k) for s, v in self.dims))

    @property
    def dimensionless(self) -> bool:
        return not self.dims

    def __str__(self) -> str:
        if not self.dims:
            return "1"
        for name, u in DERIVED.items():
            if u.dims == self.dims:
                return name
        num = [s if v == 1 else f"{s}^{v}" for s, v in self.dims if v > 0]
        den = [s if v == -1 else f"{s}^{-v}" for s, v in self.dims if v < 0]
        top = "*".join(num) or "1"
        return top if not den else f"{top}/{den[0]}" if len(den) == 1 else f"{top}/({'*'.join(den)})"


ONE = Unit()
#: derived units written by their usual name (W = J/s): quantities in W and J/s compare
DERIVED = {"W": Unit((("J", Fraction(1)), ("s", Fraction(-1))))}


def parse_unit(text: str) -> Unit:
    """``"Mbit/s"``, ``"W"``, ``"J/GHz^2"``, ``"1"`` -> :class:`Unit`. Symbols are opaque names (no
    prefix conversions: MHz is not 1e6 Hz); W is J/s (``DERIVED``)."""
    src = text.strip().replace("^", "**")
    if src in ("", "1"):
        return ONE
    try:
        tree = ast.parse(src, mode="eval").body
    except SyntaxError:
        raise ValueError(f"not a unit: {text!r}") from None

    def walk(n) -> Unit:
        if isinstance(n, ast.Name):
            return DERIVED.get(n.id) or Unit(((n.id, Fraction(1)),))
        if isinstance(n, ast.Constant) and n.value == 1:
            return ONE
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Mult, ast.Div)):
            a, b = walk(n.left), walk(n.right)
            return a * b if isinstance(n.op, ast.Mult) else a / b
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow):
            e = n.right
            sign = 1
            if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub):
                e, sign = e.operand, -1
            if isinstance(e, ast.Constant) and isinstance(e.value, (int, float)):
                return walk(n.left) ** (sign * Fraction(e.value))
        raise ValueError(f"not a unit: {text!r}")

    return walk(tree)


# ------------------------------------------------------------------------------------------------
# symbols and the checked tree

SCOPES = ("const", "global", "user", "server")
ELEMENTWISE = {"log": np.log, "log2": np.log2, "log10": np.log10, "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs}
INCREASING = {"log", "log2", "log10", "exp", "sqrt"}
AGGREGATES = {"sum_over_users", "mean_over_users", "max_over_users", "min_over_users"}
PER_SERVER = {"sum_users"}
FUNCTIONS = sorted(ELEMENTWISE) + sorted(AGGREGATES) + sorted(PER_SERVER)


# --- the same functions, the same on every CPU (instances: mecsplit.generators) --------------------
# NumPy's SIMD kernels for float64 log, exp and power (AVX-512 ones) differ from the C library's in
# the last bit, so an instance drawn on one machine differed from the same seed's on another (and so
# did its hash). Instances use the C library's scalar functions (Python's math) elementwise, with
# NumPy's values at the edges (log 0 = −inf, overflow = inf, nan where NumPy gives nan); sqrt and abs
# are exact in IEEE arithmetic.

def _log(f: Callable[[float], float]) -> Callable[[float], float]:
    return lambda x: f(x) if x > 0 else (-math.inf if x == 0 else math.nan)


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _pow(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except OverflowError:
        return math.inf
    except ValueError:   # 0 ** negative (NumPy: inf), negative ** non-integer (NumPy: nan)
        return math.inf if a == 0 else math.nan


PORTABLE = {"log": np.vectorize(_log(math.log), otypes=[float]), "log2": np.vectorize(_log(math.log2), otypes=[float]),
            "log10": np.vectorize(_log(math.log10), otypes=[float]), "exp": np.vectorize(_exp, otypes=[float]),
            "sqrt": np.sqrt, "abs": np.abs}
portable_power = np.vectorize(_pow, otypes=[float])   # a ** b elementwise, the same on every CPU

OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
CMPS = {ast.LtE: "<=", ast.GtE: ">=", ast.Eq: "=="}


@dataclass(frozen=True)
class Symbol:
    """A name an expression may use: its unit, its scope and a one-line description."""

    name: str
    unit: Unit
    scope: str = "user"
    doc: str = ""


@dataclass(eq=False)
class Node:
    """A checked expression node. ``kind`` is num | name | neg | bin | call | cmp; ``unit`` is None for a
    bare number (it adopts the unit of what it meets); ``weighted`` marks a product with a number."""

    kind: str
    op: str = ""
    value: float = 0.0
    args: tuple["Node", ...] = ()
    unit: Unit | None = None
    scope: str = "const"
    weighted: bool = False
    text: str = field(default="", repr=False)


@dataclass(frozen=True)
class Expr:
    """A parsed and checked expression with where it came from (for error messages)."""

    text: str
    root: Node
    where: str
    field: str

    @property
    def unit(self) -> Unit | None:
        return self.root.unit

    @property
    def scope(self) -> str:
        return self.root.scope

    @property
    def is_comparison(self) -> bool:
        return self.root.kind == "cmp"

    def names(self) -> set[str]:
        out: set[str] = set()

        def walk(n: Node) -> None:
            if n.kind == "name":
                out.add(n.op)
            for a in n.args:
                walk(a)

        walk(self.root)
        return out

    def functions(self) -> set[str]:
        out: set[str] = set()

        def walk(n: Node) -> None:
            if n.kind == "call":
                out.add(n.op)
            for a in n.args:
                walk(a)

        walk(self.root)
        return out


class _Checker:
    def __init__(self, text: str, symbols: Mapping[str, Symbol], where: str, fld: str, allow_compare: bool):
        self.text, self.symbols, self.where, self.field = text, symbols, where, fld
        self.allow_compare = allow_compare

    def fail(self, problem: str, allowed: str) -> None:
        raise InputError(self.where, self.field, f"{problem} in {self.text!r}", allowed)

    def seg(self, n: ast.AST) -> str:
        return ast.get_source_segment(self.text, n) or "?"

    # scopes -------------------------------------------------------------------------------------
    def join(self, a: Node, b: Node, n: ast.AST) -> str:
        sa, sb = a.scope, b.scope
        if sa == "const":
            return sb
        if sb == "const" or sa == sb:
            return sa
        if {sa, sb} == {"user", "server"}:
            self.fail(f"'{self.seg(n)}' mixes per-user and per-server values",
                      "aggregate the per-user side first: sum_users(...), sum_over_users(...), max_over_users(...)")
        return sa if sb == "global" else sb

    # units --------------------------------------------------------------------------------------
    def same_unit(self, a: Node, b: Node, n: ast.AST, what: str) -> tuple[Unit | None, bool]:
        """Unit of a ± b (or a compared with b): equal units, a bare number, or a weighted side."""
        if a.unit is None:
            return b.unit, b.weighted
        if b.unit is None or a.unit == b.unit:
            return a.unit, a.weighted or b.weighted
        if b.weighted:      # b's number converts b into a's unit
            return a.unit, True
        if a.weighted:
            return b.unit, True
        self.fail(f"{what} {a.unit} and {b.unit} without a weight ('{self.seg(n)}')",
                  f"the same unit on both sides, or a number weighting one side (e.g. 0.5 * x)")
        raise AssertionError

    # walk ---------------------------------------------------------------------------------------
    def node(self, n: ast.AST, top: bool = False) -> Node:
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)) and not isinstance(n.value, bool):
            if not math.isfinite(float(n.value)):
                self.fail(f"number '{self.seg(n)}' is not finite", "finite numbers")
            return Node("num", value=float(n.value))
        if isinstance(n, ast.Name):
            sym = self.symbols.get(n.id)
            if sym is None:
                known = ", ".join(sorted(self.symbols)) or "(none)"
                if n.id in FUNCTIONS:
                    self.fail(f"'{n.id}' is a function", f"{n.id}(...)")
                self.fail(f"unknown name '{n.id}'", known)
            return Node("name", op=n.id, unit=sym.unit, scope=sym.scope)
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
            a = self.node(n.operand)
            if isinstance(n.op, ast.UAdd):
                return a
            if a.kind == "num":
                return Node("num", value=-a.value)
            return Node("neg", args=(a,), unit=a.unit, scope=a.scope, weighted=a.weighted)
        if isinstance(n, ast.BinOp) and type(n.op) in OPS:
            return self.binop(n)
        if isinstance(n, ast.Call):
            return self.call(n)
        if isinstance(n, ast.Compare):
            if not (top and self.allow_compare):
                self.fail(f"comparison '{self.seg(n)}' is allowed only at the top of a constraint", "an arithmetic expression")
            if len(n.ops) != 1 or type(n.ops[0]) not in CMPS:
                self.fail(f"'{self.seg(n)}': one comparison <=, >= or == is allowed", "lhs <= rhs | lhs >= rhs | lhs == rhs")
            a, b = self.node(n.left), self.node(n.comparators[0])
            unit, w = self.same_unit(a, b, n, "compares")
            return Node("cmp", op=CMPS[type(n.ops[0])], args=(a, b), unit=unit, scope=self.join(a, b, n), weighted=w)
        token = self.seg(n)
        self.fail(f"'{token}' is not allowed", "numbers, quantity names, + - * / **, ( ), " + ", ".join(FUNCTIONS))
        raise AssertionError

    def folded(self, n: ast.AST, f: Callable, *args: Any) -> Node:
        """A constant computed from constants: a finite real number, else bad input (1/0, 2**1024,
        log(0), (-1)**0.5, 1e308*10)."""
        try:
            with np.errstate(all="raise"):
                v = f(*args)
            v = float(v)
        except (ArithmeticError, FloatingPointError, TypeError, ValueError):  # TypeError: float() of a complex
            v = math.nan
        if not math.isfinite(v):
            self.fail(f"'{self.seg(n)}' is not a finite real number", "constants that evaluate to finite numbers")
        return Node("num", value=v)

    def binop(self, n: ast.BinOp) -> Node:
        op = OPS[type(n.op)]
        a, b = self.node(n.left), self.node(n.right)
        scope = self.join(a, b, n)
        if a.kind == "num" and b.kind == "num":
            return self.folded(n, _apply, op, a.value, b.value)
        if op in "+-":
            unit, w = self.same_unit(a, b, n, "adds" if op == "+" else "subtracts")
        elif op == "**":
            if b.kind != "num":
                self.fail(f"exponent in '{self.seg(n)}' must be a number", "x ** 2, x ** 0.5")
            unit = None if a.unit is None else a.unit ** Fraction(b.value).limit_denominator(1000)
            w = a.weighted
        else:
            if a.unit is None or b.unit is None:      # a number times / over a quantity: a weight
                unit = b.unit if a.unit is None else a.unit
                if op == "/" and a.unit is None:
                    unit = unit ** -1 if unit is not None else None
                w = True
            else:
                unit = a.unit * b.unit if op == "*" else a.unit / b.unit
                w = a.weighted or b.weighted
        return Node("bin", op=op, args=(a, b), unit=unit, scope=scope, weighted=w)

    def call(self, n: ast.Call) -> Node:
        if not isinstance(n.func, ast.Name) or n.func.id not in FUNCTIONS:
            name = n.func.id if isinstance(n.func, ast.Name) else self.seg(n.func)
            self.fail(f"unknown function '{name}'", ", ".join(FUNCTIONS))
        fn = n.func.id
        if n.keywords or len(n.args) != 1:
            self.fail(f"{fn}() takes exactly one argument", f"{fn}(x)")
        a = self.node(n.args[0])
        if fn in ELEMENTWISE:
            if fn == "sqrt":
                unit = None if a.unit is None else a.unit ** Fraction(1, 2)
            elif fn == "abs":
                unit = a.unit
            else:   # log/exp of a quantity are taken in its named unit: the result is a pure number
                unit = ONE if a.unit is not None else None
            if a.kind == "num":
                return self.folded(n, ELEMENTWISE[fn], a.value)
            return Node("call", op=fn, args=(a,), unit=unit, scope=a.scope, weighted=a.weighted)
        if a.scope not in ("user",):
            self.fail(f"{fn}() needs a per-user argument, got a {a.scope} value", f"{fn}(delay_s), {fn}(p_W), ...")
        scope = "server" if fn in PER_SERVER else "global"
        return Node("call", op=fn, args=(a,), unit=a.unit, scope=scope, weighted=a.weighted)


def _apply(op: str, a, b):
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    return a ** b


def parse(text: Any, symbols: Mapping[str, Symbol], where: str = "<expression>", fld: str = "expr",
          compare: bool = False) -> Expr:
    """Parse and check ``text``; every problem is one :class:`InputError` naming ``where``/``fld``,
    the offending token and what is allowed. ``compare=True``: a constraint (one top comparison)."""
    if not isinstance(text, str) or not text.strip():
        raise InputError(where, fld, f"got {text!r}", "an expression as a string, e.g. \"delay_s <= 12000\"")
    if len(text) > 2000:
        raise InputError(where, fld, f"expression of {len(text)} characters", "at most 2000 characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        col = (e.offset or 1) - 1
        near = text.strip()[max(0, col - 1):col + 9] or text.strip()[-10:]
        raise InputError(where, fld, f"syntax error near {near!r} in {text!r}",
                         "numbers, quantity names, + - * / **, ( ), <= >= ==, " + ", ".join(FUNCTIONS)) from None
    except (RecursionError, MemoryError, ValueError):
        raise InputError(where, fld, f"expression too deeply nested: {text[:60]!r}", "a flatter expression") from None
    ck = _Checker(text.strip(), symbols, where, fld, compare)
    try:
        root = ck.node(tree.body, top=True)
    except RecursionError:
        raise InputError(where, fld, f"expression too deeply nested: {text[:60]!r}", "a flatter expression") from None
    if compare and root.kind != "cmp":
        raise InputError(where, fld, f"{text!r} is not a comparison", "lhs <= rhs | lhs >= rhs | lhs == rhs")
    out = Expr(text.strip(), root, where, fld)
    _check_polarity(out)
    return out


# ------------------------------------------------------------------------------------------------
# where max/min may stand (epigraph exactness)


def _check_polarity(e: Expr) -> None:
    """Walk with the direction in which the objective/constraint pushes each sub-expression
    (+1: minimised or bounded above, −1: maximised or bounded below, 0: unknown/both)."""

    def fail(fn: str) -> None:
        want = "minimised or bounded above (a term with a positive weight, the left side of <=)" if fn == "max_over_users" \
            else "maximised or bounded below (the left side of >=, a term with a negative weight)"
        raise InputError(e.where, e.field, f"{fn}(...) in {e.text!r} stands where its epigraph is not exact",
                         f"{fn} only where it is {want}")

    def walk(n: Node, pol: int) -> None:
        if n.kind == "call" and n.op in ("max_over_users", "min_over_users"):
            if pol != (1 if n.op == "max_over_users" else -1):
                fail(n.op)
        if n.kind == "cmp":
            a, b = n.args
            s = {"<=": 1, ">=": -1, "==": 0}[n.op]
            walk(a, s)
            walk(b, -s)
            return
        if n.kind == "neg":
            walk(n.args[0], -pol)
            return
        if n.kind == "bin":
            a, b = n.args
            if n.op == "+":
                walk(a, pol), walk(b, pol)
            elif n.op == "-":
                walk(a, pol), walk(b, -pol)
            elif n.op == "*":
                if a.kind == "num":
                    walk(b, pol * int(np.sign(a.value)))
                elif b.kind == "num":
                    walk(a, pol * int(np.sign(b.value)))
                else:
                    walk(a, 0), walk(b, 0)
            elif n.op == "/" and b.kind == "num":
                walk(a, pol * int(np.sign(b.value)))
            else:
                walk(a, 0), walk(b, 0)
            return
        if n.kind == "call":
            keep = n.op in INCREASING or n.op in AGGREGATES or n.op in PER_SERVER
            walk(n.args[0], pol if keep else 0)

    walk(e.root, 1)


# ------------------------------------------------------------------------------------------------
# numpy backend


def evaluate(e: Expr | Node, values: Mapping[str, Any], server: np.ndarray | None = None, n_servers: int = 1,
             portable: bool = False):
    """Value of a checked expression. ``values`` maps names to per-user arrays (N,), per-server arrays
    (M,) or scalars (or arrays of any shape for generator formulas); ``server`` (N,) is each user's
    server index (for ``sum_users``). A comparison returns ``(lhs, rhs)``. ``portable``: functions and
    ``**`` by the C library's scalar functions (PORTABLE), the same bits on every CPU (instances)."""
    root = e.root if isinstance(e, Expr) else e
    funcs = PORTABLE if portable else ELEMENTWISE

    def ev(n: Node):
        k = n.kind
        if k == "num":
            return n.value
        if k == "name":
            return values[n.op]
        if k == "neg":
            return -ev(n.args[0])
        if k == "bin":
            a, b = ev(n.args[0]), ev(n.args[1])
            if n.op == "**":
                return (portable_power if portable else np.power)(np.asarray(a, float), b)
            return _apply(n.op, a, b)
        if k == "call":
            a = ev(n.args[0])
            if n.op in funcs:
                return funcs[n.op](a)
            a = np.asarray(a, float)
            if n.op == "sum_over_users":
                return float(np.sum(a))
            if n.op == "mean_over_users":
                return float(np.mean(a))
            if n.op == "max_over_users":
                return float(np.max(a))
            if n.op == "min_over_users":
                return float(np.min(a))
            idx = np.zeros(a.shape[0], int) if server is None else np.asarray(server, int)
            return np.bincount(idx, weights=np.broadcast_to(a, idx.shape), minlength=n_servers)
        if k == "cmp":
            return ev(n.args[0]), ev(n.args[1])
        raise AssertionError(k)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return ev(root)


# ------------------------------------------------------------------------------------------------
# Pyomo backend


@dataclass
class PyomoValue:
    """A value while building a model: ``scope`` const|global|user|server and the expression(s)."""

    scope: str
    v: Any   # float | Pyomo expression | list of expressions (per user / per server)

    def at(self, i: int):
        return self.v[i] if self.scope in ("user", "server") else self.v


def to_pyomo(e: Expr | Node, values: Mapping[str, PyomoValue], m, add_component: Callable[[Any], Any]) -> PyomoValue:
    """Pyomo form of a checked expression. ``values`` maps each name to a :class:`PyomoValue`;
    ``m`` is the model (``m.U`` users, ``m.S`` servers, ``m.chi`` the association); ``add_component``
    attaches a new Var/Constraint to the model and returns it (epigraphs of max/min). A comparison
    returns a PyomoValue whose entries are ``(lhs, rhs)`` pairs."""
    import pyomo.environ as pyo

    root = e.root if isinstance(e, Expr) else e
    fns = {"log": pyo.log, "log2": lambda x: pyo.log(x) / math.log(2.0), "log10": pyo.log10, "exp": pyo.exp,
           "sqrt": pyo.sqrt, "abs": abs}

    def lift(scope: str, a: PyomoValue, b: PyomoValue, f) -> PyomoValue:
        if scope in ("user", "server"):
            size = len(a.v) if a.scope == scope else len(b.v)
            return PyomoValue(scope, [f(a.at(i), b.at(i)) for i in range(size)])
        return PyomoValue(scope, f(a.v, b.v))

    def ev(n: Node) -> PyomoValue:
        k = n.kind
        if k == "num":
            return PyomoValue("const", n.value)
        if k == "name":
            return values[n.op]
        if k == "neg":
            a = ev(n.args[0])
            return PyomoValue(a.scope, [-x for x in a.v] if isinstance(a.v, list) else -a.v)
        if k in ("bin", "cmp"):
            a, b = ev(n.args[0]), ev(n.args[1])
            f = (lambda x, y: (x, y)) if k == "cmp" else (
                (lambda x, y: x ** y) if n.op == "**" else (lambda x, y, o=n.op: _apply(o, x, y)))
            return lift(n.scope, a, b, f)
        if k == "call":
            a = ev(n.args[0])
            if n.op in ELEMENTWISE:
                f = fns[n.op]
                return PyomoValue(a.scope, [f(x) for x in a.v] if isinstance(a.v, list) else f(a.v))
            xs = a.v
            if n.op == "sum_over_users":
                return PyomoValue("global", sum(xs))
            if n.op == "mean_over_users":
                return PyomoValue("global", sum(xs) / len(xs))
            if n.op in ("max_over_users", "min_over_users"):
                t = add_component(pyo.Var(initialize=0.0))
                if n.op == "max_over_users":
                    add_component(pyo.Constraint(m.U, rule=lambda _m, i: xs[i] <= t))
                else:
                    add_component(pyo.Constraint(m.U, rule=lambda _m, i: xs[i] >= t))
                if isinstance(getattr(m, "epigraphs", None), list):   # model.load_solution sets τ from a point
                    m.epigraphs.append((t, xs, n.op[:3]))
                return PyomoValue("global", t)
            # sum_users: Σ_n χ[n, j]·x_n per server j
            return PyomoValue("server", [sum(m.chi[i, j] * xs[i] for i in m.U) for j in m.S])
        raise AssertionError(k)

    return ev(root)
