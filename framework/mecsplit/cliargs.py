"""Command-line value types (argparse ``type=``), the one-line argparse error, and the crash report.

Every argument is checked when it is parsed, before any work: a bad value is one line on stderr and
exit code 2. Limits come from :mod:`mecsplit.schema` (documented in docs/formats.md, "Limits").
An exception that escapes every check is an internal error: exit code 3, one line naming the saved
traceback file (:func:`report_crash`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable

from . import schema
from .errors import InputError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``prog: error: ... (see 'prog --help')``), exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see '{self.prog} --help')\n")


def _checked(fn: Callable[[str], Any], allowed: str) -> Callable[[str], Any]:
    """An argparse type from a validator that raises InputError/ValueError; the message says what
    is allowed."""

    def conv(s: str) -> Any:
        try:
            return fn(s)
        except (InputError, ValueError, OverflowError, OSError) as e:  # OSError: e.g. a file name too long
            problem = e.problem if isinstance(e, InputError) else e.strerror if isinstance(e, OSError) else ""
            raise argparse.ArgumentTypeError(f"got {schema.describe(s)}{': ' + problem if problem else ''} "
                                             f"(allowed: {allowed})") from None

    conv.__name__ = fn.__name__
    return conv


def _int(s: str, lo: int, hi: int) -> int:
    v = int(s.strip(), 10)
    if not lo <= v <= hi:
        raise ValueError(s)
    return v


def _float(s: str, lo_open: float, hi: float) -> float:
    v = float(s)
    if not (math.isfinite(v) and lo_open < v <= hi):
        raise ValueError(s)
    return v


seed = _checked(lambda s: _int(s, 0, schema.MAX_SEED), f"a whole number in [0, {schema.MAX_SEED}]")
users = _checked(lambda s: _int(s, 1, schema.MAX_USERS), f"a whole number in [1, {schema.MAX_USERS}]")
servers = _checked(lambda s: _int(s, 1, schema.MAX_SERVERS), f"a whole number in [1, {schema.MAX_SERVERS}]")
time_limit = _checked(lambda s: _float(s, 0.0, schema.MAX_TIME_S), f"seconds, finite, > 0 and <= {schema.MAX_TIME_S:g}")
workers = _checked(lambda s: _int(s, 1, 1024), "a whole number in [1, 1024]")


def _input_file(s: str) -> str:
    p = Path(s)
    if not p.is_file():
        raise InputError(s, "<file>", "no such file" if not p.exists() else "not a regular file", "")
    if not os.access(p, os.R_OK):
        raise InputError(s, "<file>", "not readable", "")
    return s


def _output_file(s: str) -> str:
    p = Path(s)
    if not s or p.is_dir():
        raise InputError(s, "<file>", "is a folder" if s else "empty", "")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(s, "<file>", f"folder {str(parent)!r} does not exist", "")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise InputError(s, "<file>", "not writable", "")
    return s


def _output_dir(s: str) -> str:
    p = Path(s or ".")
    while not p.exists():  # created with its parents when written: the first existing ancestor decides
        p = p.parent
    if not p.is_dir():
        raise InputError(s, "<folder>", f"{str(p)!r} is not a folder", "")
    if not os.access(p, os.W_OK):
        raise InputError(s, "<folder>", f"{str(p)!r} is not writable", "")
    return s


def write_output(path: str, text: str) -> None:
    """Write ``-o PATH``; a write the system refuses (disk full, ...) is the user's path, not a bug: exit 2."""
    try:
        Path(path).write_text(text)
    except OSError as e:
        raise InputError(path, "-o/--output", f"cannot be written ({e.strerror or type(e).__name__})",
                         "a file path with room to write") from None


input_file = _checked(_input_file, "an existing readable file")
output_dir = _checked(_output_dir, "a folder path (created if missing) under a writable folder")
output_file = _checked(_output_file, "a file path in an existing writable folder")


def _option(s: str) -> tuple[str, Any]:
    if "=" not in s:
        raise InputError(s, "--option", "no '='", "")
    k, v = s.split("=", 1)
    if not k.strip():
        raise InputError(s, "--option", "empty key", "")
    try:
        val = json.loads(v)
    except (json.JSONDecodeError, RecursionError, ValueError):
        val = v  # a bare string, e.g. method=bnb
    try:
        schema.finite_json("<option>", k.strip(), val)
    except InputError as e:
        raise InputError(s, "--option", e.problem, "") from None
    return k.strip(), val


option = _checked(_option, "KEY=VALUE, VALUE in JSON with finite numbers or a bare string (e.g. iters=20, tol=1e-6)")


def report_crash(exc: BaseException) -> int:
    """An uncaught exception: save the traceback to a file, print one line naming it, exit 3."""
    try:
        fd, path = tempfile.mkstemp(prefix="mecsplit-traceback-", suffix=".txt")
        with os.fdopen(fd, "w") as fh:
            fh.write(f"mecsplit {' '.join(sys.argv[1:])}\n\n")
            traceback.print_exception(exc, file=fh)
        where = f"traceback saved to {path}"
    except Exception:  # noqa: BLE001 - e.g. MemoryError or a full disk: still one line, still exit 3
        where = "traceback could not be saved"
    msg = " ".join(str(exc).split())[:200]
    print(f"mecsplit: internal error (a bug, please report it): {type(exc).__name__}: {msg}; {where}", file=sys.stderr)
    return 3


def add_verbose(p, sub: bool = False) -> None:
    """``--verbose`` before or after the subcommand (a subcommand's default must not undo the top level's)."""
    p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS if sub else False,
                   help="let solvers print their own logs (HiGHS, SCIP, Ipopt, Pyomo)")
