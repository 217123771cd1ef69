"""Ipopt for any Pyomo model without the ASL library.

Pyomo expression trees are walked into CasADi SX (``casadi_walk``), compiled into exact sparse
derivatives cached by structure (``compile``), exposed through PyNumero's ``NLP`` interface
(``nlp``) so Pyomo's ``CyIpoptNLP`` + cyipopt run unchanged, or handed to ``casadi.nlpsol``
(``drivers``). ``solver`` registers the legacy SolverFactory plugin ``cyipopt_direct`` (and
``cyipopt`` when PyNumero's ASL is missing); importing this package registers it.

    from mecsplit.ipopt import solve_nlp
    res = solve_nlp(model, options={"tol": 1e-8}, driver="cyipopt")
"""

from .api import NLPResult, solve_nlp
from .solver import CyIpoptDirectSolver, register

# heavier names (casadi, scipy, cyipopt) load on first use
_LAZY = {"compile_model": "compile", "clear_cache": "compile", "cache_info": "compile",
         "CasadiPyomoNLP": "nlp", "derivative_errors": "check"}

__all__ = ["NLPResult", "solve_nlp", "register", "CyIpoptDirectSolver", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


register()
