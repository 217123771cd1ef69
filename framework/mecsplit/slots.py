"""Channel dynamics: T small-timescale slots of block fading (SFT, variant-models §2.3-2.4, §5.2 item 12).

A variant asks for them in its generator table::

    [generator]
    slots = 8                 # T small-timescale slots per instance (default 1: the static channel)
    slot_fading = "rayleigh"  # the per-slot power fade |h_t|²: rayleigh (Exp(1)) | rician | none
    slot_rician_K_dB = 9.0    # K-factor of slot_fading = "rician"

Slot t's channel is the generator's gain times an i.i.d. power fade, g_t[n, m] = gain[n, m]·|h_t[n, m]|²
(block fading: constant within a slot, independent across slots; §2.3 rate model g_n(t) = ḡ_n|η_n(t)|²).
The fades come from a stream of their own (a substream of the generator's), so no other draw of the
instance moves, and ``slots = 1`` draws nothing: the instance (and its hash) is the
static one. With ``slots > 1`` the generator's own fading must be "none" (the slots carry the fading).

Timescales. Decisions the blocks declare with ``VarSpec(slot=True)`` — the uplink's power ``p_W`` and
bandwidth ``b_MHz`` and the edge server's GPU share ``fe_GHz`` — are small-timescale: one value per
(slot, user) when T > 1. Every other decision (split α, keep ratio ρ, association, device GPU clock)
is large-timescale and holds across the slots. The objective is the slot average of the per-slot
objective (SFT §2.4: the expected fine-tuning delay, as a sample average over the T slots); an added
per-user or per-server constraint must hold in every slot, an added objective term is slot-averaged.

Representation. In numpy (the evaluator) a small-timescale variable or a term that depends on one is an
array (T, N); large-timescale ones stay (N,) and broadcast. In Pyomo, ``m.T`` indexes the slots and a
per-user ledger entry that differs per slot is a :class:`Slotted` list of T expressions. With T = 1 no
index, set or entry changes: the model, the evaluation and the instance are those without this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .errors import InputError

KEYS = ("slots", "slot_fading", "slot_rician_K_dB")
FADING = ("rayleigh", "rician", "none")
MAX_SLOTS = 1000


@dataclass(frozen=True)
class SlotSpec:
    T: int = 1
    fading: str = "rayleigh"
    rician_K_dB: float = 9.0

    def record(self) -> dict[str, Any]:
        """What enters the structure hash and the instance file: nothing for the static channel."""
        if self.T == 1:
            return {}
        out: dict[str, Any] = {"slots": self.T, "slot_fading": self.fading}
        if self.fading == "rician":
            out["slot_rician_K_dB"] = self.rician_K_dB
        return out


def parse(gen: dict[str, Any], where: str) -> SlotSpec:
    """Remove the slot keys from a ``[generator]`` table (they apply to every generator) and validate them."""
    raw = {k: gen.pop(k) for k in KEYS if k in gen}
    T = raw.get("slots", 1)
    if isinstance(T, bool) or not isinstance(T, int) or not 1 <= T <= MAX_SLOTS:
        raise InputError(where, "generator.slots", f"got {T!r}", f"a whole number of slots in [1, {MAX_SLOTS}]")
    fading = raw.get("slot_fading", "rayleigh")
    if fading not in FADING:
        raise InputError(where, "generator.slot_fading", f"got {fading!r}", " | ".join(map(repr, FADING)))
    K = raw.get("slot_rician_K_dB", 9.0)
    if isinstance(K, bool) or not isinstance(K, (int, float)) or not -30 <= K <= 40:
        raise InputError(where, "generator.slot_rician_K_dB", f"got {K!r}", "a number of dB in [-30, 40]")
    spec = SlotSpec(T, fading, float(K))
    if T > 1 and (gen.get("rayleigh") is True or gen.get("fading", "none") != "none"):
        raise InputError(where, "generator.fading", "the generator fades the channel and slots > 1 fades every slot again",
                         "fading = \"none\" with slots > 1 (slot_fading is the small-scale fade)")
    return spec


def draw_fades(spec: SlotSpec, seed: int, shape: tuple[int, int]) -> np.ndarray:
    """(T, N, M) power fades |h_t|² (mean 1) from the slots' own stream: a substream of the generator's
    ``default_rng([seed, 0])`` (:func:`mecsplit.generators.substream`), so no other draw moves."""
    from .generators import rician_power, substream

    rng = substream(np.random.default_rng([seed, 0]), "generator.slots")
    full = (spec.T, *shape)
    if spec.fading == "none":
        return np.ones(full)
    if spec.fading == "rayleigh":
        return rng.exponential(1.0, size=full)
    return rician_power(rng, full, 10 ** (spec.rician_K_dB / 10))


# --- numpy ------------------------------------------------------------------------------------------

def per_server_sum(server: np.ndarray, x: np.ndarray, M: int) -> np.ndarray:
    """Σ over each server's users of x: (M,) for x of shape (N,), (T, M) for x of shape (T, N)."""
    if np.ndim(x) == 1:
        return np.bincount(server, weights=x, minlength=M)
    return np.stack([np.bincount(server, weights=row, minlength=M) for row in x])


def slot_view(values: dict[str, Any], t: int) -> dict[str, Any]:
    """Slot t of per-user quantities: (T, N) arrays -> row t; everything else unchanged."""
    return {k: (v[t] if np.ndim(v) == 2 else v) for k, v in values.items()}


def slot_mean(x: np.ndarray, T: int, reduce: Callable[[np.ndarray], Any] = np.sum) -> float:
    """The slot average of ``reduce`` over users: reduce(x) for (N,), mean_t reduce(x[t]) for (T, N)."""
    if np.ndim(x) < 2:
        return float(reduce(x))
    return float(np.mean([reduce(row) for row in np.broadcast_to(x, (T, np.shape(x)[-1]))]))


# --- Pyomo ------------------------------------------------------------------------------------------

class Slotted(list):
    """A per-user ledger entry (Pyomo) that differs per slot: one expression per slot."""


def at(x: Any, t: int) -> Any:
    """Slot t of a ledger entry (an entry that is the same in every slot is returned as is)."""
    return x[t] if isinstance(x, Slotted) else x


def per_slot(inst, fn: Callable[[int], Any]) -> Any:
    """fn(0) for the static channel, else Slotted(fn(t) for every slot)."""
    return fn(0) if inst.T == 1 else Slotted(fn(t) for t in range(inst.T))


def sets(m, inst, *index_sets):
    """The index sets of a small-timescale component: ``index_sets`` (+ ``m.T`` when T > 1)."""
    return index_sets if inst.T == 1 else (*index_sets, m.T)


def ix(inst, *idx: int, t: int = 0):
    """The index of a small-timescale component at slot t (no slot index when T = 1)."""
    k = idx if inst.T == 1 else (*idx, t)
    return k[0] if len(k) == 1 else k
