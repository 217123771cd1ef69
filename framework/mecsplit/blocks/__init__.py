"""Model building blocks that variant files compose (see :mod:`mecsplit.blocks.base`)."""

from .base import Block, Ledger, Param, VarSpec, Violations
from .core import CORE_BLOCKS

ALL_BLOCKS = (*CORE_BLOCKS,)

__all__ = ["Block", "Ledger", "Param", "VarSpec", "Violations", "ALL_BLOCKS"]
