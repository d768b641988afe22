"""Exact conversions between integer ticks/lots and the venue's decimal strings (the sim's
names for mmfast.core.units), and the sim's rounding helpers."""

from __future__ import annotations

from mmfast.core.units import USDC_DECIMALS, format_units, parse_units

__all__ = ["USDC_DECIMALS", "ceil_div", "div_round", "fmt_fixed", "parse_fixed"]


def fmt_fixed(value: int, decimals: int) -> str:
    """Integer in units of 10^-decimals -> decimal string with exactly `decimals` places."""
    return format_units(value, decimals)


def parse_fixed(text: str, decimals: int) -> int:
    """Decimal string -> integer in units of 10^-decimals; raises ValueError if not exact
    (signed, padded, extra fraction digits only when zeros; int64)."""
    return parse_units(text, decimals, sign="+-", extra="zeros", strip=True)


def div_round(num: int, den: int) -> int:
    """Integer division rounded half away from zero."""
    if den < 0:
        num, den = -num, -den
    q, r = divmod(abs(num), den)
    if 2 * r >= den:
        q += 1
    return q if num >= 0 else -q


def ceil_div(num: int, den: int) -> int:
    """Ceiling division for a positive denominator."""
    return -((-num) // den)
