"""Instance generators: topology and channel (registered through ``register_generators``).

A generator draws ``user_xy_km`` (N,2), ``server_xy_km`` (M,2) and the linear channel ``gain``
(N,M) from its own random stream. Blocks draw their parameters from separate streams, so adding a
block never changes the topology drawn for a seed.

``uniform-square`` (models/README.md, "Generator"): users — and servers, unless ``server_xy_km``
fixes them — uniform in a square; the linear gain of user n at server m is

    g_nm = 10^(−(PL(d_nm, f) + X_nm) / 10) · |h_nm|²

with PL the ``path_loss_dB`` formula in ``d_km`` (distance, clipped below at ``min_distance_km``) and
``f_GHz`` (``carrier_GHz``), default 128.1 + 37.6 log10(d/km) (3GPP TR 36.814 macro, 2 GHz;
spec §1.11); X ~ N(0, shadowing_dB²) log-normal shadowing; |h|² the small-scale power fade of
``fading``: none (1), rayleigh (Exp(1)), rician (K-factor ``rician_K_dB``, E|h|² = 1).

Random streams. The stream passed in (``default_rng([seed, 0])``) draws, in this order, the user
positions, the server positions (also when ``server_xy_km`` fixes them: that draw is discarded, so
users, shadowing and fading stay those of the same variant with random servers), the shadowing and
the Rayleigh fade. Features added later draw from streams of their own (:func:`substream`) and never
shift these draws: the Rician fade uses ``substream(rng, "fading.rician")``.

Recorded parameters. The validated parameters enter the variant's structure hash and the instance
file. Parameters added after the first release — ``fading = "rician"`` with ``rician_K_dB``,
``path_loss_dB``, ``carrier_GHz``, ``server_xy_km`` — are recorded only when they differ from their
defaults (``rayleigh`` stays the record of the Rayleigh choice), so instances of older variants keep
their hashes.
"""

from __future__ import annotations

import ast
import zlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .blocks.base import Param
from .errors import InputError
from .expr import ELEMENTWISE, Expr, Symbol, evaluate, parse, parse_unit, portable_power


@dataclass(frozen=True)
class Generator:
    """``fn(rng, n_users, n_servers, params)`` draws the topology. ``check(settings, where)``, if
    given, validates the ``[generator]`` table itself (cross-field rules) and returns the recorded
    parameters; otherwise each of ``params`` is validated on its own."""

    name: str
    fn: Callable[[np.random.Generator, int, int, dict[str, Any]], dict[str, np.ndarray]]
    params: tuple[Param, ...] = ()
    description: str = ""
    check: Callable[[dict[str, Any], str], dict[str, Any]] | None = None

    def validate(self, settings: dict[str, Any], where: str) -> dict[str, Any]:
        known = {p.name: p for p in self.params}
        extra = set(settings) - set(known)
        if extra:
            raise InputError(where, f"generator.{sorted(extra)[0]}", "unknown parameter",
                             ", ".join(sorted([*known, "server_classes"])) or "(none)")
        if self.check is not None:
            return self.check(settings, where)
        return {n: p.validate(settings.get(n, p.default), where, f"generator.{n}") for n, p in known.items()}


def substream(rng: np.random.Generator, name: str) -> np.random.Generator:
    """An independent stream for ``name`` derived from ``rng``'s seed (not its state): drawing from
    it never shifts ``rng``'s own draws, and it is the same whatever was drawn before."""
    ss = rng.bit_generator.seed_seq
    return np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, zlib.crc32(name.encode()))))


# --- path loss -----------------------------------------------------------------------------------

DEFAULT_PATH_LOSS = "128.1 + 37.6 * log10(d_km)"
DEFAULT_CARRIER_GHZ = 2.0
PATH_LOSS_SYMBOLS = {
    "d_km": Symbol("d_km", parse_unit("km"), "user", "user-server distance, clipped below at min_distance_km"),
    "f_GHz": Symbol("f_GHz", parse_unit("GHz"), "global", "carrier frequency (generator.carrier_GHz)"),
}
FORMULA_ALLOWED = "numbers, d_km, f_GHz, + - * / **, ( ), " + ", ".join(sorted(ELEMENTWISE))


