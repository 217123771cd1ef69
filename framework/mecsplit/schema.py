"""One validation layer for every input (files, tables, numbers, sizes) — issue 21.

Each helper returns the validated value or raises :class:`~mecsplit.errors.InputError` naming the
file (``where``), the field and what is allowed: one line, exit code 2 in the CLI. Every reader of a
user file (variant and suite TOML, instance and result JSON) goes through :func:`read_toml` /
:func:`read_json`, so the same rules hold everywhere:

* a file is read only if it is a regular file of at most ``MAX_FILE_BYTES``, in UTF-8;
* nesting (tables in tables, arrays in arrays) is at most ``MAX_DEPTH`` deep;
* NaN and ±Infinity are rejected anywhere in a file, used or not (JSON's ``NaN``/``Infinity``
  tokens, overflowing literals such as ``1e999``, TOML's ``nan``/``inf``);
* sizes have documented maxima (``MAX_USERS``, ``MAX_SERVERS``, ``MAX_PAIRS``, ``MAX_SEED``) and an
  instance's memory is estimated before anything is allocated (:func:`check_memory`).

The limits are listed in docs/formats.md ("Limits").
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Iterable

from .errors import InputError

MAX_FILE_BYTES = 256 * 2**20   # any input file (an instance at MAX_PAIRS is ~25 MB of JSON)
MAX_DEPTH = 32                 # nesting of tables/arrays in any input file
MAX_USERS = 100_000
MAX_SERVERS = 10_000
MAX_PAIRS = 1_000_000          # users x servers (pair arrays, channel gains): ~0.2 GB, ~10 s to generate
MAX_SEED = 2**63 - 1           # seeds are stored as SQLite INTEGER
MAX_TIME_S = 7 * 86400.0       # any time limit (s)
MEMORY_FRACTION = 0.5          # an instance may take at most this share of the available memory
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}")  # names used in file paths (suites, groups)


# ------------------------------------------------------------------------------------------ files
def read_bytes(path: str | os.PathLike, what: str) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES; ``what`` says what was expected."""
    p, where = Path(path), str(path)
    try:
        if not p.exists():
            raise InputError(where, "<file>", "no such file", what)
        if not p.is_file():
            raise InputError(where, "<file>", "not a regular file (a folder?)", what)
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(where, "<file>", f"{size} bytes, larger than the maximum {MAX_FILE_BYTES}", what)
        return p.read_bytes()
    except PermissionError:
        raise InputError(where, "<file>", "permission denied", what) from None
    except OSError as e:
        raise InputError(where, "<file>", f"cannot be read ({e.strerror or type(e).__name__})", what) from None


def is_file(path: str | os.PathLike) -> bool:
    """``Path.is_file``, but False instead of an OSError for a name the system cannot look up (longer
    than NAME_MAX/PATH_MAX, a component that is not readable, ...)."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def is_dir(path: str | os.PathLike) -> bool:
    """``Path.is_dir``, False instead of an OSError (see :func:`is_file`)."""
    try:
        return Path(path).is_dir()
    except (OSError, ValueError):
        return False


def read_text(path: str | os.PathLike, what: str) -> str:
    try:
        return read_bytes(path, what).decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(str(path), "<file>", f"not UTF-8 text (byte {e.start})", f"UTF-8 text: {what}") from None


def _parse(loads, text: str, where: str, fmt: str, what: str) -> Any:
    try:
        data = loads(text)
    except RecursionError:
        raise InputError(where, f"<{fmt}>", "nested too deeply", f"at most {MAX_DEPTH} levels: {what}") from None
    except ValueError as e:  # TOMLDecodeError / JSONDecodeError, or an integer of more than 4300 digits
        raise InputError(where, f"<{fmt}>", f"not valid {fmt.upper()}: {e}", what) from None
    check_tree(where, data)
    return data


def read_toml(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """A TOML file as a table (depth and finiteness checked)."""
    return _parse(tomllib.loads, read_text(path, what), str(path), "toml", what)


def parse_json(text: str, where: str, what: str) -> Any:
    """JSON text -> value; NaN/Infinity tokens and overflowing numbers (1e999) are refused by
    :func:`check_tree`, which names the field."""
    return _parse(json.loads, text, where, "json", what)


def read_json(path: str | os.PathLike, what: str) -> Any:
    return parse_json(read_text(path, what), str(path), what)


def check_tree(where: str, data: Any, max_depth: int = MAX_DEPTH) -> None:
    """Depth <= max_depth and every float finite, in a parsed TOML/JSON value (iterative walk)."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        x, path, depth = stack.pop()
        if depth > max_depth:
            raise InputError(where, path or "<root>", f"nested more than {max_depth} levels deep",
                             f"at most {max_depth} levels of tables/arrays")
        if isinstance(x, float) and not math.isfinite(x):
            raise InputError(where, path or "<root>", f"got {x!r}: NaN or infinite values are not allowed anywhere",
                             "finite numbers")
        if isinstance(x, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k), depth + 1) for k, v in x.items())
        elif isinstance(x, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(x))


