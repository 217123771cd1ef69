"""Seeded instances of a variant, and their JSON form (``mecsplit.instance/1``, see docs/formats.md).

Every random draw comes from ``seed``: the generator uses ``default_rng([seed, 0])`` and block
``b`` uses ``default_rng([seed, crc32(b)])``, server class ``c`` ``default_rng([seed, crc32("server_class:" + c)])``
(:mod:`mecsplit.servers`). Same variant + sizes + seed -> byte-identical JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from . import servers
from .errors import InputError
from .slots import draw_fades, slot_mean
from .variant import Variant

SCHEMA = "mecsplit.instance/1"
TOPOLOGY_UNITS = {"user_xy_km": "km", "server_xy_km": "km", "gain": "1", "gain_slots": "1"}


class Instance:
    """Instance data bound to its variant, compiled once (``self.compiled``, :mod:`mecsplit.compile`).
    ``block(name)`` returns that block's scalars, drawn arrays and derived coefficients in one dict."""

    def __init__(self, variant: Variant, seed: int, n_users: int, n_servers: int,
                 topology: dict[str, np.ndarray], data: dict[str, dict[str, Any]],
                 normalisation: dict[str, float] | None = None):
        from .compile import compile_instance

        self.variant, self.seed, self.N, self.M = variant, int(seed), int(n_users), int(n_servers)
        self.T = variant.slots.T   # small-timescale slots (mecsplit.slots); topology["gain_slots"] when T > 1
        self.topology, self.data = topology, data
        self._block_data: dict[str, dict[str, Any]] = {}
        self.compiled = compile_instance(self)
        self.normalisation = normalisation if normalisation is not None else self._normalise()

    def block(self, name: str) -> dict[str, Any]:
        return self._block_data[name]

    def has_block(self, name: str) -> bool:
        return self.variant.has_block(name)

    def servers_of(self, sol: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(sol["server"]).astype(int) if "server" in sol else np.zeros(self.N, dtype=int)

    @property
    def slot_gain(self) -> np.ndarray:
        """(T, N, M) linear channel gain of every slot (the static gain when T = 1)."""
        return self.topology["gain_slots"] if self.T > 1 else self.topology["gain"][None]

    def slot_instance(self, t: int) -> "Instance":
        """Slot t alone, as a static instance (T = 1, gain = slot t's gain, this instance's
        normalisation): the problem a single-timescale method re-solves in that slot."""
        static = self.variant.with_overrides({"generator": {"slots": 1}})
        topo = {k: v for k, v in self.topology.items() if k != "gain_slots"}
        topo["gain"] = self.slot_gain[t]
        return Instance(static, self.seed, self.N, self.M, topo, self.data, self.normalisation)

    def reference_solution(self) -> dict[str, np.ndarray]:
        sol: dict[str, np.ndarray] = {}
        for b in sorted(self.variant.blocks, key=lambda b: b.name != "association"):
            b.reference(self, sol)
        return sol

    def _normalise(self) -> dict[str, float]:
        from .evaluate import ledger_totals

        totals = ledger_totals(self.variant, self, self.reference_solution())
        return {"delay_ref_s": slot_mean(totals["delay"], self.T), "energy_ref_J": slot_mean(totals["energy"], self.T),
                "stability_ref": slot_mean(totals["stability"], self.T)}

    # --- JSON ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        blocks: dict[str, Any] = {}
        for b in self.variant.blocks:
            entry = {}
            for prm in b.params:
                if prm.per == "scalar":
                    entry[prm.name] = {"unit": prm.unit, "value": b.p[prm.name]}
                else:
                    entry[prm.name] = {"unit": prm.unit, "per": prm.per, "values": self.data[b.name][prm.name].tolist()}
            blocks[b.name] = entry
        gname, gparams = self.variant.generator
        gen = {"name": gname, "params": gparams}
        if self.variant.slots.record():
            gen["slots"] = self.variant.slots.record()
        return {
            "schema": SCHEMA, "variant": self.variant.name, "structure_hash": self.variant.structure_hash(),
            "seed": self.seed, "n_users": self.N, "n_servers": self.M,
            "generator": gen,
            "topology": {k: {"unit": TOPOLOGY_UNITS[k], "values": v.tolist()} for k, v in self.topology.items()},
            "blocks": blocks,
            "normalisation": self.normalisation,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=1, allow_nan=False) + "\n"

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())


