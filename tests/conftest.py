"""Shared fixtures. Tests never depend on a plugin being installed unless they say so
(``pytest.importorskip``) — the core tests run with the core alone."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

CORE_VARIANTS = ("liu-zhao-2024", "default", "hardware-2024")


# probe verdicts (`mecsplit plugins --probe`) are cached here, not in the user's ~/.cache
PROBE_CACHE = tempfile.mkdtemp(prefix="mecsplit-test-cache-")
atexit.register(shutil.rmtree, PROBE_CACHE, True)


def run_cli(*args: str, env: dict | None = None, cwd=None, entry_points: bool = False) -> subprocess.CompletedProcess:
    """Run ``mecsplit ARGS`` in a fresh interpreter (as a user would). Installed entry-point plugins
    are not loaded unless ``entry_points`` (keeps these tests independent of what else is installed)."""
    e = dict(os.environ)
    e.setdefault("MECSPLIT_CACHE_DIR", PROBE_CACHE)
    if not entry_points:
        e["MECSPLIT_LOAD_PLUGINS"] = ""
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "mecsplit.cli", *args], capture_output=True, text=True, env=e, cwd=cwd, timeout=300)


@pytest.fixture
def cli():
    return run_cli


def random_feasible_point(variant, inst, rng: np.random.Generator) -> dict[str, list]:
    """A random point satisfying every core constraint (≤ budgets strictly, = budgets exactly)."""
    N, M = inst.N, inst.M
    llm, uc, ec, up = (inst.block(k) for k in ("llm", "user_compute", "edge_compute", "uplink"))
    server = rng.integers(0, M, N)
    if (ec["budget"] == "eq" or up["budget"] == "eq") and N >= M:
        server[:M] = rng.permutation(M)  # every server non-empty
    hi = llm["layers"] - (1 if variant.has_block("stability") else 0)
    alpha = rng.integers(int(np.ceil(llm["alpha_min"])), int(hi) + 1, N).astype(float)
    f = rng.uniform(uc["f_min_GHz"], uc["f_max_GHz"])
    p = rng.uniform(max(up["p_min_W"], 1e-3), up["p_max_W"])

    def shares(budget_total, kind, lo):
        w = rng.uniform(0.2, 1.0, N)
        tot = np.bincount(server, weights=w, minlength=M)
        frac = 1.0 if kind == "eq" else rng.uniform(0.5, 1.0)
        return np.maximum(budget_total[server] * frac * w / tot[server], lo)

    b = shares(up["b_max_MHz"], up["budget"], up["b_min_MHz"])
    fe = shares(ec["F_max_GHz"], ec["budget"], ec["fe_min_GHz"])
    return {"server": server.tolist(), "alpha": alpha.tolist(), "f_GHz": f.tolist(), "fe_GHz": fe.tolist(),
            "p_W": p.tolist(), "b_MHz": b.tolist()}
