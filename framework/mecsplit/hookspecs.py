"""Every hook of mecsplit, in one place (pluggy project name ``mecsplit``).

Plugins are discovered through the entry-point group ``mecsplit``; the built-in plugins in
``plugins/`` register exactly like third-party packages. A plugin module implements any subset of
these hooks with ``@mecsplit.hookimpl``::

    from mecsplit.plugins import hookimpl

    from mecsplit.capabilities import CORE_BLOCKS, Capabilities

    @hookimpl
    def register_solvers(registry):
        registry.add_solver(name="my-heuristic", solve=my_solve, exact=False, options={"iters": 10},
                            capabilities=Capabilities(objectives=("weighted_sum",), requires=CORE_BLOCKS))
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("mecsplit")
hookimpl = pluggy.HookimplMarker("mecsplit")   # re-exported by mecsplit.plugins, where plugins import it


@hookspec
def register_solvers(registry):
    """Called once when the plugin manager starts. Add solvers with
    ``registry.add_solver(name=, solve=, exact=, capabilities=, options=, description=,
    version=, requires=)`` (see :class:`mecsplit.plugins.SolverRegistry`); ``capabilities``
    (:class:`mecsplit.capabilities.Capabilities`) says which variants the solver takes — objective
    kinds, blocks, classes of added constraints, terms (the older ``variants=`` names / ``blocks=``
    still work). Also add reusable decomposition steps with
    ``registry.add_step(name=, kind=, fn=, description=)``."""


@hookspec
def register_blocks(registry):
    """Called once. Add model building blocks that variant files can name, with
    ``registry.add_block(cls)`` where ``cls`` subclasses :class:`mecsplit.blocks.Block`."""


@hookspec
def register_generators(registry):
    """Called once. Add instance generators (topology + channel models) with
    ``registry.add_generator(name, fn, description=, params=)``; ``fn(rng, n_users, n_servers, params)``
    returns a dict of named numpy arrays (see :mod:`mecsplit.generators`)."""


@hookspec
def solve_started(run):
    """A solve begins. ``run`` has ``solver``, ``variant``, ``instance_hash``, ``options``."""


@hookspec
def incumbent_found(run, t_s, objective):
    """The solver reported a new incumbent ``objective`` at ``t_s`` seconds after the start."""


@hookspec
def bound_improved(run, t_s, bound):
    """An exact solver reported a new valid lower ``bound`` at ``t_s`` seconds."""


@hookspec
def solve_finished(run, result):
    """A solve ended (any status); ``result`` is the verified :class:`mecsplit.result.Result`."""
