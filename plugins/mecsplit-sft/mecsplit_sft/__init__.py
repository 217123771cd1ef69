"""SFT's two-timescale decomposition for mecsplit (docs/sft.md)."""

__version__ = "0.1.0"