def path_loss_formula(text: Any, where: str = "<variant>") -> Expr:
    """Parse ``generator.path_loss_dB``: an expression in ``d_km`` and ``f_GHz`` whose value is a pure
    number (dB). ``log10(d_km)`` is a pure number (the log of a quantity in its named unit), so
    ``128.1 + 37.6 * log10(d_km)`` passes and ``d_km * 3`` (km) does not."""
    fld = "generator.path_loss_dB"
    if not isinstance(text, str):
        raise InputError(where, fld, f"got {text!r}", f"a formula as a string, e.g. \"{DEFAULT_PATH_LOSS}\"")
    e = parse(text, PATH_LOSS_SYMBOLS, where, fld)
    bad = sorted(e.functions() - set(ELEMENTWISE))
    if bad:
        raise InputError(where, fld, f"'{bad[0]}' is not allowed in a generator formula ({e.text!r})", FORMULA_ALLOWED)
    if e.unit is not None and not e.unit.dimensionless:
        raise InputError(where, fld, f"{e.text!r} is in {e.unit}, not a number of dB",
                         "a formula without a unit, e.g. 128.1 + 37.6 * log10(d_km) (log10 of a quantity is a pure number)")
    return e


def path_loss_dB(d_km: np.ndarray, f_GHz: float = DEFAULT_CARRIER_GHZ, formula: Expr | None = None) -> np.ndarray:
    """Path loss in dB at distances ``d_km`` (any shape); default 128.1 + 37.6 log10(d/km)."""
    value = evaluate(formula or _DEFAULT_FORMULA, {"d_km": d_km, "f_GHz": f_GHz}, portable=True)
    return np.broadcast_to(np.asarray(value, dtype=float), np.shape(d_km))


def _same_formula(a: str, b: str) -> bool:
    return ast.dump(ast.parse(a.strip(), mode="eval")) == ast.dump(ast.parse(b.strip(), mode="eval"))


def _gain_problem(loss_dB: np.ndarray, d_km: np.ndarray, gain: np.ndarray | None = None) -> str | None:
    """None if every gain (default 10^(−PL/10)) is finite and > 0, else what is wrong and where."""
    if gain is None:
        with np.errstate(over="ignore", invalid="ignore"):
            gain = portable_power(10.0, -loss_dB / 10)
    bad = ~(np.isfinite(gain) & (gain > 0))
    if not bad.any():
        return None
    i = np.flatnonzero(bad.ravel())[0]
    return f"path loss {loss_dB.ravel()[i]:g} dB at d_km = {d_km.ravel()[i]:g} gives a gain that is not a finite positive number"


# --- small-scale fading ----------------------------------------------------------------------------

FADING = ("none", "rayleigh", "rician")


def rician_power(rng: np.random.Generator, shape: tuple[int, ...], K: float) -> np.ndarray:
    """|h|² for h = √(K/(K+1)) + w, w ~ CN(0, 1/(K+1)): Rician with K-factor K (linear), E|h|² = 1."""
    s = np.sqrt(0.5 / (K + 1.0))
    re = np.sqrt(K / (K + 1.0)) + s * rng.standard_normal(shape)
    im = s * rng.standard_normal(shape)
    return re * re + im * im


# --- uniform-square --------------------------------------------------------------------------------

