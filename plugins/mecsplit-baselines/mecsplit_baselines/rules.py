"""Association rules and the simple resource rule (spec seed-models.md §1.11, Fig. 5 baselines).

Association ("subject to bandwidth" — a modelling choice of ours, not a constraint of the problem; the
paper does not say how bandwidth limits the baselines): a server admits at most ⌈N/M⌉ users, so every
admitted user gets at least the fair bandwidth share b_max·M/N; a variant's own cap ``n_users <= k``
lowers that. On `hardware-2024` this cap is what keeps these baselines far from the optimum
(docs/liuzhao.md, "Where the association gap comes from"). Greedy: users in order of their best channel pick
the server with the highest rate at the equal share they would get; random: a uniformly random
server with room left. With equality budgets (liu-zhao-2024) no server may stay empty, so empty
servers take the best-channel user from a server that has two or more.

Resource rule: equal shares of each server's bandwidth and GPU frequency (full budgets), full
transmit power, the closed-form user frequency f* = (ω_t a_T / (2 ω_e a_E))^{1/3} clipped to its box
(spec §1.9), and per user the best integer split α for those resources (an exact 1-D enumeration).
"""

from __future__ import annotations

import numpy as np


def capacity(inst) -> np.ndarray:
    """(M,) users each server admits: ⌈N/M⌉, or the variant's ``n_users <= k`` cap if smaller."""
    return np.minimum(-(-inst.N // inst.M), inst.compiled.max_users())


def _equal_share_rate(inst, n: int, counts: np.ndarray) -> np.ndarray:
    up = inst.block("uplink")
    b = up["b_max_MHz"] / (counts + 1.0)
    return b * np.log2(1 + up["snr_per_W_MHz"][n] * up["p_max_W"][n] / b)


def greedy_association(inst) -> np.ndarray:
    cap, counts = capacity(inst), np.zeros(inst.M)
    server = np.empty(inst.N, dtype=int)
    for n in np.argsort(-inst.topology["gain"].max(axis=1), kind="stable"):
        rate = np.where(counts < cap, _equal_share_rate(inst, n, counts), -np.inf)
        server[n] = int(np.argmax(rate))
        counts[server[n]] += 1
    return _fill_empty(inst, server)


def random_association(inst, rng: np.random.Generator) -> np.ndarray:
    cap, counts = capacity(inst), np.zeros(inst.M, dtype=int)
    server = np.empty(inst.N, dtype=int)
    for n in rng.permutation(inst.N):
        server[n] = int(rng.choice(np.flatnonzero(counts < cap)))
        counts[server[n]] += 1
    return _fill_empty(inst, server)


def _needs_every_server(inst) -> bool:
    return inst.block("uplink")["budget"] == "eq" or inst.block("edge_compute")["budget"] == "eq"


def _fill_empty(inst, server: np.ndarray) -> np.ndarray:
    if not _needs_every_server(inst) or inst.N < inst.M:
        return server
    gain = inst.topology["gain"]
    for m in range(inst.M):
        counts = np.bincount(server, minlength=inst.M)
        if counts[m] == 0:
            movable = np.flatnonzero(counts[server] >= 2)
            n = movable[np.argmax(gain[movable, m])]
            server[n] = m
    return server


def simple_resources(variant, inst, server: np.ndarray) -> dict[str, np.ndarray]:
    """Equal shares, full power, closed-form f, best integer α per user (see module doc)."""
    om = variant.objective.omega(inst)
    llm, uc, ec, up = (inst.block(k) for k in ("llm", "user_compute", "edge_compute", "uplink"))
    counts = np.bincount(server, minlength=inst.M)[server]
    b = up["b_max_MHz"][server] / counts
    fe = ec["F_max_GHz"][server] / counts
    a_T, a_E = variant.block("user_compute").per_layer(inst)
    e_T, e_E = (c[np.arange(inst.N), server] for c in variant.block("edge_compute").per_layer(inst))
    if om["energy"] > 0 and uc["kappa"] > 0:
        f = (om["delay"] * a_T / (2 * om["energy"] * a_E)) ** (1 / 3)
    else:
        f = uc["f_max_GHz"]
    f = np.clip(f, uc["f_min_GHz"], uc["f_max_GHz"])
    A = om["delay"] * a_T / f + om["energy"] * a_E * f**2        # cost per local layer
    B = om["delay"] * e_T / fe + om["energy"] * e_E * fe**2      # cost per edge layer
    Y, C = float(llm["layers"]), inst.compiled
    alphas = np.arange(C.alpha_lo.min(), C.alpha_hi.max() + 1, dtype=float)   # the compiled split bounds
    cost = alphas[None, :] * A[:, None] + (Y - alphas[None, :]) * B[:, None]
    if variant.has_block("stability"):
        cost = cost + om["stability"] * inst.block("stability")["c"][:, None] / (1 - alphas[None, :] / Y)
    cost[(alphas[None, :] < C.alpha_lo[:, None]) | (alphas[None, :] > C.alpha_hi[:, None])] = np.inf
    alpha = alphas[np.argmin(cost, axis=1)]
    return {"server": server, "alpha": alpha, "f_GHz": f, "fe_GHz": fe, "p_W": up["p_max_W"].astype(float), "b_MHz": b}
