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
from .compile import cache_info, clear_cache, compile_model
from .nlp import CasadiPyomoNLP
from .solver import CyIpoptDirectSolver, register

__all__ = ["NLPResult", "solve_nlp", "register", "CyIpoptDirectSolver", "CasadiPyomoNLP",
           "compile_model", "clear_cache", "cache_info"]

register()
