"""Seeded instances of a variant, and their JSON form (``mecsplit.instance/1``, see docs/formats.md).

Every random draw comes from ``seed``: the generator uses ``default_rng([seed, 0])`` and block
``b`` uses ``default_rng([seed, crc32(b)])``, server class ``c`` ``default_rng([seed, crc32("server_class:" + c)])``
(:mod:`mecsplit.servers`). Same variant + sizes + seed -> byte-identical JSON.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from . import schema, servers
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
        norm = {"delay_ref_s": slot_mean(totals["delay"], self.T), "energy_ref_J": slot_mean(totals["energy"], self.T),
                "stability_ref": slot_mean(totals["stability"], self.T)}
        for k, v in norm.items():  # e.g. a maximum frequency, power or bandwidth of 0: no usable instance
            if not np.isfinite(v):
                raise InputError(str(self.variant.path), "normalisation", f"the reference solution's {k} is {v} "
                                 f"(seed {self.seed}, {self.N} x {self.M})",
                                 "parameters for which the reference point (alpha = layers/2, full power and "
                                 "frequency, equal shares) has finite delay, energy and stability")
        return norm

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


def memory_estimate_bytes(variant: Variant, n_users: int, n_servers: int) -> float:
    """Peak memory of generating and writing an instance (measured: ~165 bytes per stored number for
    numpy arrays + lists + JSON text + hash; 200 assumed), checked before anything is allocated."""
    per = {"user": n_users, "server": n_servers, "pair": n_users * n_servers, "scalar": 0}
    numbers = n_users * n_servers + 2 * (n_users + n_servers)
    numbers += sum(per[prm.per] for b in variant.blocks for prm in b.params)
    return 200.0 * numbers


def check_size(where: str, variant: Variant, n_users: Any, n_servers: Any, fields=("users", "servers")) -> tuple[int, int]:
    """Sizes within the documented maxima and the memory estimate (mecsplit.schema)."""
    N, M = schema.sizes(where, n_users, n_servers, *fields)
    schema.check_memory(where, fields[0], memory_estimate_bytes(variant, N, M), f"an instance of {N} x {M}")
    return N, M


def generate(variant: Variant, n_users: int | None = None, n_servers: int | None = None, seed: int = 0) -> Instance:
    from .plugins import get_manager

    N, M = check_size("<option>", variant, variant.sizes["users"] if n_users is None else n_users,
                      variant.sizes["servers"] if n_servers is None else n_servers)
    seed = schema.seed("<option>", "seed", seed)
    gname, gparams = variant.generator
    servers.check_sizes(variant.blocks, gparams, M, str(variant.path), "the requested number of servers")
    topo = get_manager().generators[gname].fn(np.random.default_rng([seed, 0]), N, M, gparams)
    if variant.slots.T > 1:   # block fading per slot, from the slots' own stream (mecsplit.slots)
        topo["gain_slots"] = topo["gain"][None] * draw_fades(variant.slots, seed, (N, M))
    data = {b.name: b.generate(np.random.default_rng([seed, zlib.crc32(b.name.encode())]), N, M) for b in variant.blocks}
    servers.apply_classes(variant, data, seed, M)
    return Instance(variant, seed, N, M, topo, data)


WHAT = "an instance JSON written by 'mecsplit instance -o FILE' (docs/formats.md)"
INSTANCE_KEYS = {"schema", "variant", "structure_hash", "seed", "n_users", "n_servers", "generator", "topology",
                 "blocks", "normalisation"}
NORM_KEYS = ("delay_ref_s", "energy_ref_J", "stability_ref")
NORM_RTOL = 1e-9  # stored normalisation vs recomputed from the data


def _array(where: str, field: str, entry: Any, shape: tuple[int, ...], unit: str, per: str | None, integer: bool,
           lo: float | None, hi: float | None) -> np.ndarray:
    keys = {"unit", "values"} | ({"per"} if per else set())
    e = schema.table(where, field, entry, f"{{{', '.join(sorted(keys))}}} with an array of shape {list(shape)}")
    schema.known_keys(where, field, e, keys)
    if e.get("unit") != unit:
        raise InputError(where, f"{field}.unit", f"got {schema.describe(e.get('unit'))}", repr(unit))
    if per and e.get("per") != per:
        raise InputError(where, f"{field}.per", f"got {schema.describe(e.get('per'))}", repr(per))
    return schema.numeric_array(where, f"{field}.values", e.get("values"), shape, integer, lo, hi)


def load(path: str | Path, variant: Variant) -> Instance:
    """Read and validate an instance file for ``variant``; every problem is one InputError line."""
    return from_dict(schema.read_json(path, WHAT), variant, str(path))


def from_dict(d: Any, variant: Variant, where: str = "<instance>") -> Instance:
    """Validate every field against the variant: known keys only, scalars and generator equal to the
    variant's, arrays of the right shape/unit/range holding only numbers, normalisation equal to the
    one recomputed from the data."""
    schema.table(where, "<root>", d, WHAT)
    schema.known_keys(where, "", d, INSTANCE_KEYS)
    if d.get("schema") != SCHEMA:
        raise InputError(where, "schema", f"got {schema.describe(d.get('schema'))}", repr(SCHEMA))
    if d.get("variant") != variant.name or d.get("structure_hash") != variant.structure_hash():
        theirs = d["variant"] if isinstance(d.get("variant"), str) and schema.NAME_RE.fullmatch(d["variant"]) \
            else schema.describe(d.get("variant"))
        structure = d.get("structure_hash") if isinstance(d.get("structure_hash"), str) else None
        raise InputError(where, "variant", f"instance is of variant {schema.describe(d.get('variant'))} (structure "
                         f"{schema.describe(structure, 20)[1:-1] if structure else None}), not {variant.name!r} "
                         f"({variant.structure_hash()})",
                         f"--variant {theirs} or regenerate the instance with --variant {variant.name}")
    N, M = check_size(where, variant, d.get("n_users"), d.get("n_servers"), ("n_users", "n_servers"))
    seed = schema.seed(where, "seed", d.get("seed"))
    gname, gparams = variant.generator
    gen = schema.table(where, "generator", d.get("generator"), "{name, params} as written by 'mecsplit instance'")
    schema.known_keys(where, "generator", gen, {"name", "params", "slots"} if variant.slots.record() else {"name", "params"})
    if variant.slots.record() and not schema.same_value(gen.get("slots"), variant.slots.record()):
        raise InputError(where, "generator.slots", f"got {schema.describe(gen.get('slots'))}",
                         f"{variant.slots.record()!r} (the variant's)")
    if not schema.same_value(gen.get("name"), gname):
        raise InputError(where, "generator.name", f"got {schema.describe(gen.get('name'))}", f"{gname!r} (the variant's)")
    params = schema.table(where, "generator.params", gen.get("params"))
    schema.known_keys(where, "generator.params", params, gparams)
    for k, v in gparams.items():
        if not schema.same_value(params.get(k), v):
            raise InputError(where, f"generator.params.{k}", f"got {schema.describe(params.get(k))}", f"{v!r} (the variant's)")
    topo_in = schema.table(where, "topology", d.get("topology"), ", ".join(TOPOLOGY_UNITS))
    shapes = {"user_xy_km": (N, 2), "server_xy_km": (M, 2), "gain": (N, M)}
    if variant.slots.T > 1:
        shapes["gain_slots"] = (variant.slots.T, N, M)
    schema.known_keys(where, "topology", topo_in, shapes)
    topo = {k: _array(where, f"topology.{k}", topo_in.get(k), s, TOPOLOGY_UNITS[k], None, False, None, None)
            for k, s in shapes.items()}
    for k in ("gain", "gain_slots"):
        if k in topo and np.any(topo[k] <= 0):
            raise InputError(where, f"topology.{k}.values", "gains must be > 0", "positive linear channel gains")
    blocks_in = schema.table(where, "blocks", d.get("blocks"), ", ".join(b.name for b in variant.blocks))
    schema.known_keys(where, "blocks", blocks_in, [b.name for b in variant.blocks], "not a block of the variant")
    data: dict[str, dict[str, Any]] = {}
    per_shape = {"user": (N,), "server": (M,), "pair": (N, M)}
    for b in variant.blocks:
        f = f"blocks.{b.name}"
        bt = schema.table(where, f, blocks_in.get(b.name), "the tables written by 'mecsplit instance'")
        schema.known_keys(where, f, bt, [prm.name for prm in b.params], "not a parameter of the block")
        data[b.name] = {}
        for prm in b.params:
            if prm.per == "scalar":  # must equal the variant's constant (it is part of the structure hash)
                e = schema.table(where, f"{f}.{prm.name}", bt.get(prm.name), "{unit, value}")
                schema.known_keys(where, f"{f}.{prm.name}", e, {"unit", "value"})
                if e.get("unit") != prm.unit:
                    raise InputError(where, f"{f}.{prm.name}.unit", f"got {schema.describe(e.get('unit'))}", repr(prm.unit))
                if not schema.same_value(e.get("value"), b.p[prm.name]):
                    raise InputError(where, f"{f}.{prm.name}.value", f"got {schema.describe(e.get('value'))}",
                                     f"{b.p[prm.name]!r} (the variant's value)")
                continue
            data[b.name][prm.name] = _array(where, f"{f}.{prm.name}", bt.get(prm.name), per_shape[prm.per], prm.unit,
                                            prm.per, prm.integer, prm.min, prm.max)
    norm = schema.table(where, "normalisation", d.get("normalisation"), ", ".join(NORM_KEYS))
    schema.known_keys(where, "normalisation", norm, NORM_KEYS)
    stored = {k: float(schema.number(where, f"normalisation.{k}", norm.get(k), lo=0.0)) for k in NORM_KEYS}
    inst = Instance(variant, seed, N, M, topo, data)  # recomputes the normalisation from the data
    for k in NORM_KEYS:
        if not abs(stored[k] - inst.normalisation[k]) <= NORM_RTOL * max(abs(inst.normalisation[k]), 1e-300):
            raise InputError(where, f"normalisation.{k}", f"got {stored[k]!r}, but the data give {inst.normalisation[k]!r}",
                             "the value recomputed from the instance data")
    inst.normalisation = stored  # equal within NORM_RTOL: keep the file's values (its hash)
    return inst