# ----------------------------------------------------------------------------------------- values
def describe(v: Any, limit: int = 60) -> str:
    """repr of a value, cut to ``limit`` characters (messages stay one short line)."""
    r = repr(v)
    r = r.replace("\n", "\\n").replace("\r", "\\r")
    return r if len(r) <= limit else r[:limit - 3] + "..."


def table(where: str, field: str, v: Any, allowed: str = "a table") -> dict[str, Any]:
    if not isinstance(v, dict):
        raise InputError(where, field, f"got {describe(v)}", allowed)
    return v


def known_keys(where: str, prefix: str, d: dict[str, Any], allowed: Iterable[str], what: str = "unknown key") -> None:
    allowed = set(allowed)
    extra = sorted(set(d) - allowed, key=str)
    if extra:
        f = f"{prefix}.{extra[0]}" if prefix else str(extra[0])
        raise InputError(where, f, what, ", ".join(sorted(allowed)) or "(none)")


def _range_text(lo, hi, lo_open, integer, unit, hi_open=False) -> str:
    kind = "a whole number" if integer else "a finite number"
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi:g}")
    return kind + (f" in {unit}" if unit else "") + (" " + " and ".join(parts) if parts else "")


def number(where: str, field: str, v: Any, *, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, hi_open: bool = False, integer: bool = False, unit: str = "") -> Any:
    """A finite int/float (never a bool or a string) within [lo, hi]; an int if ``integer``."""
    allowed = _range_text(lo, hi, lo_open, integer, unit, hi_open)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(where, field, f"got {describe(v)}", allowed)
    if isinstance(v, float) and not math.isfinite(v):
        raise InputError(where, field, f"got {v!r} (not finite)", allowed)
    if integer and not isinstance(v, int):
        if not float(v).is_integer():
            raise InputError(where, field, f"got {describe(v)}, not a whole number", allowed)
        v = int(v)
    if (lo is not None and (v <= lo if lo_open else v < lo)) or (hi is not None and (v >= hi if hi_open else v > hi)):
        raise InputError(where, field, f"got {describe(v)}, out of range", allowed)
    return v


def string(where: str, field: str, v: Any, choices: Iterable[str] | None = None, allowed: str = "a string",
           max_len: int = 1000) -> str:
    if choices is not None:
        choices = tuple(choices)
        if not isinstance(v, str) or v not in choices:
            raise InputError(where, field, f"got {describe(v)}", " | ".join(choices))
        return v
    if not isinstance(v, str) or len(v) > max_len:
        raise InputError(where, field, f"got {describe(v)}", allowed)
    return v


def name(where: str, field: str, v: Any) -> str:
    """A name that may become part of a file path: letters, digits, ``_ . + -``, not starting with
    a dot (so never ``..``), at most 100 characters."""
    if not isinstance(v, str) or not NAME_RE.fullmatch(v):
        raise InputError(where, field, f"got {describe(v)}",
                         "1-100 characters from A-Z a-z 0-9 _ . + -, starting with a letter or digit")
    return v


