"""Exact MINLP plugin for mecsplit (see docs/exact.md)."""
__version__ = "0.7.0"
