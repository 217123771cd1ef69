"""mecsplit: split fine-tuning of LLMs over mobile edge networks as declarative MINLPs,
pluggable decompositions, and benchmarks against certified optima.

Data flows one way: variant file -> Variant -> (+ seed) Instance -> Pyomo model -> solver plugin
-> Result -> independent check (evaluator) -> store -> report.
"""

__version__ = "0.1.0"
