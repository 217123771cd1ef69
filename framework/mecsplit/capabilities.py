"""What a solver can take, declared by the solver and matched to a variant by the framework.

A solver registers ``capabilities=Capabilities(...)`` (see :meth:`SolverRegistry.add_solver`)
instead of a list of variant names: the objective kinds, the blocks it understands, the classes of
added constraints (:attr:`mecsplit.constraints.Constraint.cls`, e.g. ``user:delay_s<=``,
``server:n_users<=``, ``general``) and whether it takes added objective terms. :meth:`why_not`
names the first feature of a variant the solver lacks (``mecsplit plugins --variant V`` prints it),
or returns None when the solver takes the variant.

``checked`` lists constraint classes a heuristic takes without modelling them: the framework verifies
its point, and a point that violates such a constraint is reported as ``infeasible`` ("no feasible
point found"), never as feasible (:func:`mecsplit.solve.finish`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

#: the blocks of the core problem (Liu & Zhao)
CORE_BLOCKS = ("llm", "association", "user_compute", "edge_compute", "uplink")
#: added-constraint classes every solver that respects the compiled split bounds handles: they are
#: folded into ``Compiled.alpha_lo/alpha_hi`` (mecsplit.compile)
SPLIT_BOUND_CLASSES = ("user:alpha<=", "user:alpha>=", "user:memory_GB<=")


@dataclass(frozen=True)
class Capabilities:
    objectives: tuple[str, ...] | None = None     # objective kinds (None: every kind)
    blocks: tuple[str, ...] | None = None         # blocks it understands (None: any block)
    requires: tuple[str, ...] = ()                # blocks a variant must have
    constraints: tuple[str, ...] | None = ()      # added-constraint classes it handles (None: any)
    checked: tuple[str, ...] = ()                 # classes taken but only checked, not modelled (heuristics)
    terms: bool = False                           # added objective terms
    slots: bool = False                           # channel dynamics: instances with T > 1 slots (mecsplit.slots)
    check: Callable[[Any], str | None] | None = None   # finer conditions: returns the reason or None
    fits: Callable[[Any, int, int], str | None] | None = None   # (variant, users, servers): why not this size

    def why_not(self, variant) -> str | None:
        names = [b.name for b in variant.blocks]
        missing = [b for b in self.requires if b not in names]
        if missing:
            return f"needs block '{missing[0]}'"
        if self.blocks is not None:
            other = [b for b in names if b not in self.blocks]
            if other:
                return f"does not handle block '{other[0]}'"
        if self.objectives is not None and variant.objective.kind not in self.objectives:
            return f"does not handle objective kind '{variant.objective.kind}' (handles {', '.join(self.objectives)})"
        if self.constraints is not None:
            for c in variant.constraints:
                if c.cls not in self.constraints and c.cls not in self.checked:
                    return f"does not handle constraint '{c.name}' (class {c.cls})"
        if variant.terms and not self.terms:
            return f"does not handle objective term '{variant.terms[0].name}'"
        if variant.slots.T > 1 and not self.slots:
            return f"does not handle channel dynamics (generator.slots = {variant.slots.T}: per-slot decisions)"
        return self.check(variant) if self.check is not None else None

    def why_not_size(self, variant, n_users: int, n_servers: int) -> str | None:
        """Why the solver cannot take an instance of this size (e.g. a size-limited licence), or None."""
        return self.fits(variant, n_users, n_servers) if self.fits is not None else None

    def only_checked(self, variant) -> list[str]:
        """Names of the variant's constraints this solver takes without modelling them."""
        if self.constraints is None:
            return []
        return [c.name for c in variant.constraints if c.cls not in self.constraints and c.cls in self.checked]


#: a solver on the Pyomo model of the whole problem (scip, mindtpy-oa, enumerate): takes everything
GENERIC = Capabilities(constraints=None, terms=True, slots=True)


def from_legacy(variants, blocks) -> Capabilities:
    """The capabilities of a solver registered the old way (``variants=`` names, ``blocks=`` required)."""
    def check(variant) -> str | None:
        if variants is not None and variant.name not in variants and not set(variants) & set(variant.chain):
            return f"supports the variants {', '.join(variants)} (and those extending them) only"
        return None
    return Capabilities(requires=tuple(blocks or ()), check=check)
