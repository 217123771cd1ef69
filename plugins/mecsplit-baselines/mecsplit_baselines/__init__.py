"""Greedy and random association baselines with a simple resource rule (a mecsplit plugin)."""

__version__ = "0.1.0"
