"""One numeric compilation of (variant, instance): the problem data every consumer reads.

    variant + seed ──generate──> Instance (drawn arrays)
    Instance ──compile──> Compiled: each block's coefficients in model units (Block.derive), the
        per-user split bounds every block imposes, the objective weights ω, and the constraints and
        terms the variant adds, classified (mecsplit.constraints)
    Compiled ──> the Pyomo model (mecsplit.model), the evaluator's inputs (mecsplit.evaluate) and what
        the decomposition plugins read (exact, liu-zhao, dashf, ...)

Blocks own their numbers: ``inst.block(name)`` returns the block's scalars, drawn arrays and derived
coefficients (e.g. ``user_compute.t_layer`` in s·GHz per layer, ``uplink.snr_per_W_MHz``), computed
once here. Model units: TFLOP, GHz, MHz, Mbit, W, s, J, GB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .constraints import Constraint, Term


@dataclass
class Compiled:
    variant: Any
    N: int
    M: int
    blocks: dict[str, dict[str, Any]]    # block name -> its data in model units
    alpha_lo: np.ndarray                 # (N,) layers, the split bounds of every block combined
    alpha_hi: np.ndarray                 # (N,)
    integer_split: bool
    constraints: tuple[Constraint, ...]
    terms: tuple[Term, ...]
    instance: Any = None

    @property
    def omega(self) -> dict[str, float]:
        """ω per ledger (delay, energy, stability): the weights the objective applies."""
        return self.variant.objective.omega(self.instance)

    def user_bound(self, quantity: str, sense: str) -> np.ndarray | None:
        """The tightest per-user bound the variant's constraints put on ``quantity`` (shape (N,)):
        ``sense`` "<=" gives the smallest upper bound (e.g. the deadline of ``delay_s``), ">=" the
        largest lower bound (e.g. the rate floor of ``rate_Mbps``); None if there is none. An
        equality contributes to both."""
        vals = [c.value for c in self.constraints if c.kind == "user_bound" and c.quantity == quantity
                and c.sense in (sense, "==")]
        if not vals:
            return None
        return np.full(self.N, min(vals) if sense == "<=" else max(vals))

    def max_users(self) -> np.ndarray:
        """(M,) the most users each server may serve under the variant's ``n_users <= k`` caps (inf: none)."""
        caps = [c.value for c in self.constraints if c.kind == "server_count" and c.sense in ("<=", "==")]
        return np.full(self.M, math.floor(min(caps) + 1e-9) if caps else math.inf)

    def classes(self) -> set[str]:
        """Capability classes of the added constraints and terms."""
        return {c.cls for c in self.constraints} | {t.cls for t in self.terms}


def compile_instance(inst) -> Compiled:
    """Compile ``inst`` (an :class:`mecsplit.instance.Instance`). Blocks derive their data in the
    variant's order, so a block may read the data of the blocks before it through ``inst.block``."""
    variant = inst.variant
    data: dict[str, dict[str, Any]] = {}
    inst._block_data = data
    for b in variant.blocks:
        data[b.name] = {**b.scalars(), **inst.data.get(b.name, {})}
        data[b.name].update(b.derive(inst))
    lo, hi = np.full(inst.N, -np.inf), np.full(inst.N, np.inf)
    for b in variant.blocks:
        bounds = b.alpha_bounds(inst)
        if bounds is not None:
            lo, hi = np.maximum(lo, bounds[0]), np.minimum(hi, bounds[1])
    for c in variant.constraints:   # added bounds that are bounds on α (capabilities.SPLIT_BOUND_CLASSES)
        if c.kind != "user_bound" or c.quantity not in ("alpha", "memory_GB"):
            continue
        if c.quantity == "alpha":
            v = np.full(inst.N, c.value)
        else:    # memory_GB = base + α·block (memory block, §2.3): a bound on α
            d = data["memory"]
            v = (c.value - d["base_GB"]) / d["block_GB"]
        if c.sense in ("<=", "=="):
            hi = np.minimum(hi, v)
        if c.sense in (">=", "==") and c.quantity == "alpha":
            lo = np.maximum(lo, v)
    integer = variant.has_block("llm") and data["llm"]["split"] == "integer"
    if integer:   # whole layers: round inwards (a bound within 1e-9 of a whole number is that number)
        lo, hi = np.ceil(lo - 1e-9), np.floor(hi + 1e-9)
    return Compiled(variant, inst.N, inst.M, data, lo, hi, integer, variant.constraints, variant.terms, inst)
