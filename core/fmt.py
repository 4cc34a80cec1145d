"""One way to print a share or a change, used by the Lab, Compare, the CLI and the figures' hovers.

A fraction such as 77/400 = 0.1925 is 19.25 % exactly, but 100 * 0.1925 is 19.249999999999996 in
binary floating point: Python's "%.1f" printed 19.2 in the Lab while Compare's table (its own printf
in the browser) printed 19.3. Here the value is rounded once, half away from zero, on its shortest
decimal form (repr), and every view prints that rounded number.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def rounded(value: float | None, digits: int = 1) -> float | None:
    """`value` rounded half away from zero on its decimal form (19.25 -> 19.3, -0.05 -> -0.1)."""
    if value is None or value != value:          # None or NaN stays as it is
        return value
    return float(Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def pct_value(fraction: float | None, digits: int = 1) -> float | None:
    """A fraction as the percentage every view shows (0.1925 -> 19.3)."""
    if fraction is None or fraction != fraction:
        return fraction
    return rounded(float(Decimal(repr(float(fraction))) * 100), digits)


def pct(fraction: float | None, digits: int = 1) -> str:
    """0.1925 -> '19.3 %'; None -> '–'."""
    v = pct_value(fraction, digits)
    return "–" if v is None else f"{v:.{digits}f} %"


def pts(fraction: float | None, digits: int = 1, unit: str = " pts") -> str:
    """A change of fractions in percentage points: 0.005 -> '+0.5 pts' (unit="" -> '+0.5'). A change
    that rounds to zero prints unsigned ('0.0 pts'), neither '+0.0' nor '-0.0': it went neither way."""
    v = pct_value(fraction, digits)
    if v is None:
        return "–"
    return (f"{0:.{digits}f}" if v == 0 else f"{v:+.{digits}f}") + unit