def boolean(where: str, field: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise InputError(where, field, f"got {describe(v)}", "true | false")
    return v


def list_of(where: str, field: str, v: Any, max_len: int, allowed: str, min_len: int = 1) -> list:
    if not isinstance(v, list) or not (min_len <= len(v) <= max_len):
        n = f" ({len(v)} items)" if isinstance(v, list) else ""
        raise InputError(where, field, f"got {describe(v)}{n}", f"{allowed} ({min_len}-{max_len} items)")
    return v


def same_value(a: Any, b: Any) -> bool:
    """Equality that does not mix kinds: ``True != 1``, ``"1" != 1``, ``1 == 1.0``; lists and tables
    compared element by element."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def finite_json(where: str, field: str, v: Any) -> Any:
    """A JSON-able value (e.g. a solver option) with no NaN/inf anywhere in it."""
    try:
        check_tree(where, v)
    except InputError as e:
        raise InputError(where, field if e.field == "<root>" else f"{field}.{e.field}", e.problem, e.allowed) from None
    return v


def numeric_array(where: str, field: str, values: Any, shape: tuple[int, ...], integer: bool = False,
                  lo: float | None = None, hi: float | None = None) -> "np.ndarray":
    """A nested list of the given shape whose every element is a finite int/float (not a
    bool, string or null), within [lo, hi]; returned as a float (or int) array."""
    import numpy as np   # here, not at the top: the CLI's argument types import this module (quick --help)

    allowed = f"{'whole ' if integer else ''}numbers" + (f" within [{lo}, {hi}]" if lo is not None or hi is not None else "") \
        + f", shape {list(shape)}"
    def leaves(v: Any, dims: tuple[int, ...]) -> Iterable[Any]:  # the elements, after checking the nesting
        if not isinstance(v, list) or len(v) != dims[0]:
            what = f"a list of {shape[0]}" if len(shape) == 1 else " x ".join(map(str, shape)) + " nested list"
            raise InputError(where, field, f"not {what}" if len(shape) == 1 else f"not a {what}", allowed)
        return v if len(dims) == 1 else itertools.chain.from_iterable(leaves(r, dims[1:]) for r in v)
    ok = object()
    bad = next((x for x in leaves(values, shape) if not (type(x) is float or type(x) is int)), ok)
    if bad is not ok:
        raise InputError(where, field, f"an element is {describe(bad, 30)}, not a number", allowed)
    try:
        a = np.asarray(values, dtype=float)
    except OverflowError:
        raise InputError(where, field, "an integer too large for a float", allowed) from None
    if not np.all(np.isfinite(a)):
        raise InputError(where, field, "contains NaN or infinite values", allowed)
    if (lo is not None and np.any(a < lo)) or (hi is not None and np.any(a > hi)):
        raise InputError(where, field, f"value out of range [{lo}, {hi}]", allowed)
    if integer:
        if np.any(a != np.rint(a)):
            raise InputError(where, field, "not whole numbers", allowed)
        return a.astype(np.int64)
    return a


# ------------------------------------------------------------------------------------------ sizes
def sizes(where: str, n_users: Any, n_servers: Any, field_users: str = "users", field_servers: str = "servers") -> tuple[int, int]:
    """Users and servers within the documented maxima (MAX_USERS, MAX_SERVERS, MAX_PAIRS)."""
    n = number(where, field_users, n_users, lo=1, hi=MAX_USERS, integer=True)
    m = number(where, field_servers, n_servers, lo=1, hi=MAX_SERVERS, integer=True)
    if n * m > MAX_PAIRS:
        raise InputError(where, f"{field_users} x {field_servers}", f"{n} x {m} = {n * m} pairs",
                         f"at most {MAX_PAIRS} user-server pairs")
    return n, m


def seed(where: str, field: str, v: Any) -> int:
    return number(where, field, v, lo=0, hi=MAX_SEED, integer=True)


def available_memory_bytes() -> int:
    """MemAvailable from /proc/meminfo (Linux), else free physical pages, else 4 GiB."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def check_memory(where: str, field: str, need_bytes: float, what: str) -> None:
    """Refuse work whose estimated memory exceeds MEMORY_FRACTION of the available memory."""
    avail = available_memory_bytes()
    if need_bytes > MEMORY_FRACTION * avail:
        raise InputError(where, field, f"{what} needs about {need_bytes / 2**30:.2f} GiB, more than "
                         f"{MEMORY_FRACTION:.0%} of the {avail / 2**30:.2f} GiB available", "a smaller size")
