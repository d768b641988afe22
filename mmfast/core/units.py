"""Units at the edges: the Python layer over the compiled ``mmfast._core.units`` (docs/units.md).

``parse_units`` / ``format_units`` and the venue-metadata minimums are the compiled module's,
re-exported; here are only the helpers that need Python objects (``Decimal``, ``float``) and
int-to-int rescaling. Every conversion has one implementation: the compiled parser/formatter.
"""

from __future__ import annotations

from decimal import Decimal

from mmfast._core.units import (
    MAX_DECIMALS,
    format_units,
    min_notional_from_venue,
    min_size_from_venue,
    parse_units,
)
from mmfast.core.errors import UnitsError

__all__ = [
    "MAX_DECIMALS",
    "USDC_DECIMALS",
    "UnitsError",
    "format_units",
    "from_human",
    "min_notional_from_venue",
    "min_size_from_venue",
    "parse_units",
    "rescale",
    "to_decimal",
    "to_float",
]

USDC_DECIMALS = 6  # money is micro-USDC


def to_decimal(value: int, decimals: int) -> Decimal:
    """Int units -> exact ``Decimal`` with ``decimals`` fraction digits (display, human edges)."""
    return Decimal(format_units(value, decimals))


def to_float(value: int, decimals: int) -> float:
    """Int units -> float (correctly rounded ``value / 10**decimals``), for JSON fields the venue
    sends as numbers; never for computing."""
    return value / int(10**decimals)


def rescale(value: int, from_decimals: int, to_decimals: int) -> int:
    """Int in units of 10**-from_decimals -> units of 10**-to_decimals; exact when scaling up,
    floored when scaling down (Python ints: no overflow)."""
    shift = to_decimals - from_decimals
    return value * int(10**shift) if shift >= 0 else value // int(10 ** (-shift))


def from_human(value: Decimal | str | int, decimals: int, what: str = "value") -> int:
    """A human amount (``Decimal``, decimal string or int) -> int units, exactly.

    Signed; surrounding whitespace, "5." and ".5" accepted; fraction digits beyond ``decimals``
    only when they are zeros. UnitsError (a ValueError) when not finite, not a whole number of
    units, or beyond int64; no exponent in strings (a ``Decimal`` may have one).
    """
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise UnitsError(f"{what} {value!r} is not finite")
        text: str | bytes = format(value, "f")
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise UnitsError(f"{what} {value!r} is not a Decimal, decimal string or int")
    return parse_units(text, decimals, sign="+-", extra="zeros", loose=True, strip=True, what=what)
