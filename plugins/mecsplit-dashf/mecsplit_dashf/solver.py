"""The DASHF engine and its baselines.

``run(problem, opts, tracer, mode)``:

* mode "dashf": Dinkelbach outer loop; inside, AO of
  block 1 (association + offloading ratio: :func:`~mecsplit_dashf.steps.sdr_association`, or the
  exact capacitated block-1 solve by per-pair α + :func:`~mecsplit_dashf.steps.hungarian_slots`
  with ``association = "hungarian"``) and
  block 2 (resources: the Liu–Zhao FP step, then the exact α-step for those resources).
  A block-1 move is kept only if G_λ = ΣC − λΣQ, evaluated after block 2, decreases (block 1 works
  on tentative equal shares, so it is a model of G_λ, not G_λ itself): every inner loop is
  monotone, hence F(λ_k) ≤ 0 and λ_k non-increasing.
* "random" / "greedy": association fixed (uniform random, or best channel within the server slots),
  Dinkelbach over offloading ratio + resources (block 2 only);
* "local" / "offload": α = Υ (no offloading) or α = α_min (full offloading), best-channel
  association, resources by one FP step (Q is then fixed for the α-kinds: min ratio = min cost).
"""

from __future__ import annotations

import time

import numpy as np

from mecsplit.result import Outcome, Status

from .model import Dashf
from .steps import QCQP, dinkelbach, hungarian_slots, sdr_association, slot_capacity

OPTIONS = {"dinkelbach_iters": 30, "dinkelbach_tol": 1e-9, "ao_iters": 30, "ao_tol": 1e-10,
           "association": "sdr", "randomisations": 30, "slot_factor": 1.5, "sdr_solver": "auto",
           "fp_tol": 1e-9, "evaluate_candidates": 4, "block2_rounds": 20,
           "starts": 3, "pricing": "prices",
           "slot_step": 1}
# checked by the framework before a solve (mecsplit.solve.check_option); other numbers must be ≥ 0
DOMAINS = {"association": ("sdr", "hungarian"), "sdr_solver": ("auto", "SCS", "CLARABEL"), "pricing": ("prices", "shares"),
           "slot_factor": {"lo": 1}, **{k: {"lo": 1} for k in ("dinkelbach_iters", "ao_iters", "randomisations",
                                                              "evaluate_candidates", "starts")}}


def _sol(server, x) -> dict:
    out = {"server": [int(v) for v in server]}
    for k in ("alpha", "f_GHz", "fe_GHz", "p_W", "b_MHz"):
        out[k] = np.asarray(x[k], float).tolist()
    return out


