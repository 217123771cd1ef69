"""Registers the SFT decomposition, its baselines and its steps through the mecsplit hooks."""

from __future__ import annotations

from mecsplit.capabilities import SPLIT_BOUND_CLASSES, Capabilities
from mecsplit.plugins import hookimpl

from . import __version__
from .data import check_variant
from .solver import DESCRIPTIONS, DOMAINS, OPTIONS, PLANS, STEPS, solver_fn

BLOCKS = ("llm", "association", "user_compute", "edge_compute", "uplink", "compression", "memory", "split_bounds")
# the SFT problem (variant-models §2.4): the min-max delay under the accuracy and memory constraints, static
# or over T slots; split bounds added by a variant are folded into the compiled bounds it respects
CAPABILITIES = Capabilities(objectives=("max_delay",), blocks=BLOCKS, requires=BLOCKS[:6],
                            constraints=SPLIT_BOUND_CLASSES, slots=True, check=check_variant)
STEP_DOCS = {
    "sft-alm-large": "large timescale: augmented Lagrangian over split α and keep ratio ρ (accuracy and memory "
                     "dualised), the slots' spectrum/server share as recourse, inner NLP by CasADi's Ipopt",
    "sft-round-split": "α to whole blocks within every bound (memory cap included)",
    "sft-sqp-small": "small timescale: per slot, min-max delay over spectrum and server share for fixed (α, ρ) "
                     "(Ipopt or scipy SLSQP)",
}


@hookimpl
def register_solvers(registry):
    for name in PLANS:
        registry.add_solver(name=name, solve=solver_fn(name), exact=False, description=DESCRIPTIONS[name],
                            capabilities=CAPABILITIES, options=dict(OPTIONS), domains=DOMAINS, version=__version__,
                            requires=("casadi", "scipy"))
    for name, (kind, fn) in STEPS.items():
        registry.add_step(name=name, kind=kind, fn=fn, description=STEP_DOCS[name])
