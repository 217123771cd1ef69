"""``mecsplit plugins --probe``: every solver solves a 2-user x 1-server instance for real.

The probes run in parallel in the benchmark harness's worker pool (each in its own process, killed at
its hard limit), and their verdicts are cached in ``$MECSPLIT_CACHE_DIR/probes.json`` (default
``~/.cache/mecsplit``) under a key made of everything that could change the verdict: the solver's,
its plugin's and mecsplit's versions, the Python version, the installed versions of the plugin's
declared requirements and of the modules the solver requires, and the modification times of the
plugin's and the core's source files (so an edit in a checkout re-probes).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Any

from . import __version__

SIZE = (2, 1)          # users, servers
TIME_LIMIT_S = 30.0    # passed to the solver
GRACE_S = 10.0         # hard kill at TIME_LIMIT_S + GRACE_S


def cache_file() -> Path:
    base = os.environ.get("MECSPLIT_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mecsplit"
    return Path(base) / "probes.json"


CANDIDATES = ("default", "dashf-layers-2024", "dashf-2024", "sft-2025", "splitllm-2025")  # shipped, tried in order
_loaded: dict[str, object] = {}


def probe_variant(spec) -> str | None:
    """The first shipped variant the solver takes (None: it takes none of them)."""
    from .variant import load_variant

    for name in CANDIDATES:
        if name not in _loaded:
            _loaded[name] = load_variant(name)
        if spec.supports(_loaded[name]):
            return name
    return None


def _sources_stamp(path: str | None) -> str:
    """Size and modification time of every .py file in the folder of ``path`` (its package)."""
    if not path:
        return ""
    folder = Path(path).parent
    stats = sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in folder.glob("*.py"))
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:16]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def cache_key(mgr, spec) -> str:
    import mecsplit

    info = mgr.info.get(spec.plugin, {})
    module = mgr.pm.get_plugin(spec.plugin)
    reqs: dict[str, str] = {}
    if info.get("dist"):
        for text in metadata.requires(info["dist"]) or []:
            name = re.split(r"[\s;<>=!~\[]", text, maxsplit=1)[0]
            reqs[name] = _version(name)
    for mod in spec.requires:
        reqs.setdefault(mod.split(".")[0], _version(mod.split(".")[0]))
    key = {"solver": spec.name, "solver_version": spec.version, "plugin": spec.plugin,
           "plugin_version": info.get("version", ""), "mecsplit": __version__, "python": platform.python_version(),
           "requirements": reqs, "plugin_sources": _sources_stamp(getattr(module, "__file__", None)),
           "core_sources": _sources_stamp(mecsplit.__file__), "variant": probe_variant(spec)}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


def _verdict(spec, result: dict[str, Any]) -> tuple[str, bool]:
    """(text for the listing, whether to cache it). A cell killed at the hard limit is not cached."""
    ver = result.get("verification") or {}
    msg = (result.get("message") or "").splitlines()[0][:100] if result.get("message") else ""
    name = f"{probe_variant(spec)} {SIZE[0]}x{SIZE[1]}"
    if msg.startswith("InputError:"):  # the solver declines this instance (e.g. too large to enumerate)
        return f"not probed ({msg.removeprefix('InputError: ')})", True
    if (result.get("extra") or {}).get("killed"):
        return f"FAILED probe on {name}: no answer within {TIME_LIMIT_S + GRACE_S:.4g} s (killed)", False
    if result.get("status") == "error" or ver.get("verdict") != "ok":
        flags = " ".join(ver.get("flags") or [])
        return f"FAILED probe on {name}: {result.get('status')} {msg} {flags}".rstrip(), True
    stopped = ", stopped at the time limit" if result.get("status") == "time_limit" else ""
    return f"ok ({name} in {result.get('wall_time_s', 0.0):.4g} s{stopped})", True


def probe(mgr, specs, workers: int | None = None, use_cache: bool = True) -> dict[str, str]:
    """Solver name -> probe verdict for ``specs`` (available solvers only), cached ones marked so."""
    from .bench.runner import LocalPool

    path = cache_file()
    try:
        cache = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        cache = {}
    out: dict[str, str] = {}
    todo, keys = [], {}
    for spec in specs:
        if probe_variant(spec) is None:
            out[spec.name] = "not probed (takes none of the shipped variants)"
            continue
        keys[spec.name] = k = cache_key(mgr, spec)
        if use_cache and k in cache:
            out[spec.name] = f"{cache[k]} (cached)"
            continue
        todo.append({"cell_hash": spec.name, "solver": spec.name, "variant": probe_variant(spec), "overrides": {},
                     "n_users": SIZE[0], "n_servers": SIZE[1], "seed": 0, "options": {}, "time_limit_s": TIME_LIMIT_S,
                     "grace_s": GRACE_S, "instance_hash": "", "versions": {}})
    if todo:
        mgr.preload(p["solver"] for p in todo)
        done: dict[str, dict] = {}
        pool = LocalPool(min(workers or os.cpu_count() or 1, len(todo)))
        try:
            pool.run(todo, lambda p, r: done.__setitem__(p["solver"], json.loads(r)))
        finally:
            pool.close()
        for spec in specs:
            if spec.name in done:
                out[spec.name], keep = _verdict(spec, done[spec.name])
                if keep:
                    cache[keys[spec.name]] = out[spec.name]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
            os.replace(tmp, path)
        except OSError:  # a read-only home: probing still works, it is just not remembered
            pass
    return out
