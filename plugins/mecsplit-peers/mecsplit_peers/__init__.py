"""Generic peer solvers that work on any variant's Pyomo model (``problem.build_model()``).

* ``scip``       — SCIP through Pyomo's ``scip_direct`` (exact: OPTIMAL only when SCIP proves it);
* ``gurobi``     — Gurobi (gurobipy, global MINLP): a structured formulation of the core problem, or the variant's
  own model through Pyomo's ``gurobi_direct_minlp`` writer (exact: OPTIMAL only when Gurobi proves it);
* ``mindtpy-oa`` — Pyomo MindtPy outer approximation, HiGHS MILPs + Ipopt NLPs through ``mecsplit.ipopt``
  (a heuristic on this nonconvex model);
* ``enumerate``  — every integer assignment of a tiny instance, each continuous NLP by Ipopt (a heuristic:
  the fixed-integer NLPs are nonconvex in (p, b), so no bound).
"""

__version__ = "0.1.0"
