"""Instance generators: topology and channel (registered through ``register_generators``).

A generator draws ``user_xy_km`` (N,2), ``server_xy_km`` (M,2) and the linear channel ``gain``
(N,M) from its own random stream. Blocks draw their parameters from separate streams, so adding a
block never changes the topology drawn for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .blocks.base import Param
from .errors import InputError


@dataclass(frozen=True)
class Generator:
    name: str
    fn: Callable[[np.random.Generator, int, int, dict[str, Any]], dict[str, np.ndarray]]
    params: tuple[Param, ...] = ()
    description: str = ""

    def validate(self, settings: dict[str, Any], where: str) -> dict[str, Any]:
        known = {p.name: p for p in self.params}
        extra = set(settings) - set(known)
        if extra:
            raise InputError(where, f"generator.{sorted(extra)[0]}", "unknown parameter", ", ".join(sorted(known)) or "(none)")
        return {n: p.validate(settings.get(n, p.default), where, f"generator.{n}") for n, p in known.items()}


def path_loss_dB(d_km: np.ndarray) -> np.ndarray:
    """3GPP urban macro: 128.1 + 37.6 log10(d / km) dB (spec §1.11)."""
    return 128.1 + 37.6 * np.log10(d_km)


def uniform_square(rng: np.random.Generator, n_users: int, n_servers: int, p: dict[str, Any]) -> dict[str, np.ndarray]:
    side = p["side_km"]
    users = rng.uniform(0.0, side, size=(n_users, 2))
    servers = rng.uniform(0.0, side, size=(n_servers, 2))
    d = np.maximum(np.linalg.norm(users[:, None, :] - servers[None, :, :], axis=2), p["min_distance_km"])
    loss = path_loss_dB(d)
    if p["shadowing_dB"] > 0:
        loss = loss + rng.normal(0.0, p["shadowing_dB"], size=loss.shape)
    gain = 10 ** (-loss / 10)
    if p["rayleigh"]:
        gain = gain * rng.exponential(1.0, size=gain.shape)
    return {"user_xy_km": users, "server_xy_km": servers, "gain": gain}


UNIFORM_SQUARE = Generator(
    "uniform-square", uniform_square,
    params=(
        Param("side_km", "km", 1.0, "side of the square area holding users and servers (not given; spec suggests 0.5-1 km)", min=1e-3, max=1e3),
        Param("min_distance_km", "km", 0.01, "distances are clipped below at this value", min=1e-6, max=10),
        Param("shadowing_dB", "dB", 0.0, "log-normal shadowing standard deviation (0 = none, as in the spec)", min=0, max=30),
        Param("rayleigh", "1", False, "multiply the gain by an Exp(1) Rayleigh power fade"),
    ),
    description="users and servers uniform in a square; 3GPP path loss 128.1 + 37.6 log10(d/km) dB",
)

BUILTIN_GENERATORS = (UNIFORM_SQUARE,)
