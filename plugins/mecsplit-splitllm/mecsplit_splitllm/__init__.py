"""SplitLLM (Zhang, Cheng, Li, Wu, arXiv 2501.13318): the three-tier scheme's solver and its baselines
(a mecsplit plugin; docs/splitllm.md)."""

__version__ = "0.2.0"
