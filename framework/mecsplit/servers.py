"""Per-server parameters given as data: explicit lists and server classes (models/README.md, "Servers").

* **Explicit lists.** A block's per-server parameter may be a list (``[blocks.edge_compute]
  F_max_GHz = [3.0, 1.0, 1.0]``), and ``[generator] server_xy_km = [[x, y], ...]`` fixes the server
  positions: entry i belongs to server i, and the length must equal the number of servers.
* **Server classes.** ``[[generator.server_classes]]`` tables split the M servers by ``share`` and
  give each class its own values (a constant or a distribution) of blocks' per-server parameters,
  written ``<block>.<parameter> = value`` (e.g. ``edge_compute.F_max_GHz = 3.0``).

Counts (largest remainder, exact): class c's quota is q_c = share_c · M (shares as written, summing
to 1); it gets ⌊q_c⌋ servers, and the servers left go one each to the classes with the largest
remainders q_c − ⌊q_c⌋ (ties: the earlier class). Classes take consecutive server indices in file
order — the first class servers 0..k₁−1, the next k₁..k₁+k₂−1, … (server positions are i.i.d., so
this loses nothing; with ``server_xy_km`` it says which positions are which class).

Values. Each block first draws its per-server arrays exactly as without classes (its stream is
unchanged); then, for the servers of class c, every parameter the class sets is replaced by a draw
from the class's value, from the class's own stream ``default_rng([seed, crc32("server_class:" +
name)])`` in block order and then parameter order. A parameter a class does not set keeps the
block's value for that class's servers.
"""

from __future__ import annotations

import zlib
from fractions import Fraction
from typing import Any

import numpy as np

from .blocks.base import Block, Param, check_ordered, draw
from .errors import InputError

FIELD = "generator.server_classes"
CLASS_KEYS = (  # listed by `mecsplit blocks`
    Param("name", "1", "class-<i>", "the class's name (its random stream is named after it)"),
    Param("share", "1", "(required)", "fraction of the servers in the class, (0, 1]; shares sum to 1 (largest-remainder counts)"),
    Param("<block>.<param>", "", "(the block's value)", "a per-server parameter of a block for this class's servers: a number or a distribution",
          per="server"),
)
EXAMPLE = "[[generator.server_classes]] name = \"big\", share = 0.2, edge_compute.F_max_GHz = 3.0"


def class_counts(shares: list[float], n_servers: int) -> list[int]:
    """Servers per class by the largest-remainder rule (module docstring), computed exactly."""
    exact = [Fraction(repr(float(s))) for s in shares]
    quota = [q * n_servers / sum(exact) for q in exact]
    counts = [int(q) for q in quota]
    by_remainder = sorted(range(len(quota)), key=lambda c: (-(quota[c] - counts[c]), c))
    for c in by_remainder[: n_servers - sum(counts)]:
        counts[c] += 1
    return counts


def server_class_of(classes: list[dict[str, Any]], n_servers: int) -> np.ndarray:
    """Index of each server's class (consecutive blocks in file order)."""
    counts = class_counts([c["share"] for c in classes], n_servers)
    return np.repeat(np.arange(len(classes)), counts)


def _per_server(blocks: list[Block]) -> dict[str, dict[str, Any]]:
    return {b.name: {p.name: p for p in b.params if p.per == "server"} for b in blocks}


