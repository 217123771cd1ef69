"""Numbers for people: 4 significant digits, gaps as percentages. JSON keeps full precision."""

from __future__ import annotations

import math

DASH = "—"


def num(x: float | None, unit: str = "") -> str:
    """``x`` to 4 significant digits (``—`` for None / NaN), with a unit if given."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return DASH
    return f"{x:.4g}" + (f" {unit}" if unit else "")


def pct(fraction: float | None) -> str:
    """A relative quantity (e.g. a gap of 0.0123) as a percentage to 4 significant digits: ``1.23 %``."""
    if fraction is None or (isinstance(fraction, float) and math.isnan(fraction)):
        return DASH
    return f"{100.0 * fraction:.4g} %"