def generate(variant: Variant, n_users: int | None = None, n_servers: int | None = None, seed: int = 0) -> Instance:
    from .plugins import get_manager

    N = variant.sizes["users"] if n_users is None else int(n_users)
    M = variant.sizes["servers"] if n_servers is None else int(n_servers)
    for name, v in (("users", N), ("servers", M)):
        if v < 1:
            raise InputError("<option>", name, f"got {v}", "a whole number >= 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError("<option>", "seed", f"got {seed!r}", "a whole number >= 0")
    gname, gparams = variant.generator
    servers.check_sizes(variant.blocks, gparams, M, str(variant.path), "the requested number of servers")
    topo = get_manager().generators[gname].fn(np.random.default_rng([seed, 0]), N, M, gparams)
    if variant.slots.T > 1:   # block fading per slot, from the slots' own stream (mecsplit.slots)
        topo["gain_slots"] = topo["gain"][None] * draw_fades(variant.slots, seed, (N, M))
    data = {b.name: b.generate(np.random.default_rng([seed, zlib.crc32(b.name.encode())]), N, M) for b in variant.blocks}
    servers.apply_classes(variant, data, seed, M)
    return Instance(variant, seed, N, M, topo, data)


def _array(where: str, field: str, entry: Any, shape: tuple[int, ...], integer: bool, lo: float | None, hi: float | None) -> np.ndarray:
    if not isinstance(entry, dict) or "values" not in entry:
        raise InputError(where, field, "missing or not a {unit, values} table", f"{{\"unit\": ..., \"values\": array of shape {shape}}}")
    try:
        a = np.asarray(entry["values"], dtype=float)
    except (TypeError, ValueError):
        raise InputError(where, f"{field}.values", "not a numeric array", f"numbers, shape {shape}") from None
    if a.shape != shape:
        raise InputError(where, f"{field}.values", f"shape {a.shape} does not match the sizes", f"shape {shape}")
    if not np.all(np.isfinite(a)):
        raise InputError(where, f"{field}.values", "contains NaN or infinite values", "finite numbers")
    if lo is not None and np.any(a < lo) or hi is not None and np.any(a > hi):
        raise InputError(where, f"{field}.values", f"value out of range [{lo}, {hi}]", f"numbers within [{lo}, {hi}]")
    if integer:
        if np.any(a != np.rint(a)):
            raise InputError(where, f"{field}.values", "not whole numbers", "whole numbers")
        return a.astype(int)
    return a


def load(path: str | Path, variant: Variant) -> Instance:
    """Read and validate an instance file for ``variant``; every problem is one InputError line."""
    where = str(path)
    try:
        d = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(where, "<file>", "no such file", "a path to an instance JSON (mecsplit instance -o FILE)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(where, "<json>", f"not valid JSON ({e})", "a file written by 'mecsplit instance'") from None
    return from_dict(d, variant, where)


def from_dict(d: Any, variant: Variant, where: str = "<instance>") -> Instance:
    if not isinstance(d, dict):
        raise InputError(where, "<root>", "not a JSON object", "a file written by 'mecsplit instance'")
    if d.get("schema") != SCHEMA:
        raise InputError(where, "schema", f"got {d.get('schema')!r}", repr(SCHEMA))
    if d.get("variant") != variant.name or d.get("structure_hash") != variant.structure_hash():
        raise InputError(where, "variant", f"instance is of variant {d.get('variant')!r} "
                         f"(structure {d.get('structure_hash')}), not {variant.name!r} ({variant.structure_hash()})",
                         f"--variant {d.get('variant')} or regenerate the instance with --variant {variant.name}")
    sizes = {}
    for k in ("n_users", "n_servers", "seed"):
        v = d.get(k)
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if k == "seed" else 1):
            raise InputError(where, k, f"got {v!r}", "a whole number >= " + ("0" if k == "seed" else "1"))
        sizes[k] = v
    N, M = sizes["n_users"], sizes["n_servers"]
    topo_in = d.get("topology")
    if not isinstance(topo_in, dict):
        raise InputError(where, "topology", "missing", "user_xy_km, server_xy_km, gain")
    shapes = {"user_xy_km": (N, 2), "server_xy_km": (M, 2), "gain": (N, M)}
    if variant.slots.T > 1:
        shapes["gain_slots"] = (variant.slots.T, N, M)
    topo = {k: _array(where, f"topology.{k}", topo_in.get(k), s, False, 0.0 if k.startswith("gain") else None, None)
            for k, s in shapes.items()}
    for k in ("gain", "gain_slots"):
        if k in topo and np.any(topo[k] <= 0):
            raise InputError(where, f"topology.{k}.values", "gains must be > 0", "positive linear channel gains")
    blocks_in = d.get("blocks")
    if not isinstance(blocks_in, dict):
        raise InputError(where, "blocks", "missing", ", ".join(b.name for b in variant.blocks))
    data: dict[str, dict[str, Any]] = {}
    per_shape = {"user": (N,), "server": (M,), "pair": (N, M)}
    for b in variant.blocks:
        bt = blocks_in.get(b.name)
        if not isinstance(bt, dict):
            raise InputError(where, f"blocks.{b.name}", "missing", "the tables written by 'mecsplit instance'")
        data[b.name] = {}
        for prm in b.params:
            if prm.per == "scalar":
                continue  # scalars are part of the structure hash checked above
            e = bt.get(prm.name)
            if isinstance(e, dict) and e.get("unit") != prm.unit:
                raise InputError(where, f"blocks.{b.name}.{prm.name}.unit", f"got {e.get('unit')!r}", repr(prm.unit))
            data[b.name][prm.name] = _array(where, f"blocks.{b.name}.{prm.name}", e, per_shape[prm.per], prm.integer, prm.min, prm.max)
    norm = d.get("normalisation")
    if not isinstance(norm, dict):
        raise InputError(where, "normalisation", "missing", "delay_ref_s, energy_ref_J, stability_ref")
    for k in ("delay_ref_s", "energy_ref_J", "stability_ref"):
        v = norm.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise InputError(where, f"normalisation.{k}", f"got {v!r}", "a finite number >= 0")
    return Instance(variant, sizes["seed"], N, M, topo, data, {k: float(norm[k]) for k in ("delay_ref_s", "energy_ref_J", "stability_ref")})
