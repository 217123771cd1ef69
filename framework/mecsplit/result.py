"""One result schema for every solver (design-notes §2).

A solver plugin returns an :class:`Outcome` (what only it knows: status, solution, objective, bound,
iterations). The framework (``mecsplit.solve``) wraps it into a :class:`Result` with timing, the trace
recorded through the solve events, provenance, and the independent evaluator's verdict.

JSON layout (``Result.to_json``)::

    {"schema": "mecsplit.result/1",
     "status": "optimal|feasible|infeasible|time_limit|error",
     "objective": float|null,          # as reported by the solver (model units, see variant file)
     "bound": float|null,              # valid lower bound (minimisation); exact solvers only
     "gap": float|null,                # (objective - bound) / max(|objective|, 1e-10)
     "wall_time_s": float, "iterations": int, "message": str,
     "solution": {var: [values per user]} | null,
     "metrics": {"total_energy_J": .., "avg_delay_s": .., "mean_stability": .., ...},
     "trace": [{"t_s": .., "incumbent": .., "bound": .., "iteration": ..}, ...],
     "provenance": {"solver", "solver_version", "options", "seed", "instance_hash", "variant",
                    "mecsplit_version", "python", "platform"},
     "verification": {"feasible": bool, "max_violation": .., "objective_evaluated": ..,
                      "objective_agrees": bool, "flags": [str], "verdict": "ok|flagged"}}
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

SCHEMA = "mecsplit.result/1"


class Status(str, Enum):
    OPTIMAL = "optimal"          # exact solver: incumbent proven optimal within the gap tolerance
    FEASIBLE = "feasible"        # a feasible point, no optimality claim (every heuristic)
    INFEASIBLE = "infeasible"    # proven infeasible, or no feasible point found by a heuristic
    TIME_LIMIT = "time_limit"    # stopped by a limit; incumbent and bound are what it had
    ERROR = "error"              # crashed or misbehaved; message says why

    def __str__(self) -> str:  # pragma: no cover - cosmetic
        return self.value


@dataclass
class Outcome:
    """What a solver plugin's ``solve`` returns."""

    status: Status
    solution: dict[str, list] | None = None
    objective: float | None = None
    bound: float | None = None
    iterations: int = 0
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # solver-specific diagnostics (JSON-able)


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    if objective is None or bound is None or not math.isfinite(objective) or not math.isfinite(bound):
        return None
    return max(0.0, objective - bound) / max(abs(objective), 1e-10)


@dataclass
class Result:
    status: Status
    objective: float | None
    bound: float | None
    gap: float | None
    wall_time_s: float
    iterations: int
    solution: dict[str, list] | None
    metrics: dict[str, float]
    trace: list[dict[str, float | None]]
    provenance: dict[str, Any]
    verification: dict[str, Any] | None
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = Status(self.status).value
        return {"schema": SCHEMA, **d}

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(_jsonable(self.to_dict()), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Result":
        d = dict(d)
        d.pop("schema", None)
        d["status"] = Status(d["status"])
        return cls(**d)


def _jsonable(x: Any) -> Any:
    """Replace non-finite floats (not valid JSON) by None and numpy scalars by Python numbers."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Enum):
        return x.value
    if hasattr(x, "tolist"):  # numpy array / scalar
        return _jsonable(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