class Engine:
    def __init__(self, problem, opts, tracer=None):
        self.problem, self.opts, self.tracer = problem, opts, tracer
        self.d = Dashf(problem.variant, problem.instance)
        self.cap = slot_capacity(self.d.N, self.d.M, opts["slot_factor"])
        self.stats = {"sdr_calls": 0, "sdr_time_s": 0.0, "sdr_values": [], "sdr_rank1": [], "block1_accepted": 0,
                      "block1_rejected": 0, "ao_iterations": 0, "rounding_chosen": {}}

    # --- blocks -------------------------------------------------------------------------------------
    def block2(self, server, alpha, lam, start=None, fix_alpha=False, rounds=None):
        """Resources by the FP step, then the exact α-step; repeated ``rounds`` times (each part never
        increases G_λ from a feasible start)."""
        d = self.d
        scale = 1.0 / lam if lam > 0 else 1.0
        x, _ = d.resources(server, alpha, start=start, scale=scale, tol=self.opts["fp_tol"])
        G = d.G(server, x, lam)
        rounds = self.opts["block2_rounds"] if rounds is None else rounds
        for _ in range(rounds if not fix_alpha else 0):
            a = d.alpha_step(server, x, lam)
            xa = dict(x, alpha=a)
            x2, _ = d.resources(server, a, start=xa, scale=scale, tol=self.opts["fp_tol"])
            G2 = d.G(server, x2, lam)
            if G2 < G - 1e-15 * abs(G):
                small = G - G2 <= 1e-12 * abs(G)
                x, G = x2, G2
                if small:
                    break
            else:
                Ga = d.G(server, xa, lam)
                if Ga < G:
                    x, G = xa, Ga
                break
        if start is not None and "alpha" in start:  # keep the start if the FP did not improve on it
            Gs = d.G(server, start, lam)
            if Gs < G:
                x, G = {k: np.asarray(v, float).copy() for k, v in start.items()}, Gs
        return x

    def block1(self, server, x, lam):
        d, o = self.d, self.opts
        pdat = d.pair_data(server, x, lam, pricing=o["pricing"])
        # exact block-1 score on the tentative shares: Σ φ_n,m(n)(α_n)
        rows = np.arange(d.N)

        def alpha_of(s):
            return d.best_alpha(pdat.D[rows, s], lam)

        def score(s, a):
            ph = d.phi(pdat, np.broadcast_to(a[:, None], pdat.K.shape), lam)
            return float(np.sum(ph[rows, s]))

        # trust region on the loads: slots = current load + slot_step (≤ the global cap), so a step
        # moves few users net and the priced pair model (exact only for small moves) stays accurate
        load = np.bincount(server, minlength=d.M)
        cap = self.cap if o["slot_step"] <= 0 else np.minimum(self.cap, load + o["slot_step"])
        cap = np.maximum(cap, load) if np.all(load <= self.cap) else self.cap
        if o["association"] == "hungarian":
            A = d.best_alpha(pdat.D, lam)
            s = hungarian_slots(d.phi(pdat, A, lam), cap)
            return [(s, A[rows, s])]
        qa, qb, qc = d.quad_majoriser(x["alpha"], lam)
        q = QCQP(K=pdat.K, D=pdat.D, qa=qa, qb=qb, qc=qc, lo=d.lo, hi=d.hi, cap=cap)
        rr = sdr_association(q, self.problem.rng, score=score, alpha_of=alpha_of, randomisations=o["randomisations"],
                             incumbent=(server, x["alpha"]) if np.all(load <= cap) else None,
                             solver=o["sdr_solver"])
        st = self.stats
        st["sdr_calls"] += 1
        st["sdr_time_s"] += rr.sdr.solve_time_s
        st["sdr_values"].append(rr.sdr.value)
        st["sdr_rank1"].append(rr.sdr.rank1_ratio)
        st["rounding_chosen"][rr.chosen] = st["rounding_chosen"].get(rr.chosen, 0) + 1
        pool = [(c[1], c[2]) for c in rr.info["pool"][: max(1, o["evaluate_candidates"])]]
        return pool or [(rr.server, rr.alpha)]

    def inner(self, lam, state, assoc=True):
        """AO on G_λ from ``state`` = (server, x); monotone."""
        d, o = self.d, self.opts
        server, x = state
        x = self.block2(server, x["alpha"], lam, start=x)
        G = d.G(server, x, lam)
        it = 0
        for it in range(1, o["ao_iters"] + 1):
            if not assoc:
                break
            # Gaussian randomisation keeps the best candidate by the true objective: the best few
            # (by the block-1 model) get their resources (block 2) and are compared on G_λ
            best = None
            for s1, a1 in self.block1(server, x, lam):
                if np.array_equal(s1, server) and np.allclose(a1, x["alpha"], rtol=1e-12, atol=1e-12):
                    continue
                x1 = self.block2(s1, a1, lam)
                G1 = d.G(s1, x1, lam)
                if best is None or G1 < best[0]:
                    best = (G1, s1, x1)
            if best is None:
                break
            G1, s1, x1 = best
            if G1 < G - o["ao_tol"] * abs(G):
                server, x, G = s1, x1, G1
                self.stats["block1_accepted"] += 1
            else:
                self.stats["block1_rejected"] += 1
                break
            if self.tracer is not None and self.tracer.out_of_time():
                break
        self.stats["ao_iterations"] += it
        return (server, x), {"G": G, "ao": it}

    # --- solvers ------------------------------------------------------------------------------------
    def initial(self, mode, start=0):
        d, rng = self.d, self.problem.rng
        gain = self.problem.instance.topology["gain"]
        if mode == "random" or (mode == "dashf" and start > 0):
            server = rng.integers(0, d.M, size=d.N)
        else:  # best channel within the slots (greedy)
            server = hungarian_slots(-np.log(gain), self.cap) if mode in ("dashf", "greedy") else np.argmax(gain, axis=1)
        alpha = np.full(d.N, {"local": d.hi, "offload": d.lo}.get(mode, 0.5 * (d.lo + d.hi)))
        x, _ = d.resources(server, alpha)
        return np.asarray(server, int), x

    def run(self, mode):
        d, o = self.d, self.opts
        t0 = time.perf_counter()
        extra = {"mode": mode, "slots_per_server": self.cap.tolist()}
        if mode in ("local", "offload"):
            server, x = self.initial(mode)
            hist, conv, iters = [], True, 1
        else:
            stop = (lambda: self.tracer.out_of_time()) if self.tracer is not None else None
            # multi-start (dashf): start 0 = best channel within the slots, the others random assignments
            n_starts = max(1, o["starts"]) if mode == "dashf" else 1
            best, per_start = None, []
            for k in range(n_starts):
                if k > 0 and stop is not None and stop():
                    break
                res = dinkelbach(lambda lam, st: self.inner(lam, st, assoc=(mode == "dashf")),
                                 lambda st: d.parts(*st)[0], lambda st: d.parts(*st)[1], self.initial(mode, k),
                                 tol=o["dinkelbach_tol"], max_iter=o["dinkelbach_iters"], stop=stop)
                per_start.append(res.lam)
                if best is None or res.lam < best.lam:
                    best = res
            res = best
            extra["ratio_per_start"] = per_start
            (server, x), hist, conv, iters = res.x, res.history, res.converged, res.iterations
            lam_final = res.lam
            extra["dinkelbach"] = {
                "lambda": [h["lambda"] for h in hist],
                "F": [h["F"] for h in hist[1:]],
                "converged": conv,
                # superlinear check: e_k = λ_k − λ_final; rates e_{k+1}/e_k → 0
                "error_ratios": _ratios([h["lambda"] - lam_final for h in hist]),
                "lambda_monotone": bool(all(b["lambda"] <= a["lambda"] * (1 + 1e-12) for a, b in zip(hist, hist[1:]))),
            }
        sol = _sol(server, x)
        obj = d.ratio(server, x)
        if self.tracer is not None:
            self.tracer.iteration(iters)
            self.tracer.incumbent(obj, sol)
        extra.update({k: (v if not isinstance(v, list) or len(v) < 200 else v[-200:]) for k, v in self.stats.items()})
        extra["fp_calls"] = d.fp_calls
        extra["wall_s"] = time.perf_counter() - t0
        c, q = d.parts(server, x)
        extra["cost"], extra["quality"] = c, q
        return Outcome(Status.FEASIBLE, solution=sol, objective=obj, iterations=iters, extra=extra,
                       message="" if conv else "Dinkelbach stopped before |F| <= tol")


def _ratios(errs):
    out = []
    for a, b in zip(errs, errs[1:]):
        if abs(a) > 1e-14 and abs(b) > 1e-14:
            out.append(b / a)
    return out


def run(problem, opts, tracer, mode: str) -> Outcome:
    return Engine(problem, opts, tracer).run(mode)
