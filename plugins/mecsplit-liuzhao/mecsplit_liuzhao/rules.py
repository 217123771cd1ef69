"""Simple association rules and the random / exact pieces the baselines need (spec §1.11).

* greedy association (Fig. 5 "Baseline"): users in order of their best channel take the server with
  the highest rate at full power and the equal share they would get, among servers with room
  (at most ⌈N/M⌉ users: our reading of the paper's "subject to bandwidth" — a modelling choice, not
  the paper's text; ``capped=False`` drops the cap);
* random association: a uniformly random server with room (seeded rng);
* with equality budgets no server may stay empty: an empty server takes, from a server with ≥ 2
  users, the user with the best channel to it;
* random resources (the "optimise-α-only" baseline): per-user random weights drawn once; bandwidth
  and GPU shares ∝ weight on each server (full budgets for "=", a random fraction in [0.5, 1] for
  "≤"), power and user frequency uniform in their boxes;
* random α (the "optimise-resources-only" baseline): uniform integer in [α_min, α_max].
"""

from __future__ import annotations

import numpy as np

from .model import LN2, Pairs


def capacity(P: Pairs) -> int:
    return -(-P.N // P.M)


def greedy_association(P: Pairs, capped: bool = True) -> np.ndarray:
    """``capped=False`` (not in the paper): no ⌈N/M⌉ cap — each user still takes the highest rate at
    the equal share it would get, so the shares, not a cap, spread the users."""
    cap, cnt = (capacity(P) if capped else P.N), np.zeros(P.M)
    server = np.empty(P.N, dtype=int)
    for n in np.argsort(-P.snr.max(axis=1), kind="stable"):
        b = P.Bw / (cnt + 1)
        rate = np.where(cnt < cap, b * np.log1p(P.snr[n] * P.p_hi[n] / b) / LN2, -np.inf)
        server[n] = int(np.argmax(rate))
        cnt[server[n]] += 1
    return fill_empty(P, server)


def random_association(P: Pairs, rng: np.random.Generator) -> np.ndarray:
    cap, cnt = capacity(P), np.zeros(P.M, dtype=int)
    server = np.empty(P.N, dtype=int)
    for n in rng.permutation(P.N):
        server[n] = int(rng.choice(np.flatnonzero(cnt < cap)))
        cnt[server[n]] += 1
    return fill_empty(P, server)


def fill_empty(P: Pairs, server: np.ndarray) -> np.ndarray:
    if not (P.fe_eq or P.b_eq) or P.N < P.M:
        return server
    server = server.copy()
    for m in range(P.M):
        cnt = np.bincount(server, minlength=P.M)
        if cnt[m] == 0:
            movable = np.flatnonzero(cnt[server] >= 2)
            server[movable[np.argmax(P.snr[movable, m])]] = m
    return server


def random_weights(P: Pairs, rng: np.random.Generator) -> dict:
    return {"wb": rng.uniform(0.1, 1.0, P.N), "wf": rng.uniform(0.1, 1.0, P.N),
            "fb": rng.uniform(0.5, 1.0, P.M), "ff": rng.uniform(0.5, 1.0, P.M),
            "p": rng.uniform(0.0, 1.0, P.N), "f": rng.uniform(0.0, 1.0, P.N)}


def random_resources(P: Pairs, server, w: dict) -> dict:
    """Resources from fixed random weights ``w`` (see :func:`random_weights`) for ``server``."""
    server = np.asarray(server, int)

    def share(total, weights, frac, eq, lo):
        tot = np.bincount(server, weights=weights, minlength=P.M)
        f = 1.0 if eq else frac[server]
        return np.maximum(total[server] * f * weights / tot[server], lo)

    return {"f_GHz": P.f_lo + w["f"] * (P.f_hi - P.f_lo),
            "p_W": np.maximum(P.p_min, 1e-3 * P.p_hi) + w["p"] * (P.p_hi - np.maximum(P.p_min, 1e-3 * P.p_hi)),
            "b_MHz": share(P.Bw, w["wb"], w["fb"], P.b_eq, P.b_lo),
            "fe_GHz": share(P.F, w["wf"], w["ff"], P.fe_eq, P.fe_lo)}


def random_alpha(P: Pairs, rng: np.random.Generator) -> np.ndarray:
    lo, hi = int(np.ceil(P.alpha_lo - 1e-9)), int(np.floor(P.alpha_hi + 1e-9))
    if P.integer:
        return rng.integers(lo, hi + 1, P.N).astype(float)
    return rng.uniform(P.alpha_lo, P.alpha_hi, P.N)