def check_classes(raw: Any, blocks: list[Block], where: str) -> list[dict[str, Any]]:
    """Validate the ``[[generator.server_classes]]`` array; returns it as recorded (validated values)."""
    if not isinstance(raw, list) or not raw or not all(isinstance(c, dict) for c in raw):
        raise InputError(where, FIELD, "must be an array of tables", EXAMPLE)
    params = _per_server(blocks)
    settable = ", ".join(f"{b}.{p}" for b, ps in params.items() for p in ps) or "(no block has per-server parameters)"
    out, names = [], set()
    for i, c in enumerate(raw):
        fld = f"{FIELD}[{i}]"
        name = c.get("name", f"class-{i + 1}")
        if not isinstance(name, str) or not name or name in names:
            raise InputError(where, f"{fld}.name", f"got {name!r}", "a name not used by another class")
        names.add(name)
        share = c.get("share")
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
            raise InputError(where, f"{fld}.share", f"got {share!r}", "the fraction of the servers in this class, in (0, 1]")
        rec: dict[str, Any] = {"name": name, "share": float(share)}
        for bname, values in c.items():
            if bname in ("name", "share"):
                continue
            if bname not in params or not isinstance(values, dict):
                raise InputError(where, f"{fld}.{bname}", "not a block's per-server parameter", f"name, share, {settable}")
            rec[bname] = {}
            for pname, value in values.items():
                prm = params[bname].get(pname)
                if prm is None:
                    raise InputError(where, f"{fld}.{bname}.{pname}", "not a per-server parameter of the block", settable)
                if isinstance(value, list):
                    raise InputError(where, f"{fld}.{bname}.{pname}", "a list in a server class",
                                     f"a number in {prm.unit} or a distribution table (the class's servers draw from it)")
                rec[bname][pname] = prm.validate(value, where, f"{fld}.{bname}.{pname}")
            block = next(b for b in blocks if b.name == bname)
            check_ordered(block, {**block.p, **rec[bname]}, where, f"{fld}.{bname}")
        out.append(rec)
    total = sum(Fraction(repr(c["share"])) for c in out)
    if total != 1:
        raise InputError(where, FIELD, f"the shares sum to {float(total):g}", "shares summing to 1")
    return out


def check_sizes(blocks: list[Block], gparams: dict[str, Any], n_servers: int, where: str, source: str) -> None:
    """Every explicit per-server list has one entry per server."""
    lists = [(f"blocks.{b.name}.{n}", v) for b in blocks for n, v in b.p.items() if isinstance(v, list)]
    if "server_xy_km" in gparams:
        lists.append(("generator.server_xy_km", gparams["server_xy_km"]))
    for fld, values in lists:
        if len(values) != n_servers:
            raise InputError(where, fld, f"{len(values)} entries (one per server) but {source} = {n_servers}",
                             f"a list of exactly {n_servers} values, or a constant / distribution")


def fixed_server_count(variant) -> int | None:
    """The number of servers a variant's explicit per-server lists fix, if any."""
    _, gparams = variant.generator
    lists = [v for b in variant.blocks for v in b.p.values() if isinstance(v, list)]
    lists += [gparams["server_xy_km"]] if "server_xy_km" in gparams else []
    return len(lists[0]) if lists else None


def attach(gparams: dict[str, Any], classes: Any, blocks: list[Block], n_servers: int, where: str) -> dict[str, Any]:
    """The generator's recorded parameters with the validated server classes (if any), after
    checking the explicit lists against ``[sizes] servers``."""
    if classes is not None:
        gparams = {**gparams, "server_classes": check_classes(classes, blocks, where)}
    check_sizes(blocks, gparams, n_servers, where, "sizes.servers")
    return gparams


def apply_classes(variant, data: dict[str, dict[str, np.ndarray]], seed: int, n_servers: int) -> None:
    """Overwrite the class servers' entries of the blocks' per-server arrays (module docstring)."""
    classes = variant.generator[1].get("server_classes")
    if not classes:
        return
    start = 0
    for c, k in zip(classes, class_counts([c["share"] for c in classes], n_servers)):
        rng = np.random.default_rng([seed, zlib.crc32(f"server_class:{c['name']}".encode())])
        for b in variant.blocks:
            for prm in b.params:
                if prm.name in c.get(b.name, {}):
                    data[b.name][prm.name][start:start + k] = draw(c[b.name][prm.name], rng, (k,), prm.integer)
        start += k
