"""Declarative problem variants: TOML files under ``models/`` (format: ``models/README.md``).

A variant names its blocks with their parameters, the instance generator, default sizes, the
objective and the constraints/terms it adds (:mod:`mecsplit.constraints`); ``extends = "other"``
deep-merges this file over another variant (``enabled = false`` drops an inherited block, constraint
or term; constraints and terms merge by name). Files are found by path, then by name in ``$MECSPLIT_MODELS``
(``os.pathsep``-separated folders), in ``./models``, then among the variants shipped with mecsplit.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import schema, servers
from .blocks.base import Block
from .constraints import Constraint, Term, merge_by_name, parse_constraints, parse_terms
from .errors import InputError
from .expr import ONE, Symbol, parse_unit
from .generators import migrate_old_keys
from .objective import Objective
from .slots import SlotSpec, parse as parse_slots

TOP_KEYS = {"variant", "sizes", "generator", "blocks", "objective", "constraints", "notes"}
VARIANT_KEYS = {"name", "description", "extends"}
SIZE_KEYS = {"users", "servers"}
NAMED_ARRAYS = ("constraints", "terms")   # arrays of named tables: extends merges them by name
SHIPPED = Path(__file__).parent / "data" / "models"


def search_path() -> list[Path]:
    """$MECSPLIT_MODELS (os.pathsep-separated), ./models, then the variants shipped with mecsplit."""
    extra = [Path(p) for p in os.environ.get("MECSPLIT_MODELS", "").split(os.pathsep) if p]
    return [*extra, Path.cwd() / "models", SHIPPED]


def available_variants() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for d in reversed(search_path()):
        if d.is_dir():
            out.update({p.stem: p for p in sorted(d.glob("*.toml"))})
    return dict(sorted(out.items()))


def find_variant(name_or_path: str | os.PathLike) -> Path:
    """A variant given explicitly as a ``.toml`` path, or by name on the search path. Nothing else
    is read: a value that is neither a name nor a ``.toml`` path is an unknown variant."""
    s = os.fspath(name_or_path)
    p = Path(s)
    if p.suffix == ".toml":
        if not p.is_file():
            raise InputError(s, "<file>", "no such variant file", "an existing .toml file or a variant name")
        return p
    if schema.NAME_RE.fullmatch(s):
        for d in search_path():
            cand = d / f"{s}.toml"
            if cand.is_file():
                return cand
    raise InputError(schema.describe(s, 80), "variant", "unknown variant",
                     (", ".join(available_variants()) or "(no variant files found)") + ", or a path to a .toml file")


def _read_toml(path: Path) -> dict[str, Any]:
    raw = schema.read_toml(path, "a variant file in TOML (see models/README.md)")
    if not isinstance(raw.get("variant"), dict):  # checked first: never echo a non-variant file's keys
        raise InputError(str(path), "variant", "not a variant file (no [variant] table)",
                         "[variant] name = ..., description = ... (models/README.md)")
    return raw


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and "dist" not in v:
            out[k] = deep_merge(out[k], v)
        elif k in NAMED_ARRAYS and isinstance(v, list) and isinstance(out.get(k), list):
            out[k] = copy.deepcopy(merge_by_name(out[k], v))
        else:
            out[k] = copy.deepcopy(v)
    return out


def _resolve(path: Path) -> tuple[dict[str, Any], list[str]]:
    """Merged table of a file and its ``extends`` chain, plus the chain of names (base first).

    ``extends`` names a variant (never a path): it is looked up next to the extending file, then on
    the search path, and must be a variant file. The chain is followed iteratively (any length)."""
    files: list[tuple[Path, dict[str, Any]]] = []
    seen: list[Path] = []
    while True:
        if path.resolve() in seen:
            chain = " -> ".join(p.stem for p in (*seen, path))
            raise InputError(str(files[-1][0]), "variant.extends", f"circular extends ({chain})", "a chain without cycles")
        seen.append(path.resolve())
        try:
            raw = _read_toml(path)
        except InputError as e:
            if not files or e.field != "variant":
                raise
            raise InputError(str(files[-1][0]), "variant.extends", f"{path.stem!r} is not a variant file (no [variant] table)",
                             ", ".join(available_variants())) from None
        schema.known_keys(str(path), "", raw, TOP_KEYS, "unknown top-level table")
        raw = migrate_old_keys(raw, str(path))
        meta = raw["variant"]
        schema.known_keys(str(path), "variant", meta, VARIANT_KEYS)
        for k in ("name", "description"):
            if k in meta:
                schema.string(str(path), f"variant.{k}", meta[k])
        files.append((path, raw))
        parent = meta.get("extends")
        if parent is None:
            break
        if not isinstance(parent, str) or not schema.NAME_RE.fullmatch(parent):
            raise InputError(str(path), "variant.extends", f"got {schema.describe(parent)}",
                             "the name of another variant (not a path): " + ", ".join(available_variants()))
        local = path.parent / f"{parent}.toml"
        try:
            path = local if local.is_file() else find_variant(parent)
        except InputError:
            raise InputError(str(path), "variant.extends", f"unknown variant {parent!r}", ", ".join(available_variants())) from None
    merged: dict[str, Any] = {}
    for fpath, raw in reversed(files):
        merged = deep_merge(merged, raw) if merged else raw
        merged["variant"]["name"] = raw["variant"].get("name", fpath.stem)  # a name is never inherited
    return merged, [p.stem for p, _ in reversed(files)]


@dataclass
class Variant:
    name: str
    path: Path
    description: str
    chain: list[str]
    blocks: list[Block]
    generator: tuple[str, dict[str, Any]]
    sizes: dict[str, int]
    objective: Objective
    table: dict[str, Any] = field(repr=False)
    constraints: tuple[Constraint, ...] = ()
    terms: tuple[Term, ...] = ()
    slots: SlotSpec = SlotSpec()      # channel dynamics ([generator] slots = T, mecsplit.slots)

    def block(self, name: str) -> Block:
        for b in self.blocks:
            if b.name == name:
                return b
        raise KeyError(name)

    def has_block(self, name: str) -> bool:
        return any(b.name == name for b in self.blocks)

    def structure_hash(self) -> str:
        """Hash of everything that shapes an instance (blocks, generator) — not the objective, so
        a weight sweep reuses instances."""
        key = {"blocks": {b.name: b.p for b in self.blocks}, "generator": self.generator}
        if self.slots.record():   # the static channel (T = 1) keeps the hash it always had
            key["slots"] = self.slots.record()
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def with_overrides(self, overrides: dict[str, Any]) -> "Variant":
        """A copy with a nested table merged over this one (e.g. a suite's weight sweep)."""
        return build_variant(deep_merge(self.table, migrate_old_keys(overrides, "<overrides>")), self.path, self.chain)

    def variables(self, inst) -> list:
        return [v for b in self.blocks for v in b.variables(inst)]

    def symbols(self) -> dict[str, Symbol]:
        """Every name a constraint or term of this variant may use, with its unit and scope."""
        return variant_symbols(self.blocks)


def variant_symbols(blocks: list[Block]) -> dict[str, Symbol]:
    out: dict[str, Symbol] = {}
    names = {b.name for b in blocks}
    for b in blocks:
        for v in b.variables(None):
            if v.name != "server":
                out[v.name] = Symbol(v.name, parse_unit(v.unit), "user", v.doc)
        out.update({q.name: q for q in b.quantities()})
    out["delay_s"] = Symbol("delay_s", parse_unit("s"), "user", "the user's delay per round: the sum of its delay terms")
    out["energy_J"] = Symbol("energy_J", parse_unit("J"), "user", "the user's energy per round: the sum of its energy terms")
    if "stability" in names:
        out["stability"] = Symbol("stability", ONE, "user", "the stability bound AS_n (eq. 10)")
    if "service_quality" in names:
        out["quality"] = Symbol("quality", ONE, "user", "the service quality U_n")
    if "association" in names:
        out["n_users"] = Symbol("n_users", ONE, "server", "number of users the server serves")
    return out


def load_variant(name_or_path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> Variant:
    path = find_variant(name_or_path)
    table, chain = _resolve(path)
    if overrides:
        schema.table(str(path), "overrides", overrides)
        schema.known_keys(str(path), "overrides", overrides, TOP_KEYS - {"variant"}, "unknown table in overrides")
        table = deep_merge(table, migrate_old_keys(overrides, "<overrides>"))
    return build_variant(table, path, chain)


def build_variant(table: dict[str, Any], path: Path, chain: list[str]) -> Variant:
    from .plugins import get_manager

    where = str(path)
    pm = get_manager()
    meta = table.get("variant", {})
    blocks_t = table.get("blocks")
    if not isinstance(blocks_t, dict) or not blocks_t:
        raise InputError(where, "blocks", "no blocks", "at least one [blocks.<name>] table")
    if not isinstance(meta, dict):
        raise InputError(where, "variant", "must be a table", "[variant] name = ..., description = ...")
    blocks: list[Block] = []
    for bname, settings in blocks_t.items():
        if not isinstance(settings, dict):
            raise InputError(where, f"blocks.{bname}", "must be a table", "[blocks.<name>] with parameters")
        enabled = settings.get("enabled", True)
        if not isinstance(enabled, bool):
            raise InputError(where, f"blocks.{bname}.enabled", f"got {enabled!r}", "true | false")
        cls = pm.blocks.get(bname)
        if not enabled:
            if cls is not None:  # a known block's settings are checked even when it is switched off
                cls({k: v for k, v in settings.items() if k != "enabled"}, where)
            continue
        if cls is None:
            raise InputError(where, f"blocks.{bname}", "unknown block", ", ".join(sorted(pm.blocks)))
        blocks.append(cls(settings, where))
    if not blocks:
        raise InputError(where, "blocks", "every block is disabled", "at least one enabled [blocks.<name>] table")
    names = {b.name for b in blocks}
    for b in blocks:
        missing = [r for r in b.requires if r not in names]
        if missing:
            raise InputError(where, f"blocks.{b.name}", f"needs block(s) {', '.join(missing)}", f"add [blocks.{missing[0]}]")
    gen = table.get("generator", {"name": "uniform-square"})
    if not isinstance(gen, dict):
        raise InputError(where, "generator", "must be a table", "[generator] name = ...")
    gen = dict(gen)
    gname = schema.string(where, "generator.name", gen.pop("name", "uniform-square"), sorted(pm.generators))
    classes = gen.pop("server_classes", None)
    slots = parse_slots(gen, where)
    gparams = pm.generators[gname].validate(gen, where)
    sizes_t = schema.table(where, "sizes", table.get("sizes", {}), "[sizes] users = N, servers = M")
    schema.known_keys(where, "sizes", sizes_t, SIZE_KEYS)
    n, m = schema.sizes(where, sizes_t.get("users", 50), sizes_t.get("servers", 10), "sizes.users", "sizes.servers")
    sizes = {"users": n, "servers": m}
    gparams = servers.attach(gparams, classes, blocks, sizes["servers"], where)
    obj_t = schema.table(where, "objective", table.get("objective", {}), "[objective] kind = ..., weights = {...}")
    obj = Objective.from_table({k: v for k, v in obj_t.items() if k != "terms"}, where)
    if obj.kind == "cost_per_quality" and not any(b.name == "service_quality" for b in blocks):
        raise InputError(where, "objective.kind", "cost_per_quality needs a quality term", "add [blocks.service_quality]")
    if (obj.kind == "peak_memory" or "peak_memory" in dict(obj.weights)) and not any(b.name == "memory" for b in blocks):
        raise InputError(where, "objective.kind" if obj.kind == "peak_memory" else "objective.weights.peak_memory",
                         "peak memory needs the memory profile", "add [blocks.memory]")
    symbols = variant_symbols(blocks)
    constraints = parse_constraints(table.get("constraints", []), symbols, where)
    terms = parse_terms(obj_t.get("terms", []), symbols, where)
    return Variant(name=meta.get("name", path.stem), path=path, description=meta.get("description", ""),
                   chain=chain, blocks=blocks, generator=(gname, gparams), sizes=sizes, objective=obj, table=table,
                   constraints=constraints, terms=terms, slots=slots)
