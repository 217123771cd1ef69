"""The building-block API of the declarative variant language.

A variant file (``models/*.toml``) lists blocks under ``[blocks.<name>]``; each block

* declares its parameters (:class:`Param`: unit, default, allowed range, and whether the instance
  generator draws it per user / per server from a distribution),
* derives data it needs from the instance (:meth:`Block.derive`),
* declares decision variables (:class:`VarSpec`),
* adds variables, constraints and *terms* to the Pyomo model (:meth:`Block.build`), and
* evaluates the same terms and constraint violations with plain numpy (:meth:`Block.evaluate`).

Terms are collected per user in three ledgers — ``delay`` (s), ``energy`` (J), ``stability`` (1) —
plus ``quality`` (service quality, DASHF) and ``memory`` (GB). The objective block combines them.
``build`` and ``evaluate`` are written independently on purpose: the evaluator is the check that
does not share the Pyomo model's code path.

Units inside models (design-notes §3.6): FLOP in TFLOP, frequencies in GHz, bandwidth in MHz,
upload sizes in Mbit, power in W, time in s, energy in J — so solvers see O(1) numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import InputError
from ..expr import Symbol, parse_unit
from ..schema import describe

PER = ("scalar", "user", "server", "pair")
DISTRIBUTIONS = {
    "uniform": ("low", "high"),
    "uniform_int": ("low", "high"),
    "choice": ("values",),
    "normal_clipped": ("mean", "std", "low", "high"),
}


@dataclass(frozen=True)
class Param:
    """A block parameter. ``per`` says whether the generator draws one value per user, per server,
    per (user, server) pair, or whether it is a scalar constant. ``default`` is a number, a string
    (for ``choices``), a bool, or a distribution table like ``{dist = "uniform", low = 1, high = 2}``;
    a per-server parameter may also be an explicit list, one value per server (``[2.0, 1.0, 1.0]``)."""

    name: str
    unit: str
    default: Any
    doc: str
    per: str = "scalar"
    min: float | None = None
    max: float | None = None
    integer: bool = False
    choices: tuple | None = None  # for string-valued options

    def validate(self, value: Any, where: str, field_path: str) -> Any:
        """Return the validated value or raise InputError naming the field and the fix."""
        if self.choices is not None:
            if value not in self.choices:
                raise InputError(where, field_path, f"got {describe(value)}", " | ".join(map(repr, self.choices)))
            return value
        if isinstance(value, bool) or isinstance(self.default, bool):
            if not isinstance(value, bool) or not isinstance(self.default, bool):
                raise InputError(where, field_path, f"got {describe(value)}", "true | false")
            return value
        if isinstance(value, dict):
            if self.per == "scalar":
                raise InputError(where, field_path, "a distribution was given for a constant",
                                 f"a number in {self.unit}")
            return self._validate_dist(value, where, field_path)
        if isinstance(value, list):
            return self._validate_list(value, where, field_path)
        return self._number(value, where, field_path)

    def _validate_list(self, values: list, where: str, field_path: str) -> list:
        """An explicit per-server list: value i belongs to server i (its length is checked against
        the number of servers by :mod:`mecsplit.servers`)."""
        if self.per != "server":
            raise InputError(where, field_path, f"a list was given for a per-{self.per} parameter",
                             f"a number in {self.unit}" + ("" if self.per == "scalar" else " or a distribution table"))
        if not values:
            raise InputError(where, field_path, "empty list", f"one number in {self.unit} per server")
        return [self._number(v, where, f"{field_path}[{i}]") for i, v in enumerate(values)]

    def _number(self, value: Any, where: str, field_path: str) -> float:
        rng = f"a {'whole ' if self.integer else ''}number in {self.unit}" + self._range_text()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(where, field_path, f"got {describe(value)}", rng)
        try:
            v = float(value)
        except OverflowError:  # an integer beyond the float range
            v = float("inf")
        if not np.isfinite(v):
            raise InputError(where, field_path, f"got {describe(value)} (not finite)", rng)
        if (self.min is not None and v < self.min) or (self.max is not None and v > self.max):
            raise InputError(where, field_path, f"got {describe(value)}, out of range", rng)
        if self.integer and v != int(v):
            raise InputError(where, field_path, f"got {describe(value)}, not a whole number", rng)
        return int(v) if self.integer else v

    def _range_text(self) -> str:
        lo = "-inf" if self.min is None else f"{self.min:g}"
        hi = "inf" if self.max is None else f"{self.max:g}"
        return f" within [{lo}, {hi}]"

    def _validate_dist(self, d: dict, where: str, field_path: str) -> dict:
        kind = d.get("dist")
        if not isinstance(kind, str) or kind not in DISTRIBUTIONS:
            raise InputError(where, f"{field_path}.dist", f"got {describe(kind)}", " | ".join(DISTRIBUTIONS))
        keys = set(DISTRIBUTIONS[kind]) | {"dist", "unit"}
        extra = set(d) - keys
        if extra:
            raise InputError(where, f"{field_path}.{sorted(extra)[0]}", "unknown key",
                             ", ".join(sorted(keys)))
        if "unit" in d and d["unit"] != self.unit:
            raise InputError(where, f"{field_path}.unit", f"got {describe(d['unit'])}", repr(self.unit))
        out = {"dist": kind}
        for k in DISTRIBUTIONS[kind]:
            if k not in d:
                raise InputError(where, f"{field_path}.{k}", "missing", f"{kind} needs {', '.join(DISTRIBUTIONS[kind])}")
            if k == "values":
                vals = d[k]
                if not isinstance(vals, list) or not vals:
                    raise InputError(where, f"{field_path}.values", "must be a non-empty list", f"numbers in {self.unit}")
                out[k] = [self._number(v, where, f"{field_path}.values") for v in vals]
            elif k == "std":
                out[k] = Param(self.name, self.unit, 0.0, "", min=0.0)._number(d[k], where, f"{field_path}.std")
            else:
                out[k] = self._number(d[k], where, f"{field_path}.{k}")
        if "low" in out and out["low"] > out["high"]:
            raise InputError(where, f"{field_path}.low", f"low {out['low']} > high {out['high']}", "low <= high")
        return out


def quantity(name: str, unit: str, doc: str) -> Symbol:
    """A per-user quantity a block publishes for variant expressions (name, unit, one line)."""
    return Symbol(name, parse_unit(unit), "user", doc)


def smallest(value: Any) -> float:
    """Smallest value a constant, explicit list or distribution can take."""
    if isinstance(value, list):
        return float(min(value))
    if not isinstance(value, dict):
        return float(value)
    return float(min(value["values"])) if "values" in value else float(value["low"])


def largest(value: Any) -> float:
    if isinstance(value, list):
        return float(max(value))
    if not isinstance(value, dict):
        return float(value)
    return float(max(value["values"])) if "values" in value else float(value["high"])


def check_ordered(block: "Block", p: dict[str, Any], where: str, prefix: str) -> None:
    """``low <= high`` for every ``block.ordered`` pair of the parameter values ``p``."""
    for lo_name, hi_name in block.ordered:
        if smallest(p[hi_name]) < largest(p[lo_name]):
            raise InputError(where, f"{prefix}.{lo_name}",
                             f"{largest(p[lo_name])} exceeds the smallest possible {hi_name} ({smallest(p[hi_name])})",
                             f"{lo_name} <= {hi_name}")


def draw(value: Any, rng: np.random.Generator, shape: tuple[int, ...], integer: bool) -> np.ndarray:
    """Draw an array of ``shape`` from a validated constant, explicit list or distribution (an
    explicit list draws nothing)."""
    if isinstance(value, list):
        if len(value) != shape[0]:
            raise ValueError(f"explicit list of {len(value)} values for shape {shape}")  # checked earlier by servers.check_sizes
        return np.asarray(value, dtype=int if integer else float)
    if not isinstance(value, dict):
        return np.full(shape, value, dtype=int if integer else float)
    kind = value["dist"]
    if kind == "uniform":
        out = rng.uniform(value["low"], value["high"], size=shape)
    elif kind == "uniform_int":
        out = rng.integers(int(value["low"]), int(value["high"]), size=shape, endpoint=True)
    elif kind == "choice":
        out = rng.choice(np.asarray(value["values"]), size=shape)
    else:  # normal_clipped
        out = np.clip(rng.normal(value["mean"], value["std"], size=shape), value["low"], value["high"])
    return np.rint(out).astype(int) if integer else np.asarray(out, dtype=float)


@dataclass(frozen=True)
class VarSpec:
    """A decision variable as it appears in a solution: one value per user (pair variables are
    stored as the value on the user's associated server)."""

    name: str
    unit: str
    doc: str
    integer: bool = False
    component: str = ""      # Pyomo component holding it ("" = same as name)
    pair: bool = False       # indexed (user, server) in the model; the solution keeps m(n)'s value
    slot: bool = False       # small timescale: one value per (slot, user) when the instance has T > 1 slots (mecsplit.slots)


@dataclass
class Ledger:
    """Per-user cost terms. In the Pyomo model the entries are lists of Pyomo expressions per user;
    in the evaluator they are numpy arrays (shape (N,)), summed per component. ``quantities`` holds
    the named per-user quantities blocks publish for variant expressions (:meth:`Block.quantities`),
    ``metrics`` (evaluator only) the numbers a block reports in every result (e.g. the compressed
    traffic per round). With T > 1 slots an entry that depends on a small-timescale decision is (T, N)
    in numpy and a :class:`mecsplit.slots.Slotted` list per user in Pyomo."""

    delay: dict[str, Any] = field(default_factory=dict)
    energy: dict[str, Any] = field(default_factory=dict)
    stability: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)
    quantities: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