def uniform_square(rng: np.random.Generator, n_users: int, n_servers: int, p: dict[str, Any]) -> dict[str, np.ndarray]:
    side = p["side_km"]
    users = rng.uniform(0.0, side, size=(n_users, 2))
    servers = rng.uniform(0.0, side, size=(n_servers, 2))  # drawn even when fixed (see module doc)
    if "server_xy_km" in p:
        servers = np.asarray(p["server_xy_km"], dtype=float)
    d = np.maximum(np.linalg.norm(users[:, None, :] - servers[None, :, :], axis=2), p["min_distance_km"])
    formula = path_loss_formula(p["path_loss_dB"]) if "path_loss_dB" in p else None
    loss = path_loss_dB(d, p.get("carrier_GHz", DEFAULT_CARRIER_GHZ), formula)
    if p["shadowing_dB"] > 0:
        loss = loss + rng.normal(0.0, p["shadowing_dB"], size=loss.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        gain = portable_power(10.0, -loss / 10)   # (the same bits on every CPU: expr.PORTABLE)
    if p["rayleigh"]:
        gain = gain * rng.exponential(1.0, size=gain.shape)
    elif p.get("fading") == "rician":
        gain = gain * rician_power(substream(rng, "fading.rician"), gain.shape, 10 ** (p["rician_K_dB"] / 10))
    problem = _gain_problem(loss, d, gain)  # a guard: the load-time probe already refuses formulas failing on an interval
    if problem:
        raise InputError(f"<generator {UNIFORM_SQUARE.name}>", "generator.path_loss_dB", f"{problem} ({p.get('path_loss_dB', DEFAULT_PATH_LOSS)!r})",
                         "a formula with a finite path loss (|PL| < 3000 dB) at every distance >= min_distance_km")
    return {"user_xy_km": users, "server_xy_km": servers, "gain": gain}


UNIFORM_SQUARE_PARAMS = (
    Param("side_km", "km", 1.0, "side of the square area holding users and servers (not given; spec suggests 0.5-1 km)", min=1e-3, max=1e3),
    Param("min_distance_km", "km", 0.01, "distances are clipped below at this value", min=1e-6, max=10),
    Param("path_loss_dB", "dB", DEFAULT_PATH_LOSS,
          "path loss, an expression in d_km (km) and f_GHz (GHz) with functions " + ", ".join(sorted(ELEMENTWISE))
          + " (default: 3GPP TR 36.814 macro at 2 GHz, spec §1.11)"),
    Param("carrier_GHz", "GHz", DEFAULT_CARRIER_GHZ, "carrier frequency, the f_GHz of path_loss_dB", min=1e-3, max=1e3),
    Param("shadowing_dB", "dB", 0.0, "log-normal shadowing standard deviation (0 = none, as in the spec)", min=0, max=30),
    Param("fading", "1", "none", "small-scale power fade |h|^2: none | rayleigh (Exp(1)) | rician (K = rician_K_dB)", choices=FADING),
    Param("rician_K_dB", "dB", 9.0, "Rician K-factor, LOS over scattered power (used by fading = \"rician\"; "
          "9 dB = 3GPP TR 38.901 UMa/UMi LOS mean)", min=-30, max=40),
    Param("rayleigh", "1", False, "old spelling of fading = \"rayleigh\" (still accepted)"),
    Param("server_xy_km", "km", "(drawn)", "fixed server positions [[x, y], ...], one per server (default: uniform in the square)",
          per="server"),
)


def _positions(value: Any, where: str) -> list[list[float]]:
    fld = "generator.server_xy_km"
    allowed = "a list of [x_km, y_km] pairs of finite numbers, one per server"
    if not isinstance(value, list) or not value:
        raise InputError(where, fld, f"got {value!r}", allowed)
    out = []
    for i, xy in enumerate(value):
        ok = isinstance(xy, list) and len(xy) == 2 and all(
            isinstance(c, (int, float)) and not isinstance(c, bool) and np.isfinite(c) and abs(c) <= 1e4 for c in xy)
        if not ok:
            raise InputError(where, f"{fld}[{i}]", f"got {xy!r}", "[x_km, y_km], finite numbers within ±1e4 km")
        out.append([float(xy[0]), float(xy[1])])
    return out


def migrate_old_keys(table: dict[str, Any], where: str) -> dict[str, Any]:
    """One variant file (or override table) with the old ``[generator] rayleigh = true | false``
    rewritten as ``fading = "rayleigh" | "none"``, before ``extends`` merges it: a file's either
    spelling then overrides its parent's, whichever spelling the parent used."""
    gen = table.get("generator")
    if not isinstance(gen, dict) or "rayleigh" not in gen or gen.get("name", UNIFORM_SQUARE.name) != UNIFORM_SQUARE.name:
        return table
    gen = dict(gen)
    P = {p.name: p for p in UNIFORM_SQUARE_PARAMS}
    gen["fading"] = _fading(gen, where, P)
    del gen["rayleigh"]
    return {**table, "generator": gen}


def _fading(s: dict[str, Any], where: str, P: dict[str, Param]) -> str:
    """``fading``, or the old ``rayleigh = true``; both given in one table must agree."""
    legacy = P["rayleigh"].validate(s.get("rayleigh", False), where, "generator.rayleigh")
    if "fading" not in s:
        return "rayleigh" if legacy else "none"
    fading = P["fading"].validate(s["fading"], where, "generator.fading")
    if "rayleigh" in s and legacy != (fading == "rayleigh"):
        raise InputError(where, "generator.rayleigh", f"rayleigh = {str(legacy).lower()} contradicts fading = {fading!r}",
                         "fading alone (rayleigh = true is the old spelling of fading = \"rayleigh\")")
    return fading


def check_uniform_square(s: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate a ``[generator]`` table of uniform-square; returns the recorded parameters."""
    P = {p.name: p for p in UNIFORM_SQUARE_PARAMS}

    def val(n: str) -> Any:
        return P[n].validate(s.get(n, P[n].default), where, f"generator.{n}")

    rec = {n: val(n) for n in ("side_km", "min_distance_km", "shadowing_dB")}
    fading = _fading(s, where, P)
    rec["rayleigh"] = fading == "rayleigh"
    K_dB = val("rician_K_dB")  # checked even where unused (fading inherited as something else)
    if fading == "rician":
        rec["fading"], rec["rician_K_dB"] = fading, K_dB
    carrier = val("carrier_GHz")
    if carrier != DEFAULT_CARRIER_GHZ:
        rec["carrier_GHz"] = carrier
    formula = path_loss_formula(s.get("path_loss_dB", DEFAULT_PATH_LOSS), where)
    if not _same_formula(formula.text, DEFAULT_PATH_LOSS):
        rec["path_loss_dB"] = formula.text
    corners = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]) * rec["side_km"]
    servers = corners
    if "server_xy_km" in s:
        servers = np.asarray(rec.setdefault("server_xy_km", _positions(s["server_xy_km"], where)))
    # the formula must give a usable gain at every distance an instance can have (log-spaced probe)
    d_max = max(float(np.max(np.linalg.norm(corners[:, None] - servers[None], axis=2))), rec["min_distance_km"])
    d = np.geomspace(rec["min_distance_km"], d_max, 513)
    problem = _gain_problem(path_loss_dB(d, carrier, formula), d)
    if problem:
        raise InputError(where, "generator.path_loss_dB", f"{problem} ({formula.text!r})",
                         f"a formula with a finite path loss (|PL| < 3000 dB) for d_km in [{rec['min_distance_km']:g}, {d_max:g}]")
    return rec


UNIFORM_SQUARE = Generator(
    "uniform-square", uniform_square, params=UNIFORM_SQUARE_PARAMS, check=check_uniform_square,
    description="users (and servers, unless server_xy_km fixes them) uniform in a square; path loss formula "
                "(default 3GPP 128.1 + 37.6 log10(d/km) dB), log-normal shadowing, none/Rayleigh/Rician fading",
)
_DEFAULT_FORMULA = path_loss_formula(DEFAULT_PATH_LOSS, "<built-in>")

BUILTIN_GENERATORS = (UNIFORM_SQUARE,)
