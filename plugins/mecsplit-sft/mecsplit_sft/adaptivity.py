"""What adaptivity buys (docs/sft.md §4): the single-timescale re-optimisation per slot.

Re-deciding *everything* in every slot — split and keep ratio included — is not a point of the
two-timescale problem (α and ρ must hold across the slots), so the evaluator cannot verify it as one.
Each slot is instead solved as its own static instance (``Instance.slot_instance``) by ``sft-alm`` and
verified there; the slot average of those optima is the delay an idealised, fully adaptive system would
reach — an estimate of the upper bound on what adaptivity buys (a bound proper only if every slot were
solved exactly; sft-alm is within 1e-6 of the enumeration on tiny instances, tests/test_sft.py).
"""

from __future__ import annotations

import numpy as np

from mecsplit.solve import solve


def reopt_per_slot(inst, solver: str = "sft-alm", options: dict | None = None, time_limit_s: float | None = None) -> dict:
    """Per-slot results of ``solver`` on each slot alone: objectives (s), verdicts, and their mean."""
    out = []
    for t in range(inst.T):
        si = inst.slot_instance(t)
        r = solve(si.variant, si, solver, options, time_limit_s=time_limit_s)
        out.append({"slot": t, "objective": r.objective, "verdict": r.verification["verdict"],
                    "status": r.status.value, "wall_time_s": r.wall_time_s})
    ok = all(x["verdict"] == "ok" and x["status"] == "feasible" for x in out)
    return {"slots": out, "all_verified": ok, "mean_delay_s": float(np.mean([x["objective"] for x in out]))}