class Violations:
    """Collects constraint violations found by the evaluator: name -> array of violation amounts
    (0 where satisfied), scaled relative to the constraint's right-hand side where one exists."""

    def __init__(self) -> None:
        self.items: dict[str, np.ndarray] = {}

    def add(self, name: str, amount: Any) -> None:
        a = np.atleast_1d(np.asarray(amount, dtype=float))
        a = np.where(np.isnan(a), np.inf, np.maximum(a, 0.0))
        self.items[name] = np.maximum(self.items[name], a) if name in self.items else a

    def leq(self, name: str, lhs: Any, rhs: Any) -> None:
        """relative violation of lhs <= rhs"""
        lhs, rhs = np.asarray(lhs, float), np.asarray(rhs, float)
        self.add(name, (lhs - rhs) / np.maximum(np.abs(rhs), 1.0))

    def eq(self, name: str, lhs: Any, rhs: Any) -> None:
        lhs, rhs = np.asarray(lhs, float), np.asarray(rhs, float)
        self.add(name, np.abs(lhs - rhs) / np.maximum(np.abs(rhs), 1.0))

    def max(self) -> float:
        return max((float(np.max(v)) for v in self.items.values() if v.size), default=0.0)


class Block:
    """Base class of a model building block. Subclasses set the class attributes and override the
    hooks they need. ``self.p`` holds the validated parameter values (constants or distributions)."""

    name: ClassVar[str]
    doc: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    requires: ClassVar[tuple[str, ...]] = ()
    ordered: ClassVar[tuple[tuple[str, str], ...]] = ()  # (low, high) parameter pairs that must satisfy low <= high

    def __init__(self, settings: dict[str, Any], where: str = "<variant>"):
        known = {p.name: p for p in self.params}
        extra = set(settings) - set(known) - {"enabled"}
        if extra:
            raise InputError(where, f"blocks.{self.name}.{sorted(extra)[0]}", "unknown parameter",
                             ", ".join(sorted(known)) or "(none)")
        self.p: dict[str, Any] = {}
        for name, prm in known.items():
            raw = settings.get(name, prm.default)
            self.p[name] = prm.validate(raw, where, f"blocks.{self.name}.{name}")
        check_ordered(self, self.p, where, f"blocks.{self.name}")

    # --- instance generation -------------------------------------------------------------------
    def generate(self, rng: np.random.Generator, n_users: int, n_servers: int) -> dict[str, np.ndarray]:
        """Draw this block's per-user / per-server / per-pair parameters."""
        shapes = {"user": (n_users,), "server": (n_servers,), "pair": (n_users, n_servers)}
        return {prm.name: draw(self.p[prm.name], rng, shapes[prm.per], prm.integer)
                for prm in self.params if prm.per != "scalar"}

    def scalars(self) -> dict[str, Any]:
        return {prm.name: self.p[prm.name] for prm in self.params if prm.per == "scalar"}

    def derive(self, inst: "Any") -> dict[str, np.ndarray]:
        """This block's numeric coefficients in model units, computed once when an instance is
        compiled (:mod:`mecsplit.compile`); the Pyomo model, the evaluator and every solver read them
        through ``inst.block(name)`` instead of re-deriving them."""
        return {}

    def quantities(self) -> tuple[Symbol, ...]:
        """Per-user quantities (beyond the decision variables) this block publishes for the
        constraints and terms of variant files; ``build`` and ``evaluate`` put their values in
        ``ledger.quantities`` under the same names."""
        return ()

    def alpha_bounds(self, inst: "Any") -> tuple[Any, Any] | None:
        """Per-user bounds (lo, hi) this block puts on the split α (None: no bound). The compiled
        problem intersects every block's bounds (``Compiled.alpha_lo/alpha_hi``)."""
        return None

    # --- model ---------------------------------------------------------------------------------
    def variables(self, inst: "Any") -> list[VarSpec]:
        return []

    def reference(self, inst: "Any", sol: dict[str, np.ndarray]) -> None:
        """Fill this block's variables of the reference solution used for weight normalisation
        (spec §1.11 [I]): α = Υ/2, strongest server, full power and frequency, equal shares."""

    def build(self, m: "Any", inst: "Any", ledger: Ledger) -> None:
        """Add Pyomo variables/constraints to ``m`` and per-user terms to ``ledger``."""

    def evaluate(self, sol: dict[str, np.ndarray], inst: "Any", ledger: Ledger, viol: Violations) -> None:
        """Numpy evaluation of the same terms and of every constraint's violation."""
